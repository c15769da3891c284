"""SpeechRecognizer on generated tone clips: the estimator contract, training, save/load,
streaming, bad input, and the data sources."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from speech_clips import SR, TEXTS, tiny_config, tone_clip

import rnnkit.speech
from rnnkit import NotFittedError, SpeechRecognizer
from rnnkit.errors import UserError
from rnnkit.speech import Utterance, load_config
from rnnkit.speech.batches import CharVocab
from rnnkit.speech.data import connected_digits, fsdd_utterances, load_source, read_manifest
from rnnkit.speech.features import LogMel
from rnnkit.speech.model import CTCASR

# ---------------------------------------------------------------------------
# The estimator contract
# ---------------------------------------------------------------------------


def test_construct_from_a_preset_with_overrides() -> None:
    rec = SpeechRecognizer(preset="tiny", max_steps=20, model__hidden_size=32, seed=3)
    assert rec.config.train.max_steps == 20
    assert rec.config.model.hidden_size == 32
    assert rec.config.model.cell == "gru" and rec.config.model.bidirectional is False
    assert "max_steps=20" in repr(rec)
    with pytest.raises(UserError, match="unknown option hiden_size"):
        SpeechRecognizer(preset="tiny", hiden_size=3)


def test_unfitted_use_raises_not_fitted_error(tmp_path) -> None:
    rec = SpeechRecognizer(preset="tiny")
    clip = tone_clip("ab")
    for call in (
        lambda: rec.transcribe(clip),
        lambda: rec.predict([clip]),
        lambda: rec.evaluate([Utterance(clip, "ab")]),
        lambda: next(rec.stream([clip])),
        lambda: rec.plot_alignment(clip),
        lambda: rec.save(tmp_path / "model"),
    ):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call()
    assert not (tmp_path / "model").exists()


def test_fit_returns_self_and_sets_the_fitted_attributes(overfit) -> None:
    assert overfit.history_ and overfit.history_[-1]["step"] == 150
    assert overfit.metrics_["val_wer"] == overfit.history_[-1]["val_wer"]
    assert overfit.metrics_["measured_on"] == "the validation set (6 utterances)"
    assert not overfit.model_.training
    assert overfit.config.model.vocab_size == len(overfit.vocab_) == 5  # " abc" + blank


def test_predict_is_transcribe_text(overfit) -> None:
    clips = [tone_clip(t, i) for i, t in enumerate(TEXTS)]
    assert overfit.predict(clips) == TEXTS
    assert overfit.predict(clips[1]) == [TEXTS[1]]  # one clip in, a list of one out
    assert overfit.predict(torch.from_numpy(clips[2])) == [TEXTS[2]]


def test_evaluate_returns_a_json_ready_dict(overfit) -> None:
    utts = [Utterance(tone_clip(t, i), t) for i, t in enumerate(TEXTS)]
    m = overfit.evaluate(utts, beam=4)
    assert m == {
        "wer": 0.0,
        "cer": 0.0,
        "utterances": 6,
        "decoder": "beam 4",
        "measured_on": "6 utterances",
    }
    assert json.loads(json.dumps(m)) == m
    assert overfit.evaluate(utts)["decoder"] == "greedy"


def test_test_time_warps_average_the_posteriors_of_the_warped_features(overfit) -> None:
    clip = tone_clip(TEXTS[0], 0)
    _, plain = overfit.log_probs(clip)
    assert torch.equal(overfit.log_probs(clip, warps=(1.0,))[1], plain)  # the identity warp
    _, averaged = overfit.log_probs(clip, warps=(0.9, 1.1))
    # Oracle in NumPy: each warp's features through the model, probabilities averaged.
    probs = []
    for w in (0.9, 1.1):
        raw = overfit.features_.logmel(clip, vtlp=w)
        assert not torch.allclose(raw, overfit.features_.logmel(clip))  # the warp acts
        with torch.no_grad():
            lp = overfit.model_(overfit.features_.normalize(raw)[None]).log_probs[0]
        probs.append(np.exp(lp.double().numpy()))
    expected = np.log(np.mean(probs, axis=0))
    np.testing.assert_allclose(averaged.double().numpy(), expected, atol=1e-5)
    assert averaged.shape == plain.shape  # a warp keeps the frames
    np.testing.assert_allclose(averaged.exp().sum(-1).numpy(), 1.0, atol=1e-5)

    utts = [Utterance(tone_clip(t, i), t) for i, t in enumerate(TEXTS)]
    m = overfit.evaluate(utts, beam=4, warps=[0.95, 1, 1.05])
    assert m["decoder"] == "beam 4 + warps 0.95,1,1.05" and m["utterances"] == 6
    assert overfit.predict(utts[0].audio, warps=(1.0,)) == overfit.predict(utts[0].audio)
    for bad in ((0.2,), ("x",), (1.0, 2.0)):
        with pytest.raises(UserError, match="warps must be"):
            overfit.evaluate(utts, warps=bad)


def test_evaluate_reads_a_source(overfit, clip_dir) -> None:
    m = overfit.evaluate(clip_dir / "manifest.csv", beam=2, lm_weight=0.5)
    assert m["utterances"] == 12 and m["decoder"] == "beam 2 + LM 0.5"
    assert m["measured_on"] == str(clip_dir / "manifest.csv")
    assert 0.0 <= m["wer"] <= 0.5


def test_fit_without_data_reads_the_config_source_quietly(clip_dir, tmp_path, capfd) -> None:
    run = tmp_path / "run"
    rec = SpeechRecognizer(
        preset="tiny",
        source=str(clip_dir / "manifest.csv"),
        val_fraction=0.25,
        max_steps=3,
        eval_interval=3,
        plot=False,
        verbose=False,
        threads=1,
    )
    assert rec.fit(run_dir=run) is rec
    assert capfd.readouterr() == ("", "")  # verbose=False: no progress, no messages
    assert rec.result_.step == 3 and (run / "best" / "manifest.json").is_file()
    assert rec.metrics_["measured_on"] == "the validation set (3 utterances)"
    assert (
        rec.metrics_["val_wer"] == json.loads((run / "best" / "best.json").read_text())["val_wer"]
    )
    with pytest.raises(UserError, match="has no test split"):
        rec.evaluate()  # a manifest's utterances are split into train and validation only
    # A run directory that holds a run is refused, before any data is read ...
    with pytest.raises(UserError, match="already holds a run"):
        rec.fit(run_dir=run)
    # ... unless it is replaced on purpose.
    assert rec.fit(run_dir=run, overwrite=True).result_.step == 3


def test_fit_with_train_only_holds_out_validation() -> None:
    utts = [Utterance(tone_clip(t, i), t) for i, t in enumerate(TEXTS * 2)]
    rec = SpeechRecognizer(
        preset="tiny", sample_rate=SR, max_steps=2, eval_interval=2, verbose=False, threads=1
    )
    rec.fit(utts)
    assert rec.metrics_["measured_on"] == "the validation set (1 utterances)"
    with pytest.raises(UserError, match="pass train utterances with val"):
        rec.fit(None, utts)


def test_save_load_gives_identical_predictions(overfit, tmp_path) -> None:
    overfit.save(tmp_path / "rec")
    assert {p.name for p in (tmp_path / "rec").iterdir()} >= {
        "config.json",
        "model.safetensors",
        "vocab.json",
        "features.json",
        "lm.json",
        "manifest.json",
        "README.md",
    }
    back = SpeechRecognizer.load(tmp_path / "rec")
    assert isinstance(back, SpeechRecognizer)
    assert back.metrics_["val_wer"] == overfit.metrics_["val_wer"]
    clips = [tone_clip(t, 10 + i) for i, t in enumerate(TEXTS)]
    for x in clips[:3]:
        torch.testing.assert_close(back.log_probs(x)[1], overfit.log_probs(x)[1], rtol=0, atol=0)
    assert back.predict(clips, beam=4) == overfit.predict(clips, beam=4)
    assert back.predict(clips, beam=4, lm_weight=0.5) == overfit.predict(
        clips, beam=4, lm_weight=0.5
    )


def test_a_folder_written_before_manifests_still_loads(overfit, tmp_path) -> None:
    d = overfit.save(tmp_path / "old")
    for name in ("manifest.json", "README.md", "lm.json"):  # lm.json was optional too
        (d / name).unlink()
    back = SpeechRecognizer.load(d)
    assert back.lm_ is None
    clips = [tone_clip(t, i) for i, t in enumerate(TEXTS)]
    assert back.predict(clips) == overfit.predict(clips)
    with pytest.raises(UserError, match="without lm.json"):
        back.predict(clips[0], beam=4, lm_weight=0.5)


def test_plot_alignment_returns_a_figure_and_saves_only_with_a_path(overfit, tmp_path) -> None:
    from matplotlib.figure import Figure

    fig = overfit.plot_alignment(tone_clip("ba c", 1))
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert list(tmp_path.iterdir()) == []
    wav = tmp_path / "clip.wav"
    sf.write(wav, tone_clip("cab", 2), SR)
    fig = overfit.plot_alignment(wav, tmp_path / "align.png")
    assert fig.axes[0].get_title() == "clip.wav"
    assert (tmp_path / "align.png").stat().st_size > 1000


# ---------------------------------------------------------------------------
# Training, decoding, streaming and bad input
# ---------------------------------------------------------------------------


def test_tiny_model_overfits_to_exact_transcripts(overfit) -> None:
    clips = [tone_clip(t, i) for i, t in enumerate(TEXTS)]
    assert [t.text for t in overfit.transcribe(clips)] == TEXTS
    assert [t.text for t in overfit.transcribe(clips, beam=8)] == TEXTS
    m = overfit.evaluate([Utterance(c, t) for c, t in zip(clips, TEXTS, strict=True)])
    assert m["wer"] == 0.0 and m["cer"] == 0.0


def test_word_timestamps_fall_on_the_tones(overfit) -> None:
    (t,) = overfit.transcribe([tone_clip("ba c", 1)])
    assert [w.word for w in t.words] == ["ba", "c"]
    # tones: b 0.05-0.17 s, a 0.22-0.34, space 0.39-0.51, c 0.56-0.68 (+-frame and window)
    assert 0.0 <= t.words[0].start <= 0.2 and 0.2 <= t.words[0].end <= 0.45
    assert 0.5 <= t.words[1].start <= 0.72


def test_save_load_identical(overfit, tmp_path) -> None:
    overfit.save(tmp_path / "rec")
    assert {p.name for p in (tmp_path / "rec").iterdir()} >= {
        "config.json",
        "model.safetensors",
        "vocab.json",
        "features.json",
        "lm.json",
    }
    back = SpeechRecognizer.load(tmp_path / "rec")
    clips = [tone_clip(t, 10 + i) for i, t in enumerate(TEXTS)]
    for x in clips[:3]:
        torch.testing.assert_close(back.log_probs(x)[1], overfit.log_probs(x)[1], rtol=0, atol=0)
    assert [t.text for t in back.transcribe(clips, beam=4)] == [
        t.text for t in overfit.transcribe(clips, beam=4)
    ]


@pytest.mark.parametrize("chunk", [37, 80, 401, 100000])
def test_streaming_equals_offline(overfit, chunk) -> None:
    x = tone_clip("cab a", 7)
    partials = list(overfit.stream(x[i : i + chunk] for i in range(0, len(x), chunk)))
    offline = overfit.transcribe([x])[0].text
    assert partials[-1] == offline
    assert all(offline.startswith(p.rstrip()) or p == "" for p in partials)  # prefixes grow


def test_streaming_needs_a_unidirectional_model() -> None:
    rec = SpeechRecognizer(tiny_config())
    rec.vocab_ = CharVocab().fit(["ab"])
    rec.model_ = CTCASR(replace(rec.config.model, input_size=20, vocab_size=3))
    rec.features_ = LogMel(rec.config.features)
    with pytest.raises(UserError, match="unidirectional"):
        next(rec.stream([np.zeros(800, dtype=np.float32)]))


def test_bad_training_data_is_skipped_and_counted(tmp_path, capsys) -> None:
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"not audio at all" * 8)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), SR)
    good = [Utterance(tone_clip(t, i), t) for i, t in enumerate(TEXTS[:3])]
    bad = [
        Utterance(str(corrupt), "ab"),
        Utterance(str(empty), "ab"),
        Utterance(tone_clip("ab"), "ab!"),  # '!' is outside the vocabulary of the train texts
        Utterance(tone_clip("a")[:900], "abcabc"),  # 3 frames for 6 labels
    ]
    cfg = tiny_config()
    rec = SpeechRecognizer(replace(cfg, train=replace(cfg.train, max_steps=2)), threads=1)
    rec.fit(good + bad[:2] + bad[3:], good + [bad[2]])
    assert all(math.isfinite(v) for v in rec.result_.losses)
    err = capsys.readouterr().err
    assert "skipped 3 of 6 utterances (2 unreadable, 1 too short for CTC)" in err
    assert "skipped 1 of 4 utterances (1 unknown characters)" in err
    # evaluation and transcription refuse bad input with a clear message instead
    with pytest.raises(UserError, match="outside the vocabulary"):
        rec.evaluate([bad[2]])
    with pytest.raises(UserError, match="too short for its transcript"):
        rec.evaluate([bad[3]])
    with pytest.raises(UserError, match="cannot read audio file"):
        rec.transcribe([corrupt])
    with pytest.raises(UserError, match="too short"):
        rec.transcribe([np.zeros(50, dtype=np.float32)])


# ---------------------------------------------------------------------------
# Data sources
# ---------------------------------------------------------------------------


def test_manifests(tmp_path) -> None:
    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "m.csv").write_text("path,transcript\na.wav,Hello  World\n")
    (tmp_path / "m.tsv").write_text("path\ttext\na.wav\tHello World\n")
    (tmp_path / "m.jsonl").write_text('{"path": "a.wav", "transcript": "HELLO world"}\n')
    for name in ("m.csv", "m.tsv", "m.jsonl"):
        (u,) = read_manifest(tmp_path / name)
        assert u.text == "hello world" and u.audio == str(tmp_path / "a.wav")
    (tmp_path / "bad.csv").write_text("file,words\na.wav,hi\n")
    with pytest.raises(UserError, match="needs a 'path' and a 'transcript'"):
        read_manifest(tmp_path / "bad.csv")
    with pytest.raises(UserError, match="not found"):
        read_manifest(tmp_path / "nope.csv")


def test_librispeech_folder(tmp_path) -> None:
    chapter = tmp_path / "19" / "198"
    chapter.mkdir(parents=True)
    sf.write(chapter / "19-198-0000.flac", tone_clip("ab"), SR)
    sf.write(chapter / "19-198-0001.wav", tone_clip("c"), SR)
    (chapter / "19-198.trans.txt").write_text("19-198-0000 AB\n19-198-0001 C\n")
    utts = load_source(str(tmp_path))
    assert [(u.text, u.speaker, Path(u.audio).name) for u in utts] == [
        ("ab", "19", "19-198-0000.flac"),
        ("c", "19", "19-198-0001.wav"),
    ]
    with pytest.raises(UserError, match="no \\*.trans.txt"):
        (tmp_path / "empty").mkdir()
        load_source(str(tmp_path / "empty"))


def test_connected_digits_builds_multiword_utterances() -> None:
    clips = [(np.ones(100, dtype=np.float32) * (i + 1), w) for i, w in enumerate(["one", "two"])]
    utts = connected_digits(clips, 50, sample_rate=8000, min_digits=1, max_digits=7, seed=3)
    counts = [len(u.text.split()) for u in utts]
    assert min(counts) >= 1 and max(counts) <= 7 and len(set(counts)) > 3
    for u in utts:  # the audio holds exactly the listed clips, in order
        words = [1 if w == "one" else 2 for w in u.text.split()]
        levels = [int(round(v)) for v in u.audio if abs(v) > 0.5]
        assert levels.count(1) == 100 * words.count(1) and levels.count(2) == 100 * words.count(2)
        assert [k for k, _ in itertools.groupby(levels)] == [k for k, _ in itertools.groupby(words)]


def test_fsdd_through_the_mirror(data_mirror) -> None:
    utts = fsdd_utterances(speakers=["jackson"], max_take=6, quiet=True)
    assert len(utts) == 20  # 10 digits x takes 5, 6
    assert {u.text for u in utts} == {
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
    }
    assert all(u.speaker == "jackson" for u in utts)
    with pytest.raises(UserError, match="unknown FSDD speaker"):
        fsdd_utterances(speakers=["nobody"])


# ---------------------------------------------------------------------------
# GPU (run with -m gpu on a machine with CUDA)
# ---------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_model_gives_the_cpu_transcripts(overfit, tmp_path) -> None:
    overfit.save(tmp_path / "m")
    gpu = SpeechRecognizer.load(tmp_path / "m", device="cuda")
    assert next(gpu.model_.parameters()).is_cuda
    clips = [tone_clip(t, 20 + i) for i, t in enumerate(TEXTS)]
    assert gpu.predict(clips, beam=4) == overfit.predict(clips, beam=4)
    x = clips[1]
    assert list(gpu.stream(np.array_split(x, 7)))[-1] == overfit.predict(x)[0]
    utts = [Utterance(c, t) for c, t in zip(clips, TEXTS, strict=True)]
    assert gpu.evaluate(utts)["wer"] == overfit.evaluate(utts)["wer"]
    rec = SpeechRecognizer(tiny_config(bidirectional=False), device="cuda", max_steps=5)
    rec.fit(utts, utts)
    assert next(rec.model_.parameters()).is_cuda and len(rec.predict(clips)) == 6


@pytest.mark.parametrize(
    "preset",
    sorted(p.stem for p in (Path(rnnkit.speech.__file__).parent / "presets").glob("*.toml")),
)
def test_every_shipped_preset_loads_and_validates(preset: str) -> None:
    cfg = load_config(preset=preset)
    for section in (cfg.data, cfg.features, cfg.augment, cfg.train):
        section.validate()
    replace(cfg.model, input_size=1, vocab_size=2).validate()
    if "stream" in preset:  # streamable: one direction, a normalisation that needs no future
        assert not cfg.model.bidirectional
        assert cfg.features.norm in ("global", "causal_cmn", "none")
