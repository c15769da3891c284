"""Tiny models of every application, trained for a few steps and saved (seconds in all).

The data are those of tests/test_contract.py; the speech model is the tone-clip
model of tests/speech (one tone per character), trained until it transcribes
its clips, so a transcript and its word timestamps can be checked.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf

import rnnkit

QUIET = {"verbose": False, "seed": 0, "threads": 1}
TEXTS = ["good fun film", "great and fun", "bad dull film", "awful and dull"] * 6
LABELS = ["pos", "pos", "neg", "neg"] * 6
EN = ["zero", "one", "two", "three"]
DE = ["null", "eins", "zwei", "drei"]
PAIRS = [
    (f"{EN[i % 4]} {EN[(i + 1) % 4]} .", f"{DE[i % 4]} {DE[(i + 1) % 4]} .") for i in range(24)
]
TEXT = "the cat sat on the mat. the dog sat on the log. " * 40

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "speech"))
import speech_clips  # noqa: E402  (the tone clips of tests/speech)


def series(n: int = 120) -> np.ndarray:
    t = np.arange(n)
    return 10 + np.sin(2 * np.pi * t / 12) + 0.1 * np.random.default_rng(0).standard_normal(n)


def write_clip(path: Path, text: str = "ab", seed: int = 0) -> Path:
    """A WAV of the tone 'word' ``text`` (what the tiny speech model was trained on)."""
    sf.write(path, speech_clips.tone_clip(text, seed), speech_clips.SR)
    return path


def train_all(root: Path) -> dict[str, Path]:
    """Train and save one tiny model per application in ``root/runs/<app>``; app -> folder."""
    from rnnkit.speech import Utterance

    out: dict[str, Path] = {}
    root = root / "runs"
    clf = rnnkit.SentimentClassifier(preset="tiny", epochs=20, hidden_size=16, **QUIET)
    clf.fit(TEXTS, LABELS, val_texts=TEXTS[:8], val_labels=LABELS[:8])
    out["sentiment"] = clf.save(root / "sentiment")
    gen = rnnkit.TextGenerator(
        preset="tiny", max_steps=120, eval_interval=60, hidden_size=32, **QUIET
    )
    out["textgen"] = gen.fit(TEXT, val_text=TEXT[:300]).save(root / "textgen")
    tr = rnnkit.Translator(preset="tiny", max_steps=40, eval_interval=20, hidden_size=32, **QUIET)
    out["translate"] = tr.fit(PAIRS, val_pairs=PAIRS[:6]).save(root / "translate")
    utts = [
        Utterance(speech_clips.tone_clip(t, i), t, "", f"u{i}")
        for i, t in enumerate(speech_clips.TEXTS)
    ]
    rec = rnnkit.SpeechRecognizer(speech_clips.tiny_config(bidirectional=False), **QUIET)
    out["speech"] = rec.fit(utts, utts).save(root / "speech")
    fc = rnnkit.Forecaster(lookback=12, horizon=3, epochs=3, ensemble=1, hidden_size=8, **QUIET)
    out["forecast"] = fc.fit(series()).save(root / "forecast")
    return out
