"""Translator under the estimator contract: construction, fit -> self, evaluate, save/load, CLI."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch
from digit_corpus import digit_corpus

from rnnkit import NotFittedError, Translator, UserError
from rnnkit.cli import main
from rnnkit.translate import TranslateConfig

QUIET = {"progress": "none", "plot": False}

_corpus = digit_corpus  # 'two five .' -> 'zwei fünf .'


def _write_pair(tmp: Path, name: str, pairs) -> str:
    src, tgt = tmp / f"{name}.en", tmp / f"{name}.de"
    src.write_text("".join(p[0] + "\n" for p in pairs), encoding="utf-8")
    tgt.write_text("".join(p[1] + "\n" for p in pairs), encoding="utf-8")
    return f"{src},{tgt}"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def fitted() -> Translator:
    return Translator(preset="tiny", max_steps=40, eval_interval=20, seed=0, **QUIET).fit(
        _corpus(200, 3), val_pairs=_corpus(10, 4)
    )


def test_construct_from_a_preset_with_overrides() -> None:
    tr = Translator(preset="tiny", epochs=1, hidden_size=32, decode__beam=2, seed=3)
    assert isinstance(tr.config, TranslateConfig)
    assert tr.config.epochs == 1 and tr.config.model.hidden_size == 32
    assert tr.config.decode.beam == 2 and tr.config.data.vocab_size == 300  # from the preset
    assert tr.seed == 3 and "epochs=1" in repr(tr)
    with pytest.raises(UserError, match="batch_size is ambiguous"):
        Translator(batch_size=8)
    with pytest.raises(UserError, match="unknown option hiden_size"):
        Translator(hiden_size=8)
    with pytest.raises(UserError, match="pass config or preset, not both"):
        Translator(TranslateConfig(), preset="tiny")


def test_unfitted_use_raises_not_fitted_error(tmp_path) -> None:
    tr = Translator(preset="tiny")
    for call in (
        lambda: tr.translate(["one ."]),
        lambda: tr.predict(["one ."]),
        lambda: tr.evaluate([("one .", "eins .")]),
        lambda: tr.attention("one ."),
        lambda: tr.plot_attention("one ."),
        lambda: tr.save(tmp_path / "m"),
    ):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call()


def test_device_is_checked_before_any_data_is_read(tmp_path) -> None:
    tr = Translator(preset="tiny", device="cuda:99", data__source=str(tmp_path / "none.tsv"))
    with pytest.raises(UserError, match="cuda:99"):
        tr.fit()


def test_fit_returns_self_with_history_and_metrics(fitted) -> None:
    tr = fitted
    assert isinstance(tr, Translator) and not tr.model_.training
    assert [e["step"] for e in tr.history_] == [20, 40]
    assert set(tr.metrics_) >= {"bleu", "val_loss", "step", "measured_on"}
    assert tr.metrics_["step"] == 40  # without a run directory the last model is kept
    assert "10 validation pairs" in tr.metrics_["measured_on"]
    assert all(
        isinstance(v, float) for k, v in tr.metrics_.items() if k not in ("step", "measured_on")
    )
    assert tr.result_.step == 40


def test_verbose_false_is_silent(capsys) -> None:
    Translator(preset="tiny", max_steps=2, verbose=False).fit(
        _corpus(30, 1) + [("", "leer")], val_pairs=_corpus(4, 2)
    )
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_evaluate_returns_a_json_dict_and_predict_is_translate(fitted, tmp_path) -> None:
    m = fitted.evaluate(_corpus(8, 5), beam=2)
    assert {"bleu", "chrf", "bleu_signature", "chrf_signature", "sentences", "beam"} <= set(m)
    assert m["beam"] == 2 and m["sentences"] == 8 and len(m["hypotheses"]) == 8
    json.loads(json.dumps(m, allow_nan=False))
    sentences = [p[0] for p in _corpus(5, 6)]
    assert fitted.predict(sentences, beam=2) == fitted.translate(sentences, beam=2)
    with pytest.raises(UserError, match="evaluation pair 1 is"):
        fitted.evaluate(["one ."])
    # Without pairs: the validation data that the config names.
    tr = copy.deepcopy(fitted).set_params(
        data__val_source=_write_pair(tmp_path, "dev", _corpus(6, 8))
    )
    assert tr.evaluate(beam=1)["sentences"] == 6
    with pytest.raises(UserError, match="no evaluation data"):
        tr.set_params(data__val_source="", data__source="pairs.tsv").evaluate()


def test_save_load_identical_predictions_and_old_folders(fitted, tmp_path) -> None:
    sentences = [p[0] for p in _corpus(12, 7)]
    before = fitted.translate(sentences, beam=3)
    folder = fitted.save(tmp_path / "model")
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "manifest.json",
        "README.md",
    ):
        assert (folder / name).is_file(), name
    again = Translator.load(folder)
    assert again.translate(sentences, beam=3) == before
    assert again.metrics_["bleu"] == pytest.approx(fitted.metrics_["bleu"])
    # A folder written before manifests existed (no manifest.json, no card) still loads.
    old = tmp_path / "old"
    shutil.copytree(folder, old)
    (old / "manifest.json").unlink()
    (old / "README.md").unlink()
    assert Translator.load(old).translate(sentences, beam=3) == before


def test_plot_attention_returns_a_figure_and_saves_only_with_a_path(fitted, tmp_path) -> None:
    from matplotlib.figure import Figure

    fig = fitted.plot_attention("one two .")
    assert isinstance(fig, Figure) and not list(tmp_path.iterdir())
    png = tmp_path / "a.png"
    assert isinstance(fitted.plot_attention("one two .", png, beam=1), Figure)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_dir_holding_a_run_is_refused_without_overwrite(tmp_path, capsys) -> None:
    data = _write_pair(tmp_path, "train", _corpus(40, 3))
    dev = _write_pair(tmp_path, "dev", _corpus(6, 4))
    run = tmp_path / "run"
    base = ["translate", "train", "--preset", "tiny", "--data", data, "--run-dir", str(run),
            "--data.val_source", dev, "--train.max_steps=2", "--train.progress=none",
            "--train.plot=false"]  # fmt: skip
    metrics = tmp_path / "train.json"
    assert main([*base, "--json", str(metrics)]) == 0
    m = json.loads(metrics.read_text(encoding="utf-8"))
    assert m["step"] == 2 and "bleu" in m and dev.split(",")[0] in m["measured_on"]
    capsys.readouterr()
    assert main(base) == 2
    assert "already holds a run" in capsys.readouterr().err
    with pytest.raises(UserError, match="already holds a run"):
        Translator(preset="tiny", max_steps=2, **QUIET).fit(_corpus(20, 1), run_dir=run)
    assert main([*base, "--overwrite"]) == 0

    # eval and predict: --json PATH parses
    ev = tmp_path / "eval.json"
    assert main(["translate", "eval", "--checkpoint", str(run), "--json", str(ev)]) == 0
    e = json.loads(ev.read_text(encoding="utf-8"))
    assert e["data"] == dev and e["sentences"] == 6 and "hypotheses" not in e
    pr = tmp_path / "predict.json"
    assert main(["translate", "predict", "--checkpoint", str(run), "one .", "two .",
                 "--beam", "1", "--json", str(pr)]) == 0  # fmt: skip
    p = json.loads(pr.read_text(encoding="utf-8"))
    assert p["beam"] == 1 and [t["source"] for t in p["translations"]] == ["one .", "two ."]
    tr = Translator.load(run)
    assert [t["translation"] for t in p["translations"]] == tr.translate(["one .", "two ."], beam=1)
    capsys.readouterr()
    assert main(["translate", "predict", "--checkpoint", str(run), "one .", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["translations"][0]["source"] == "one ."
