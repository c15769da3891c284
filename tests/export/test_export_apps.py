"""Each application's network, fitted for a few steps on tiny data, exported to ONNX and run
in onnxruntime, gives rnnkit's predictions.

The loops around the graphs (greedy generation, greedy translation, speech chunks,
the forecast's feedback) are written here from the sidecar alone, as a user of the
graph would write them; the oracle is the fitted rnnkit estimator. The default test
goes through the command line (textgen, streaming); the others export bigger graphs
and are marked slow. The refusals (streaming a model that cannot stream, an
ensemble, an application without export) cost no export and run by default.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit import NotFittedError, UserError
from rnnkit.cli import main

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from rnnkit.export.cli import detect_app  # noqa: E402
from rnnkit.export.onnx import run, session  # noqa: E402

QUIET = {"verbose": False, "seed": 0, "threads": 1}
TOL = 1e-4
TEXT = "the cat sat on the mat. the dog sat on the log. " * 40
TEXTS = ["good fun film", "great and fun", "bad dull film", "awful and dull"] * 6
LABELS = ["pos", "pos", "neg", "neg"] * 6
EN, DE = ["zero", "one", "two", "three"], ["null", "eins", "zwei", "drei"]
PAIRS = [
    (f"{EN[i % 4]} {EN[(i + 1) % 4]} .", f"{DE[i % 4]} {DE[(i + 1) % 4]} .") for i in range(24)
]
SR = 16000


def _series() -> np.ndarray:
    t = np.arange(120)
    return 10 + np.sin(2 * np.pi * t / 12) + 0.1 * np.random.default_rng(0).standard_normal(120)


def _clip(text: str, seed: int) -> np.ndarray:
    """A made-up 'word': one tone per character."""
    rng = np.random.default_rng(seed)
    parts = []
    for ch in text:
        t = np.arange(int(0.12 * SR)) / SR
        f = 300 + 40 * (ord(ch) - 96)
        parts.append(0.3 * np.sin(2 * np.pi * f * t) + 0.01 * rng.standard_normal(t.size))
    return np.concatenate(parts).astype(np.float32)


def _zeros(side: dict[str, Any], batch: int = 1) -> dict[str, np.ndarray]:
    return {
        n: np.zeros([batch if d == "batch" else d for d in s], np.float32)
        for n, s in side["state"].items()
    }


@pytest.fixture(scope="module")
def textgen() -> Any:
    torch.manual_seed(0)
    est = rnnkit.TextGenerator(preset="tiny", max_steps=6, eval_interval=3, hidden_size=16, **QUIET)
    return est.fit(TEXT, val_text=TEXT[:300])


# -- textgen: the default test, through the command line --------------------------------


def _greedy(path: Path, side: dict[str, Any], prompt: str, length: int) -> tuple[str, list]:
    """Greedy generation with the step graph and the sidecar only (the docs' loop)."""
    sess, vocab = session(path), side["vocab"]
    state = _zeros(side)
    logits_seen = []
    out = None
    for ch in prompt:
        out = run(sess, {"token": np.array([vocab.index(ch)]), **state})
        state = {n: out[f"{n}_n"] for n in state}
    text = prompt
    for _ in range(length):
        logits_seen.append(out["logits"][0])
        nxt = int(out["logits"][0].argmax())
        text += vocab[nxt]
        out = run(sess, {"token": np.array([nxt]), **state})
        state = {n: out[f"{n}_n"] for n in state}
    return text, logits_seen


def test_textgen_cli_step_graph_generates_like_rnnkit(textgen: Any, tmp_path: Path) -> None:
    folder = textgen.save(tmp_path / "model")
    out, js = tmp_path / "lm.onnx", tmp_path / "described.json"
    args = ["export", "onnx", "--checkpoint", str(folder), "--output", str(out)]
    assert main([*args, "--streaming", "--json", str(js), "--threads", "1"]) == 0
    side = json.loads(js.read_text())
    assert side == json.loads((tmp_path / "lm.json").read_text())  # --json: the sidecar
    (graph,) = side["graphs"]
    assert [i["name"] for i in graph["inputs"]] == ["token", "h", "c"]
    assert [o["name"] for o in graph["outputs"]] == ["logits", "h_n", "c_n"]
    assert side["vocab"] == textgen.vocab_.chars_ and side["not_in_graph"]
    text, logits = _greedy(out, side, "the ", 40)
    assert text == textgen.generate("the ", length=40, temperature=0)
    # and the logits along the way, against the torch model's step
    model = textgen.model_
    with torch.no_grad():
        o = model(textgen.vocab_.encode("the ")[None])
        ref, state = o.logits[:, -1], o.state
        for i, ch in enumerate(text[4:]):
            assert np.abs(logits[i] - ref[0].numpy()).max() <= TOL
            ref, state = model.step(textgen.vocab_.encode(ch), state)


@pytest.mark.slow
def test_textgen_whole_sequence_graph(textgen: Any, tmp_path: Path) -> None:
    path = textgen.export_onnx(tmp_path / "lm.onnx")
    ids = torch.randint(0, len(textgen.vocab_), (3, 17))
    out = run(session(path), {"tokens": ids})
    with torch.no_grad():
        ref = textgen.model_(ids)
    assert np.abs(out["logits"] - ref.logits.numpy()).max() <= TOL
    for name, part in zip(("h_n", "c_n"), ref.state, strict=True):
        assert np.abs(out[name] - part.numpy()).max() <= TOL


# -- the other applications (slow: bigger graphs) ---------------------------------------


@pytest.mark.slow
def test_sentiment_ids_and_lengths_give_predict_proba(tmp_path: Path) -> None:
    from rnnkit.data.tokenizers import tokenizer_from_dict

    est = rnnkit.SentimentClassifier(preset="tiny", epochs=2, hidden_size=16, **QUIET)
    est.fit(TEXTS, LABELS, val_texts=TEXTS[:8], val_labels=LABELS[:8])
    path = est.export_onnx(tmp_path / "cls.onnx")
    side = json.loads((tmp_path / "cls.json").read_text())
    assert side["classes"] == est.classes_
    # the user's side: the saved tokenizer, padding with 0, lengths
    tok = tokenizer_from_dict(est._artifacts()["tokenizer.json"])
    texts = ["good fun", "dull film and bad awful fun", "great"]
    rows = [tok.encode(t) for t in texts]
    T = max(map(len, rows))
    ids = np.array([r + [0] * (T - len(r)) for r in rows], dtype=np.int64)
    out = run(session(path), {"ids": ids, "lengths": np.array([len(r) for r in rows])})
    assert np.abs(out["probs"] - est.predict_proba(texts)).max() <= TOL


@pytest.mark.slow
def test_translate_greedy_loop_over_the_step_graph_gives_translate(tmp_path: Path) -> None:
    est = rnnkit.Translator(preset="tiny", max_steps=6, eval_interval=3, hidden_size=16, **QUIET)
    est.fit(PAIRS, val_pairs=PAIRS[:6])
    path = est.export_onnx(tmp_path / "mt.onnx")
    side = json.loads((tmp_path / "mt.json").read_text())
    assert [g["file"] for g in side["graphs"]] == ["mt.onnx", "mt.decoder.onnx"]
    enc, dec = session(path), session(tmp_path / "mt.decoder.onnx")
    src = est._encode_src(["one two .", "two three .", "zero"])
    ours = []
    for ids in src:
        state = run(enc, {"src": np.array([ids]), "src_len": np.array([len(ids)])})
        y, hyp = side["bos_id"], []
        limit = max(10, math.ceil(side["max_len_ratio"] * len(ids)))
        for t in range(limit + 1):
            keep = ("memory", "keys", "mask", "h", "c", "feed")
            out = run(dec, {"y_prev": np.array([y]), **{k: state[k] for k in keep if k in state}})
            y = int(out["logits"][0].argmax()) if t < limit else side["eos_id"]
            if y == side["eos_id"]:
                break
            hyp.append(y)
            state |= {k: out[f"{k}_n"] for k in ("h", "c", "feed") if f"{k}_n" in out}
        ours.append(hyp)
    assert ours == est.translate_ids(src, beam=1)


@pytest.mark.slow
def test_speech_chunks_equal_the_whole_utterance(tmp_path: Path) -> None:
    from rnnkit.speech import Utterance

    utts = [Utterance(_clip(t, i), t, "", f"u{i}") for i, t in enumerate(["ab", "ba", "abc"])]
    est = rnnkit.SpeechRecognizer(preset="tiny", max_steps=4, eval_interval=2, hidden_size=16)
    est.set_params(**QUIET).fit(utts, utts[:2])
    feats, ref = est.log_probs(_clip("abc", 9))  # normalised features (T, M), (T', V)
    whole = est.export_onnx(tmp_path / "am.onnx")
    out = run(session(whole), {"features": feats[None], "lengths": np.array([len(feats)])})
    assert np.abs(out["log_probs"][0] - ref.numpy()).max() <= TOL
    path = est.export_onnx(tmp_path / "stream.onnx", streaming=True)
    side = json.loads((tmp_path / "stream.json").read_text())
    sess, s, state, chunks = session(path), side["subsample"], _zeros(side), []
    usable = len(feats) // s * s
    for a in range(0, usable, 3 * s):  # chunks of 3 output frames
        out = run(sess, {"features": feats[None, a : min(a + 3 * s, usable)], **state})
        state = {n: out[f"{n}_n"] for n in state}
        chunks.append(out["log_probs"][0])
    assert np.abs(np.concatenate(chunks) - ref.numpy()).max() <= TOL


def test_speech_spectral_front_end_exports(tmp_path: Path) -> None:
    from rnnkit.speech import Utterance

    utts = [Utterance(_clip(t, i), t, "", f"u{i}") for i, t in enumerate(["ab", "ba", "abc"])]
    est = rnnkit.SpeechRecognizer(
        preset="tiny",
        max_steps=4,
        eval_interval=2,
        hidden_size=16,
        bidirectional=True,
        spec_channels=4,
        norm="cmn",
    )
    est.set_params(**QUIET).fit(utts, utts[:2])
    feats, ref = est.log_probs(_clip("abc", 9))
    whole = est.export_onnx(tmp_path / "am.onnx")
    out = run(session(whole), {"features": feats[None], "lengths": np.array([len(feats)])})
    assert np.abs(out["log_probs"][0] - ref.numpy()).max() <= TOL


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["direct", "autoregressive"])
def test_forecast_graph_gives_the_forecast(mode: str, tmp_path: Path) -> None:
    from rnnkit.forecast.scaling import TargetTransform, to_levels
    from rnnkit.forecast.windows import model_inputs

    est = rnnkit.Forecaster(
        lookback=12, horizon=3, epochs=3, ensemble=2, hidden_size=8, mode=mode, **QUIET
    ).fit(_series())
    c, hist = est.fitted_config_, est.context_
    transform = TargetTransform(est.config.train.target_transform)
    inputs, _, _ = model_inputs(hist, transform, est.target_scaler_, None, None)
    x = inputs[:, -c.lookback :].astype(np.float32)  # (S, L, D)
    ar = mode == "autoregressive"
    ref = est.forecast(hist, c.horizon)
    out = run(session(est.export_onnx(tmp_path / "f.onnx")), {"x": x})
    levels = [out[k].astype(np.float64) for k in ("point", "lower", "upper")]
    last = hist.values[-1]
    got = to_levels(transform, est.target_scaler_, tuple(levels), last, autoregressive=ar)
    for a, b in zip(got, ref, strict=True):
        assert np.abs(a - b).max() <= TOL * max(1.0, np.abs(b).max())
    if not ar:
        return
    path = est.export_onnx(tmp_path / "step.onnx", streaming=True)
    side = json.loads((tmp_path / "step.json").read_text())
    sess, K, state = session(path), side["members"], _zeros(side, batch=len(x))
    for t in range(c.lookback):  # the window, step by step
        o = run(sess, {"x": np.repeat(x[None, :, t], K, axis=0), **state})
        state = {n: o[f"{n}_n"] for n in state}
    steps = []
    for _ in range(c.horizon):  # then each member's own median fed back
        steps.append([o[k] for k in ("point", "lower", "upper")])
        o = run(sess, {"x": o["point"][:, :, None], **state})
        state = {n: o[f"{n}_n"] for n in state}
    for i, k in enumerate(("point", "lower", "upper")):
        mean = np.stack([s[i] for s in steps], axis=-1).mean(0)  # (S, H): over members
        assert np.abs(mean - out[k]).max() <= TOL


# -- what cannot be exported (no export runs) --------------------------------------------


def test_refusals_are_one_line_errors(textgen: Any, tmp_path: Path) -> None:
    with pytest.raises(NotFittedError):
        rnnkit.TextGenerator(preset="tiny").export_onnx(tmp_path / "m.onnx")
    with pytest.raises(UserError, match="^textgen exports a step graph"):
        textgen.export_onnx(tmp_path / "m.onnx", streaming="chunk")
    fc = rnnkit.Forecaster(lookback=12, horizon=3, epochs=1, ensemble=1, hidden_size=4, **QUIET)
    with pytest.raises(UserError, match="^this forecaster is direct .* it has no step graph"):
        fc.fit(_series()).export_onnx(tmp_path / "m.onnx", streaming=True)
    seq = rnnkit.SequenceRegressor(hidden_size=4, epochs=1, **QUIET)
    seq.fit(np.random.default_rng(0).normal(size=(8, 5, 2)), np.zeros(8))
    with pytest.raises(UserError, match="^SequenceRegressor models have no ONNX export$"):
        seq.export_onnx(tmp_path / "m.onnx")
    assert not list(tmp_path.glob("*.onnx"))


def test_sentiment_refuses_streaming_and_ensembles(tmp_path: Path) -> None:
    est = rnnkit.SentimentClassifier(preset="tiny", epochs=1, hidden_size=8, **QUIET)
    est.fit(TEXTS, LABELS, val_texts=TEXTS[:8], val_labels=LABELS[:8])
    with pytest.raises(UserError, match="^sentiment models classify a whole text"):
        est.export_onnx(tmp_path / "m.onnx", streaming=True)
    ens = rnnkit.SentimentClassifier.from_members([est, est])
    with pytest.raises(UserError, match=r"^this is an ensemble of 2 models; export each member"):
        ens.export_onnx(tmp_path / "m.onnx")


def test_the_application_is_found_without_a_manifest(textgen: Any, tmp_path: Path) -> None:
    folder = textgen.save(tmp_path / "model")
    assert detect_app(folder) == "textgen" == detect_app(tmp_path / "model")
    (folder / "manifest.json").unlink()  # a folder of rnnkit 0.1: found by its files
    assert detect_app(folder) == "textgen"
    (folder / "vocab.json").unlink()
    with pytest.raises(UserError, match="has no manifest.json and not the files of a saved model"):
        detect_app(folder)
    code = main(["export", "onnx", "--checkpoint", str(tmp_path / "nothing"), "--output", "m"])
    assert code == 2
