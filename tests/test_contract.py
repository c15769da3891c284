"""One estimator contract, checked the same way over all five applications.

For each application, on tiny synthetic data and a few training steps:
construct from a preset with keyword overrides; ``fit`` returns ``self`` and
leaves ``history_``/``metrics_``/``model_``; ``evaluate`` returns a plain,
JSON-serialisable dict; ``save`` -> ``load`` gives identical predictions (and
the folder carries a model card and a verified manifest); unfitted use raises
``NotFittedError``; ``rnnkit <app> eval --checkpoint DIR --json PATH`` writes
JSON that parses; ``sklearn.base.clone`` rebuilds the estimator.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

import rnnkit
from rnnkit import NotFittedError
from rnnkit.cli import main
from rnnkit.training import read_json, verify_checkpoint

QUIET = {"verbose": False, "seed": 0, "threads": 1}


@dataclass
class App:
    name: str  # the CLI command
    cls: str  # the public estimator name
    make: Callable[[], Any]  # an unfitted estimator from a preset with overrides
    fit: Callable[[Any, Path], Any]  # fit on tiny data (tmp dir for files)
    predict: Callable[[Any], Any]  # deterministic predictions to compare
    evaluate: Callable[[Any, Path], dict]
    eval_args: Callable[[Path], list[str]]  # CLI eval options besides --checkpoint/--json


# -- tiny data per application -------------------------------------------------------

TEXTS = ["good fun film", "great and fun", "bad dull film", "awful and dull"] * 6
LABELS = ["pos", "pos", "neg", "neg"] * 6
EN = ["zero", "one", "two", "three"]
DE = ["null", "eins", "zwei", "drei"]
PAIRS = [
    (f"{EN[i % 4]} {EN[(i + 1) % 4]} .", f"{DE[i % 4]} {DE[(i + 1) % 4]} .") for i in range(24)
]
TEXT = "the cat sat on the mat. the dog sat on the log. " * 40
SR = 16000


def _series() -> np.ndarray:
    t = np.arange(120)
    return 10 + np.sin(2 * np.pi * t / 12) + 0.1 * np.random.default_rng(0).standard_normal(120)


def _clip(text: str, seed: int) -> np.ndarray:
    """A made-up 'word': one tone per character (enough for the contract, not for accuracy)."""
    rng = np.random.default_rng(seed)
    parts = []
    for ch in text:
        f = 300 + 40 * (ord(ch) - 96)
        t = np.arange(int(0.12 * SR)) / SR
        parts.append(0.3 * np.sin(2 * np.pi * f * t) + 0.01 * rng.standard_normal(t.size))
    return np.concatenate(parts).astype(np.float32)


def _utterances() -> list[Any]:
    from rnnkit.speech import Utterance

    return [
        Utterance(_clip(t, i), t, "", f"u{i}") for i, t in enumerate(["ab", "ba", "abc", "cab"])
    ]


def _speech_manifest(tmp: Path) -> str:
    rows = ["path,transcript"]
    for i, t in enumerate(["ab", "ba"]):
        sf.write(tmp / f"c{i}.wav", _clip(t, i), SR)
        rows.append(f"c{i}.wav,{t}")
    (tmp / "manifest.csv").write_text("\n".join(rows) + "\n")
    return str(tmp / "manifest.csv")


def _csv_series(tmp: Path) -> str:
    rows = "\n".join(f"{t},{v:.5f}" for t, v in enumerate(_series()))
    (tmp / "series.csv").write_text("t,y\n" + rows + "\n")
    return str(tmp / "series.csv")


def _sentiment_file(tmp: Path) -> str:
    rows = ["text,label"] + [f"{t},{y}" for t, y in zip(TEXTS[:8], LABELS[:8], strict=True)]
    (tmp / "dev.csv").write_text("\n".join(rows) + "\n")
    return str(tmp / "dev.csv")


def _pair_files(tmp: Path) -> str:
    (tmp / "v.en").write_text("".join(p[0] + "\n" for p in PAIRS[:6]))
    (tmp / "v.de").write_text("".join(p[1] + "\n" for p in PAIRS[:6]))
    return f"{tmp / 'v.en'},{tmp / 'v.de'}"


def _text_file(tmp: Path) -> str:
    (tmp / "val.txt").write_text(TEXT[:400])
    return str(tmp / "val.txt")


APPS = [
    App(
        "forecast",
        "Forecaster",
        lambda: rnnkit.Forecaster(
            lookback=12, horizon=3, epochs=3, ensemble=1, hidden_size=8, **QUIET
        ),
        lambda est, tmp: est.fit(_series()),
        lambda est: est.predict(3)["forecast"].to_numpy(),
        lambda est, tmp: est.evaluate(_series()),
        lambda tmp: ["--data", _csv_series(tmp)],
    ),
    App(
        "sentiment",
        "SentimentClassifier",
        lambda: rnnkit.SentimentClassifier(preset="tiny", epochs=2, hidden_size=16, **QUIET),
        lambda est, tmp: est.fit(TEXTS, LABELS, val_texts=TEXTS[:8], val_labels=LABELS[:8]),
        lambda est: est.predict_proba(["good fun", "dull film"]),
        lambda est, tmp: est.evaluate(TEXTS[:8], LABELS[:8]),
        lambda tmp: ["--data", _sentiment_file(tmp), "--plot", ""],
    ),
    App(
        "textgen",
        "TextGenerator",
        lambda: rnnkit.TextGenerator(
            preset="tiny", max_steps=6, eval_interval=3, hidden_size=16, **QUIET
        ),
        lambda est, tmp: est.fit(TEXT, val_text=TEXT[:300]),
        lambda est: est.generate("the ", length=20, seed=1, temperature=0.8),
        lambda est, tmp: est.evaluate(TEXT[:300]),
        lambda tmp: ["--data", _text_file(tmp)],
    ),
    App(
        "translate",
        "Translator",
        lambda: rnnkit.Translator(
            preset="tiny", max_steps=6, eval_interval=3, hidden_size=16, **QUIET
        ),
        lambda est, tmp: est.fit(PAIRS, val_pairs=PAIRS[:6]),
        lambda est: est.translate(["one two .", "two three ."], beam=2),
        lambda est, tmp: est.evaluate(PAIRS[:6]),
        lambda tmp: ["--data", _pair_files(tmp)],
    ),
    App(
        "speech",
        "SpeechRecognizer",
        lambda: rnnkit.SpeechRecognizer(
            preset="tiny", max_steps=4, eval_interval=2, hidden_size=16, **QUIET
        ),
        lambda est, tmp: est.fit(_utterances(), _utterances()[:2]),
        lambda est: (
            est.log_probs(_clip("ab", 9))[0].detach().numpy()
            if hasattr(est, "log_probs")
            else est.predict([_clip("ab", 9)])
        ),
        lambda est, tmp: est.evaluate(_utterances()[:2]),
        lambda tmp: ["--data", _speech_manifest(tmp)],
    ),
]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Path]]:
    """Each application fitted once (a few steps) and saved."""
    out = {}
    for app in APPS:
        tmp = tmp_path_factory.mktemp(app.name)
        est = app.make()
        assert app.fit(est, tmp) is est, f"{app.cls}.fit must return self"
        out[app.name] = (est, tmp)
    return out


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


def _plain(obj: Any) -> bool:
    """JSON-serialisable with plain Python types (NaN allowed, as a float)."""
    if isinstance(obj, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in obj.items())
    if isinstance(obj, list):
        return all(_plain(v) for v in obj)
    return obj is None or isinstance(obj, (str, int, float, bool))


@pytest.mark.parametrize("app", APPS, ids=lambda a: a.name)
def test_public_and_constructed_from_a_preset_with_overrides(app: App) -> None:
    assert app.cls in rnnkit.__all__
    est = app.make()
    assert type(est).__name__ == app.cls and type(est).__module__.startswith(f"rnnkit.{app.name}")
    assert est.seed == 0 and est.threads == 1 and est.verbose is False
    params = est.get_params()
    assert {"device", "threads", "seed", "verbose"} <= set(params)


@pytest.mark.parametrize("app", APPS, ids=lambda a: a.name)
def test_unfitted_use_raises_not_fitted_error(app: App, tmp_path: Path) -> None:
    est = app.make()
    with pytest.raises(NotFittedError, match="not fitted"):
        app.predict(est)
    with pytest.raises(NotFittedError):
        est.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("app", APPS, ids=lambda a: a.name)
def test_fit_leaves_history_metrics_and_model(app: App, fitted: dict) -> None:
    est, _ = fitted[app.name]
    assert est.model_ is not None
    assert isinstance(est.metrics_, dict) and est.metrics_
    assert est.history_ is not None


@pytest.mark.parametrize("app", APPS, ids=lambda a: a.name)
def test_evaluate_returns_a_plain_dict(app: App, fitted: dict) -> None:
    est, tmp = fitted[app.name]
    metrics = app.evaluate(est, tmp)
    assert isinstance(metrics, dict) and metrics
    assert _plain(metrics), metrics
    json.dumps(metrics)
    numbers = [v for v in metrics.values() if isinstance(v, float)]
    assert numbers and not all(math.isnan(v) for v in numbers)


@pytest.mark.parametrize("app", APPS, ids=lambda a: a.name)
def test_save_load_gives_identical_predictions(app: App, fitted: dict, tmp_path: Path) -> None:
    est, _ = fitted[app.name]
    path = est.save(tmp_path / "model")
    manifest = verify_checkpoint(path)
    assert manifest is not None and manifest["app"] == app.name
    assert manifest["estimator"] == app.cls
    assert (path / "README.md").is_file() and f"{app.cls}.load" in (path / "README.md").read_text()
    back = getattr(rnnkit, app.cls).load(path, threads=1)
    assert type(back) is type(est)
    assert _equal(app.predict(back), app.predict(est))
    other = next(a for a in APPS if a.name != app.name)
    with pytest.raises(rnnkit.UserError, match=f"holds a {app.name} model"):
        getattr(rnnkit, other.cls).load(path)


@pytest.mark.parametrize("app", APPS, ids=lambda a: a.name)
def test_cli_eval_json_parses(app: App, fitted: dict, tmp_path: Path) -> None:
    est, _ = fitted[app.name]
    path = est.save(tmp_path / "model")
    out = tmp_path / "metrics.json"
    args = [app.name, "eval", "--checkpoint", str(path), "--json", str(out), "--threads", "1"]
    assert main(args + app.eval_args(tmp_path)) == 0
    data = json.loads(out.read_text())
    assert isinstance(data, dict) and data


@pytest.mark.parametrize("app", APPS, ids=lambda a: a.name)
def test_sklearn_clone(app: App) -> None:
    base = pytest.importorskip("sklearn.base")
    est = app.make()
    clone = base.clone(est)
    assert type(clone) is type(est) and clone.config == est.config and clone is not est


def test_save_keeps_the_users_files_and_refuses_foreign_folders(
    fitted: dict, tmp_path: Path
) -> None:
    est, _ = fitted["translate"]
    d = tmp_path / "mine"
    d.mkdir()
    (d / "notes.txt").write_text("mine")
    with pytest.raises(rnnkit.UserError, match="not an rnnkit model"):
        est.save(d)
    assert [p.name for p in d.iterdir()] == ["notes.txt"]
    path = est.save(tmp_path / "m")
    (path / "notes.txt").write_text("mine")
    est.save(path)  # over an earlier model: replaced, the user's file kept
    assert (path / "notes.txt").read_text() == "mine"
    assert read_json(path / "manifest.json")["app"] == "translate"


def test_a_damaged_weight_file_is_refused_by_every_application(
    fitted: dict, tmp_path: Path
) -> None:
    for app in APPS:
        est, _ = fitted[app.name]
        path = est.save(tmp_path / app.name)
        data = bytearray((path / "model.safetensors").read_bytes())
        for i in random.Random(0).sample(range(len(data) // 2, len(data)), 64):
            data[i] ^= 0xFF
        (path / "model.safetensors").write_bytes(bytes(data))
        with pytest.raises(rnnkit.UserError, match="^damaged: .*model.safetensors"):
            getattr(rnnkit, app.cls).load(path)
