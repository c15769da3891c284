"""Ensembles: members trained alike (different seeds), probabilities averaged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rnnkit import SentimentClassifier
from rnnkit.cli import main as cli_main
from rnnkit.errors import UserError


def test_ensemble_averages_its_members_and_saves_and_loads(
    tiny_tsv: Path, tmp_path: Path, tiny_config, pos, neg
):
    cfg = tiny_config(**{
        "ensemble": 2, "epochs": 6, "data.source": str(tiny_tsv),
        "data.val_source": str(tiny_tsv),
    })  # fmt: skip
    run = tmp_path / "run"
    ens = SentimentClassifier(cfg, verbose=False)
    assert ens.fit(run_dir=run) is ens
    assert len(ens.members_) == 2 and (run / "ensemble.json").is_file()
    members = [SentimentClassifier.load(run / f"member{k}") for k in (1, 2)]
    assert [m.config.train.seed for m in members] == [cfg.train.seed, cfg.train.seed + 1]
    texts = pos + neg + ["an unseen , gripping mess"]
    probs = [m.predict_proba(texts) for m in members]
    assert not np.allclose(probs[0], probs[1])  # different seeds, different models
    np.testing.assert_allclose(ens.predict_proba(texts), (probs[0] + probs[1]) / 2, rtol=1e-6)
    figures = ens.result_
    assert [m["seed"] for m in figures["members"]] == [cfg.train.seed, cfg.train.seed + 1]
    report = ens.evaluate(pos + neg, ["positive"] * 6 + ["negative"] * 6)
    assert figures["val_accuracy"] == report["accuracy"] == ens.metrics_["val_accuracy"]
    assert {h["member"] for h in ens.history_} == {1, 2}
    # The run directory and a saved copy load back as the same ensemble.
    again = SentimentClassifier.load(run)
    assert len(again.members_) == 2
    np.testing.assert_array_equal(again.predict_proba(texts), ens.predict_proba(texts))
    copy = SentimentClassifier.load(ens.save(tmp_path / "copy"))
    np.testing.assert_array_equal(copy.predict_proba(texts), ens.predict_proba(texts))
    assert copy.metrics_["val_accuracy"] == ens.metrics_["val_accuracy"]
    # A used run directory is refused; resume on a finished ensemble reloads every member.
    with pytest.raises(UserError, match="already holds an ensemble"):
        SentimentClassifier(cfg, verbose=False).fit(run_dir=run)
    resumed = SentimentClassifier(cfg, verbose=False).fit(run_dir=run, resume=True)
    np.testing.assert_array_equal(resumed.predict_proba(texts), ens.predict_proba(texts))
    exp = ens.explain("a lovely but dull story")
    assert exp.label == ens.predict(["a lovely but dull story"])[0]
    assert len(exp.scores) == len(exp.tokens) == 5
    # Fitted classifiers combine into an ensemble too.
    both = SentimentClassifier.from_members(members)
    np.testing.assert_array_equal(both.predict_proba(texts), ens.predict_proba(texts))


def test_ensemble_members_in_parallel_processes_equal_one_at_a_time(
    tiny_tsv: Path, tmp_path: Path, capsys, pos, neg
):
    base = ["sentiment", "train", "--data", str(tiny_tsv), "--data.val_source", str(tiny_tsv),
            "--ensemble=2", "--epochs=3", "--model.embed_dim=8", "--model.hidden_size=8",
            "--data.batch_size=4", "--train.progress=none", "--train.plot=false"]  # fmt: skip
    assert cli_main([*base, "--run-dir", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "done: ensemble of 2" in out and out.count("member ") == 2
    assert cli_main([*base, "--run-dir", str(tmp_path / "b"), "--jobs", "2"]) == 0
    a, b = (SentimentClassifier.load(tmp_path / d) for d in "ab")
    np.testing.assert_array_equal(a.predict_proba(pos + neg), b.predict_proba(pos + neg))
    # eval and predict take the ensemble's run directory like any other
    assert cli_main(["sentiment", "eval", "--checkpoint", str(tmp_path / "b"), "--plot", ""]) == 0
    assert "accuracy" in capsys.readouterr().out
    assert (
        cli_main(["sentiment", "predict", "--checkpoint", str(tmp_path / "b"), "a fun story"]) == 0
    )
    assert capsys.readouterr().out.split("\t")[0] in ("positive", "negative")
    assert cli_main([*base, "--run-dir", str(tmp_path / "c"), "--jobs", "0"]) == 2
    assert "--jobs must be >= 1" in capsys.readouterr().err
    # A run directory holding an ensemble: refused, then replaced with --overwrite.
    assert cli_main([*base, "--run-dir", str(tmp_path / "a")]) == 2
    assert "already holds an ensemble" in capsys.readouterr().err
    assert cli_main([*base, "--run-dir", str(tmp_path / "a"), "--overwrite"]) == 0
    # --resume of an ensemble reads its saved config (ensemble.json)
    assert cli_main(["sentiment", "train", "--run-dir", str(tmp_path / "a"), "--resume"]) == 0
    assert "done: ensemble of 2" in capsys.readouterr().out
