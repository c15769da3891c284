"""Fixtures of the speech tests: one torch thread, a tiny fitted recognizer, a clip folder."""

from __future__ import annotations

import pytest
import soundfile as sf
import torch
from speech_clips import SR, TEXTS, tiny_config, tone_clip

from rnnkit import SpeechRecognizer
from rnnkit.speech import Utterance


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Two threads on a shared, oversubscribed 2-core machine spin and run ~50x slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def overfit() -> SpeechRecognizer:
    """A unidirectional model trained to transcribe the six tone clips exactly."""
    utts = [Utterance(tone_clip(t, i), t, "", f"u{i}") for i, t in enumerate(TEXTS)]
    rec = SpeechRecognizer(tiny_config(bidirectional=False), threads=1)
    assert rec.fit(utts, utts) is rec
    assert rec.result_.losses[-1] < 0.1 * rec.result_.losses[0]
    return rec


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory):
    """Twelve tone clips as WAV files and a manifest.csv listing them."""
    d = tmp_path_factory.mktemp("clips")
    rows = ["path,transcript"]
    for i, t in enumerate(TEXTS * 2):
        sf.write(d / f"c{i}.wav", tone_clip(t, i), SR)
        rows.append(f"c{i}.wav,{t}")
    (d / "manifest.csv").write_text("\n".join(rows) + "\n")
    return d
