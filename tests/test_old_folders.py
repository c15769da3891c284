"""Model folders saved by the previous release (git 6c76f5c, rnnkit 0.1, before the redesign)
load with today's public API and predict what they predicted then.

tests/fixtures/old_models/<app>/model/ was written by that release (no manifest.json, its
own config layout) and <app>/predictions.json holds its outputs on fixed inputs; see
tests/fixtures/old_models/README.md and make_fixtures.py. Forecast has its own old folder in
tests/forecast/data/old_forecaster. Labels and texts must match exactly, floats to 1e-6.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rnnkit import SentimentClassifier, SpeechRecognizer, TextGenerator, Translator
from rnnkit.errors import UserError

FIXTURES = Path(__file__).parent / "fixtures" / "old_models"
APPS = ("sentiment", "textgen", "translate", "speech")
ATOL = 1e-6


def _expected(app: str) -> dict[str, Any]:
    return json.loads((FIXTURES / app / "predictions.json").read_text(encoding="utf-8"))


def _close(got: Any, expected: Any) -> None:
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), expected, atol=ATOL, rtol=0)


@pytest.fixture
def folder(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A copy of the app's old folder (loading must work from anywhere, and may not write)."""
    app = request.param
    return Path(shutil.copytree(FIXTURES / app / "model", tmp_path / app))


@pytest.mark.parametrize("app", APPS)
def test_the_fixtures_are_old_folders(app: str) -> None:
    model = FIXTURES / app / "model"
    assert (model / "config.json").is_file() and (model / "model.safetensors").is_file()
    assert not (model / "manifest.json").exists()  # written before manifests existed
    assert "6c76f5c" in _expected(app)["written_by"]


@pytest.mark.parametrize(
    ("folder", "cls"),
    [("sentiment", SentimentClassifier), ("textgen", TextGenerator),
     ("translate", Translator), ("speech", SpeechRecognizer)],
    indirect=["folder"],
)  # fmt: skip
def test_loading_leaves_an_old_folder_as_it_was(folder: Path, cls: type) -> None:
    before = {f.name: f.read_bytes() for f in folder.iterdir()}
    cls.load(folder, verbose=False)
    assert {f.name: f.read_bytes() for f in folder.iterdir()} == before


CLASSES = {
    "sentiment": SentimentClassifier,
    "textgen": TextGenerator,
    "translate": Translator,
    "speech": SpeechRecognizer,
}


@pytest.mark.parametrize("app", APPS)
def test_another_app_refuses_an_old_folder_in_one_line(app: str) -> None:
    """Old folders have no manifest naming their app: their files and config still tell."""
    for other, cls in CLASSES.items():
        if other != app:
            with pytest.raises(UserError, match=rf"is not a (saved )?{other} (model|config)") as e:
                cls.load(FIXTURES / app / "model", verbose=False)
            assert "\n" not in str(e.value)


def test_the_fixtures_stay_small() -> None:
    size = sum(f.stat().st_size for f in FIXTURES.rglob("*") if f.is_file())
    assert size < 1_000_000, f"tests/fixtures/old_models holds {size:,} bytes"


@pytest.mark.parametrize("folder", ["sentiment"], indirect=True)
def test_old_sentiment_folder(folder: Path) -> None:
    exp = _expected("sentiment")
    clf = SentimentClassifier.load(folder, verbose=False)
    assert list(clf.classes_) == exp["classes"]
    assert list(clf.predict(exp["texts"])) == exp["predict"]
    _close(clf.predict_proba(exp["texts"]), exp["predict_proba"])


@pytest.mark.parametrize("folder", ["textgen"], indirect=True)
def test_old_textgen_folder(folder: Path) -> None:
    exp = _expected("textgen")
    gen = TextGenerator.load(folder, verbose=False)
    assert [gen.generate(p, 40, temperature=0.0) for p in exp["prompts"]] == exp["greedy_40"]
    sampled = [gen.generate(p, 40, temperature=1.0, top_k=5, seed=1) for p in exp["prompts"]]
    assert sampled == exp["sample_40_seed_1"]
    got = gen.evaluate(exp["eval_text"])
    assert got["characters"] == exp["evaluate"]["characters"]
    for key in ("loss", "bits_per_char", "perplexity"):
        _close(got[key], exp["evaluate"][key])


@pytest.mark.parametrize("folder", ["translate"], indirect=True)
def test_old_translate_folder(folder: Path) -> None:
    exp = _expected("translate")
    tr = Translator.load(folder, verbose=False)
    assert tr.translate(exp["sentences"], beam=1) == exp["greedy"]
    assert tr.translate(exp["sentences"], beam=3) == exp["beam_3"]
    _close(tr.attention(exp["sentences"][0], beam=1)[2], exp["attention_0"])


def _make_fixtures() -> Any:
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.mark.parametrize("folder", ["speech"], indirect=True)
def test_old_speech_folder(folder: Path) -> None:
    exp = _expected("speech")
    clips = [_make_fixtures().synthetic_word(c["word"], c["seed"]) for c in exp["clips"]]
    rec = SpeechRecognizer.load(folder, verbose=False)
    assert rec.predict(clips, beam=1) == exp["greedy"]
    assert rec.predict(clips, beam=4) == exp["beam_4"]
    _close(rec.log_probs(clips[0])[1], exp["log_probs_clip_0"])
