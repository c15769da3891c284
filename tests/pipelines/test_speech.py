"""Speech recognition: CTC decoders against hand-worked and brute-force oracles, training,
save/load, streaming, bad inputs and the command line on generated clips."""

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
import torch.nn.functional as F

from rnnkit.cli import main
from rnnkit.data.audio import FeatureConfig, LogMel
from rnnkit.data.speech import (
    CharVocab,
    Utterance,
    connected_digits,
    ctc_min_frames,
    fsdd_utterances,
    load_source,
    read_manifest,
)
from rnnkit.errors import UserError
from rnnkit.models.ctc_asr import CTCASR, CTCASRConfig, CTCOutput, ctc_loss
from rnnkit.pipelines.speech import SpeechConfig, SpeechDataConfig, SpeechRecognizer
from rnnkit.speech import CharNgramLM, greedy_decode, prefix_beam_search, word_times
from rnnkit.training import TrainConfig


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Two threads on a shared, oversubscribed 2-core machine spin and run ~50x slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------


def _onehot_log_probs(path: list[int], V: int) -> torch.Tensor:
    lp = torch.full((len(path), V), math.log(0.01))
    lp[torch.arange(len(path)), torch.tensor(path)] = math.log(1 - 0.01 * (V - 1))
    return lp


def test_greedy_collapses_repeats_and_removes_blanks() -> None:
    # frames: a a - a b b -   ->  a a b, first emitted at frames 0, 3, 4
    dec = greedy_decode(_onehot_log_probs([1, 1, 0, 1, 2, 2, 0], 3))
    assert dec.labels == [1, 1, 2]
    assert dec.frames == [0, 3, 4]
    assert greedy_decode(_onehot_log_probs([0, 0, 0], 3)).labels == []
    assert greedy_decode(_onehot_log_probs([2, 2, 2, 2], 3)).labels == [2]


def test_beam_beats_greedy_on_the_hand_worked_example() -> None:
    # Two frames, P(blank) = 0.6, P(a) = 0.4 each. Best path: "-" "-" -> "" (0.36).
    # P("a") = 0.4*0.6 + 0.6*0.4 + 0.4*0.4 = 0.64 > P("") = 0.36.
    lp = torch.tensor([[0.6, 0.4], [0.6, 0.4]]).log()
    assert greedy_decode(lp).labels == []
    dec = prefix_beam_search(lp, beam=4)
    assert dec.labels == [1]
    assert math.exp(dec.log_prob) == pytest.approx(0.64, abs=1e-6)


def _brute_force_best(lp: np.ndarray) -> tuple[tuple[int, ...], float]:
    """Sum the probability of every alignment into its labeling; return the best one."""
    T, V = lp.shape
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(V), repeat=T):
        labels, prev = [], 0
        for k in path:
            if k != 0 and k != prev:
                labels.append(k)
            prev = k
        p = math.exp(sum(lp[t, k] for t, k in enumerate(path)))
        totals[tuple(labels)] = totals.get(tuple(labels), 0.0) + p
    best = max(totals, key=totals.__getitem__)
    return best, totals[best]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_wide_beam_equals_brute_force_and_torch_ctc(seed) -> None:
    g = torch.Generator().manual_seed(seed)
    lp = torch.log_softmax(torch.randn(5, 3, generator=g) * 1.5, -1).double()
    best, prob = _brute_force_best(lp.numpy())
    dec = prefix_beam_search(lp, beam=200)
    assert tuple(dec.labels) == best
    assert math.exp(dec.log_prob) == pytest.approx(prob, rel=1e-9)
    if best:  # torch's CTC forward algorithm gives the same labeling probability
        nll = F.ctc_loss(
            lp[:, None],
            torch.tensor([best]),
            torch.tensor([5]),
            torch.tensor([len(best)]),
            reduction="sum",
        )
        assert math.exp(-float(nll)) == pytest.approx(prob, rel=1e-9)


def test_char_ngram_lm_probabilities_and_beam_rescoring() -> None:
    lm = CharNgramLM(order=2, k=0.01).fit(["ab", "ab", "ab", "ba"])
    for history in ("", "a", "b", "zz"):
        total = sum(math.exp(lm.log_prob(history, c)) for c in lm.chars_)
        total += math.exp(lm.log_prob(history, None))
        assert total == pytest.approx(1.0, abs=1e-12)
    # counts after "a": b three times (and end once): P(b|a) = (3 + k) / (4 + 3k)
    assert math.exp(lm.log_prob("a", "b")) == pytest.approx(3.01 / 4.03)
    assert CharNgramLM.from_dict(json.loads(json.dumps(lm.to_dict()))).log_prob("a", "b") == (
        lm.log_prob("a", "b")
    )
    # Acoustics prefer "aa" (labels a=1, b=2: 0.5 * 0.5 > 0.5 * 0.4); the LM has never seen
    # "a" follow "a" (P = 0.01 / 4.03) and tips the search to "ab".
    lp = torch.tensor(
        [[0.9, 0.05, 0.05], [0.1, 0.5, 0.4], [0.9, 0.05, 0.05], [0.1, 0.5, 0.4], [0.9, 0.05, 0.05]]
    ).log()
    chars = ["a", "b"]
    assert prefix_beam_search(lp, 8).labels == [1, 1]
    assert prefix_beam_search(lp, 8, lm=lm, chars=chars, lm_weight=1.0).labels == [1, 2]


def test_word_times_from_emission_frames() -> None:
    chars = [" ", "a", "b"]  # labels 1, 2, 3
    # "ab ba": a@2 b@3 space@6 b@8 a@10, 20 ms frames
    words = word_times([2, 3, 1, 3, 2], [2, 3, 6, 8, 10], chars, 0.02)
    assert [w.word for w in words] == ["ab", "ba"]
    assert words[0].start == pytest.approx(0.04) and words[0].end == pytest.approx(0.08)
    assert words[1].start == pytest.approx(0.16) and words[1].end == pytest.approx(0.22)


def test_ctc_loss_checks_lengths_instead_of_nan() -> None:
    assert ctc_min_frames([1, 1, 2]) == 4  # a blank must separate the repeat
    lp = torch.log_softmax(torch.randn(1, 3, 4), -1)
    out = CTCOutput(lp, torch.tensor([3]), None)
    with pytest.raises(UserError, match="fewer frames than their transcript needs"):
        ctc_loss(out, torch.tensor([[1, 1, 2]]), torch.tensor([3]))
    ok = ctc_loss(out, torch.tensor([[1, 2, 3]]), torch.tensor([3]))
    expect = F.ctc_loss(
        lp.transpose(0, 1), torch.tensor([[1, 2, 3]]), torch.tensor([3]), torch.tensor([3])
    )
    torch.testing.assert_close(ok, expect)


def test_model_config_errors() -> None:
    with pytest.raises(UserError, match="model.cell must be one of"):
        CTCASR(CTCASRConfig(input_size=4, vocab_size=3, cell="transformer"))
    with pytest.raises(UserError, match="subsample needs the front end"):
        CTCASR(CTCASRConfig(input_size=4, vocab_size=3, conv_channels=0, subsample=2))


# ---------------------------------------------------------------------------
# Generated clips: one tone per character
# ---------------------------------------------------------------------------

SR = 8000
TONES = {"a": 500.0, "b": 1300.0, "c": 2300.0, " ": 3300.0}


def tone_clip(text: str, seed: int = 0) -> np.ndarray:
    """Each character a 0.12 s tone with jittered pitch, separated by 0.05 s of faint noise."""
    rng = np.random.default_rng(seed)
    parts = [rng.normal(0, 1e-3, 400)]
    for ch in text:
        n = int(0.12 * SR)
        f = TONES[ch] * rng.uniform(0.97, 1.03)
        parts.append(0.5 * np.sin(2 * np.pi * f * np.arange(n) / SR) + rng.normal(0, 0.01, n))
        parts.append(rng.normal(0, 1e-3, 400))
    return np.concatenate(parts).astype(np.float32)


TEXTS = ["ab", "ba c", "cab", "aa b", "c b a", "bca"]


def _tiny_config(**model: object) -> SpeechConfig:
    return SpeechConfig(
        data=SpeechDataConfig(source="unused", batch_size=6),
        features=FeatureConfig(sample_rate=SR, n_mels=20, time_masks=0, freq_masks=0),
        model=CTCASRConfig(
            conv_channels=32,
            subsample=2,
            cell="gru",
            num_layers=1,
            hidden_size=48,
            dropout=0.0,
            **model,
        ),
        train=TrainConfig(
            max_steps=150,
            lr=3e-2,
            min_lr=1e-3,
            warmup_steps=5,
            eval_interval=0,
            checkpoint_interval=0,
            progress="none",
            plot=False,
            grad_clip=5.0,
            carry_state=False,
            eval_metric="val_wer",
        ),
    )


@pytest.fixture(scope="module")
def overfit() -> SpeechRecognizer:
    utts = [Utterance(tone_clip(t, i), t, "", f"u{i}") for i, t in enumerate(TEXTS)]
    rec = SpeechRecognizer(_tiny_config(bidirectional=False))
    result = rec.fit(utts, utts)
    assert result.losses[-1] < 0.1 * result.losses[0]
    return rec


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
    rec = SpeechRecognizer(_tiny_config())
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
    cfg = _tiny_config()
    rec = SpeechRecognizer(replace(cfg, train=replace(cfg.train, max_steps=2)))
    result = rec.fit(good + bad[:2] + bad[3:], good + [bad[2]])
    assert all(math.isfinite(v) for v in result.losses)
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
# Command line
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    rows = ["path,transcript"]
    for i, t in enumerate(TEXTS * 2):
        sf.write(d / f"c{i}.wav", tone_clip(t, i), SR)
        rows.append(f"c{i}.wav,{t}")
    (d / "manifest.csv").write_text("\n".join(rows) + "\n")
    return d


def test_cli_train_eval_transcribe(clip_dir, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    args = [
        "speech",
        "train",
        "--data",
        str(clip_dir / "manifest.csv"),
        "--run-dir",
        str(run),
        "--features.n_mels=20",
        "--features.time_masks=0",
        "--features.freq_masks=0",
        "--model.cell=gru",
        "--model.num_layers=1",
        "--model.hidden_size=48",
        "--model.conv_channels=32",
        "--model.bidirectional=false",
        "--model.dropout=0",
        "--data.batch_size=6",
        "--data.val_fraction=0.2",
        "--train.max_steps=150",
        "--train.lr=0.03",
        "--train.warmup_steps=5",
        "--train.eval_interval=75",
        "--train.progress=none",
        "--train.plot=false",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "done: 150 steps" in out
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("val_wer" in r for r in records)

    assert (
        main(
            [
                "speech",
                "eval",
                "--checkpoint",
                str(run),
                "--data",
                str(clip_dir / "manifest.csv"),
                "--beam",
                "4",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "12 utterances | beam 4 | WER" in out
    wer = float(out.split("WER ")[1].split()[0])
    assert wer <= 0.2

    wav = clip_dir / "c1.wav"
    png = tmp_path / "align.png"
    assert (
        main(
            [
                "speech",
                "transcribe",
                "--checkpoint",
                str(run),
                str(wav),
                "--timestamps",
                "--plot",
                str(png),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"{wav}: ba c" in out and png.stat().st_size > 1000
    assert (
        main(
            [
                "speech",
                "transcribe",
                "--checkpoint",
                str(run),
                str(wav),
                "--stream",
                "--chunk-ms",
                "50",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.rstrip().endswith("ba c")


def test_cli_errors(clip_dir, tmp_path, capsys) -> None:
    assert main(["speech", "transcribe", "--checkpoint", str(tmp_path / "none"), "x.wav"]) == 2
    assert "error: checkpoint directory" in capsys.readouterr().err
    assert main(["speech", "train", "--data", str(tmp_path / "nope.csv")]) == 2
    err = capsys.readouterr().err
    assert "error: manifest" in err and "not found" in err
    assert main(["speech", "train", "--data", "fsdd", "--data.task=sentences"]) == 2
    assert "error: data.task must be words or connected" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["speech", "train", "--model.hiden_size=3"])
    assert exc.value.code == 2
    assert "did you mean --model.hidden_size" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["speech", "transcribe", "--help"])
    assert exc.value.code == 0
    assert "--beam" in capsys.readouterr().out


def test_cli_resume_continues_from_the_last_checkpoint(clip_dir, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    base = [
        "speech",
        "train",
        "--data",
        str(clip_dir / "manifest.csv"),
        "--run-dir",
        str(run),
        "--features.n_mels=20",
        "--model.cell=gru",
        "--model.num_layers=1",
        "--model.hidden_size=16",
        "--model.conv_channels=8",
        "--model.bidirectional=false",
        "--data.batch_size=6",
        "--data.val_fraction=0.2",
        "--train.eval_interval=3",
        "--train.progress=none",
        "--train.plot=false",
    ]
    assert main([*base, "--train.max_steps=3"]) == 0
    assert "done: 3 steps" in capsys.readouterr().out
    assert main([*base, "--train.max_steps=5", "--resume"]) == 0
    assert "done: 5 steps" in capsys.readouterr().out
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4, 5]
