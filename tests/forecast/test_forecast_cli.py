"""``rnnkit forecast backtest|train|eval|predict`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnnkit.cli import main

FAST = [
    "--model.lookback=8",
    "--model.hidden_size=8",
    "--train.epochs=5",
    "--train.ensemble=1",
    "--backtest.arima=false",
]


def sine_csv(path: Path, n: int = 96, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 10 + 3 * np.sin(2 * np.pi * t / 12) + 0.05 * rng.normal(size=n)
    frame = pd.DataFrame({"month": pd.date_range("2000-01-01", periods=n, freq="MS"), "y": y})
    frame.to_csv(path, index=False)
    return path


def test_backtest_prints_the_table_and_writes_the_plot_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = sine_csv(tmp_path / "sales.csv")
    png, out_json = tmp_path / "bt.png", tmp_path / "bt.json"
    argv = ["forecast", "backtest", "--data", str(csv), "--horizon", "3"]
    argv += ["--backtest.test_size=12", "--plot", str(png), "--json", str(out_json), *FAST]
    rc = main([*argv, "--threads", "1"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "horizon 3 (10 forecasts)" in out.out
    for name in ("rnn", "naive", "seasonal_naive", "drift", "mean", "ets", "MASE", "skill"):
        assert name in out.out
    assert "[rnn] fitting on 84 steps" in out.err  # progress goes to stderr
    assert png.stat().st_size > 10_000
    summary = json.loads(out_json.read_text())
    assert summary["horizon"] == 3 and summary["data"] == str(csv)
    assert set(summary["metrics"]) == {"h1", "h3", "all"}
    assert summary["metrics"]["h1"]["naive"]["skill"] == 0.0
    assert summary["metrics"]["h1"]["naive"]["coverage"] is None  # NaN: no interval


def test_train_eval_predict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = sine_csv(tmp_path / "sales.csv")
    run = tmp_path / "run"
    train = ["forecast", "train", "--data", str(csv), "--horizon", "3", "--run-dir", str(run)]
    train += ["--data.calendar=true", *FAST[:-1]]  # month features: predict computes them
    assert main([*train, "--json", str(tmp_path / "train.json")]) == 0
    assert "saved" in capsys.readouterr().out
    assert (run / "best" / "forecaster.json").is_file()
    assert json.loads((tmp_path / "train.json").read_text())["val_loss"] > 0

    # the same run directory again: refused, then replaced with --overwrite
    assert main(train) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main([*train, "--overwrite"]) == 0

    out_csv, out_json = tmp_path / "fc.csv", tmp_path / "fc.json"
    predict = ["forecast", "predict", "--checkpoint", str(run), "--output", str(out_csv)]
    rc = main([*predict, "--plot", str(tmp_path / "fc.png"), "--json", str(out_json)])
    assert rc == 0
    got = pd.read_csv(out_csv)
    assert list(got.columns) == ["month", "series", "horizon", "forecast", "lower", "upper"]
    assert list(got["month"]) == ["2008-01-01", "2008-02-01", "2008-03-01"]
    rows = json.loads(out_json.read_text())["forecast"]
    assert [r["horizon"] for r in rows] == [1, 2, 3] and rows[0]["month"].startswith("2008-01")
    capsys.readouterr()
    assert main([*predict[:4], "--output", "", "--plot", "", "--json", "-"]) == 0
    assert len(json.loads(capsys.readouterr().out)["forecast"]) == 3  # stdout: only the JSON
    # predict from new history: the same model conditioned on a shorter CSV
    short = sine_csv(tmp_path / "short.csv", n=60)
    assert main([*predict, "--data", str(short), "--plot", ""]) == 0
    assert pd.read_csv(out_csv)["month"].iloc[0] == "2005-01-01"

    scores_json = tmp_path / "eval.json"
    newer = sine_csv(tmp_path / "newer.csv", n=108)  # 12 months the model has not seen
    rc = main(["forecast", "eval", "--checkpoint", str(run), "--data", str(newer), "--json",
               str(scores_json), "--threads", "1"])  # fmt: skip
    assert rc == 0
    scores = json.loads(scores_json.read_text())
    assert scores["horizon"] == 3 and scores["n_forecasts"] == 3 and scores["MASE"] < 1
    assert "MASE" in capsys.readouterr().out


def test_train_resume_after_an_interruption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rnnkit.forecast import fitting

    base = fitting.Batches

    class Interrupting(base):  # type: ignore[misc, valid-type]
        def __iter__(self):  # noqa: ANN204
            if self.seed == 1 and self.epoch == 2:  # Ctrl-C in epoch 3 of member 2
                raise KeyboardInterrupt
            return super().__iter__()

    csv = sine_csv(tmp_path / "sales.csv", n=72)
    run = tmp_path / "run"
    train = ["forecast", "train", "--data", str(csv), "--horizon", "3", "--run-dir", str(run)]
    train += [*FAST[:3], "--train.ensemble=2"]
    monkeypatch.setattr(fitting, "Batches", Interrupting)
    assert main(train) == 130
    monkeypatch.setattr(fitting, "Batches", base)
    assert (run / "members/member1/select.json").is_file() and not (run / "best").exists()
    assert main(["forecast", "train", "--run-dir", str(run), "--resume"]) == 0
    assert "saved" in capsys.readouterr().out and (run / "best").is_dir()
    assert len(json.loads((run / "best/forecaster.json").read_text())["fit_log"]) == 2


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def run(*argv: str) -> str:
        assert main(["forecast", *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        return err[-1]

    assert "data file nope.csv not found" in run("backtest", "--data", "nope.csv")
    frame = pd.read_csv(sine_csv(tmp_path / "gap.csv", n=60))
    frame.loc[10, "y"] = np.nan
    frame.to_csv(tmp_path / "gap.csv", index=False)
    assert "missing values (first at 2000-11-01" in run(
        "backtest", "--data", str(tmp_path / "gap.csv")
    )
    dup = tmp_path / "dup.csv"
    pd.concat([frame, frame.iloc[:1]]).to_csv(dup, index=False)
    assert "duplicate timestamps" in run(
        "train", "--data", str(dup), "--run-dir", str(tmp_path / "r")
    )
    text = tmp_path / "text.csv"
    frame.assign(y="abc").to_csv(text, index=False)
    assert "no numeric target column" in run("backtest", "--data", str(text))
    short = sine_csv(tmp_path / "short.csv", n=20)
    msg = run("backtest", "--data", str(short), "--backtest.test_size=5", *FAST)
    assert "test_size=5 leaves 15 training steps of 20" in msg
    msg = run("train", "--data", str(short), "--horizon", "6", "--run-dir", str(tmp_path / "r"))
    assert "series too short: 20 steps, need at least" in msg
    with pytest.raises(SystemExit) as exc:
        main(["forecast", "backtest", "--model.hidden=3"])
    assert exc.value.code == 2
    assert "unknown option --model.hidden" in capsys.readouterr().err
    assert "is missing config.json" in run("predict", "--checkpoint", str(tmp_path))
    assert "--horizon must be >= 1" in run(
        "predict", "--checkpoint", str(tmp_path), "--horizon", "0"
    )
    assert "nothing holds no checkpoint/ to resume from; drop --resume" in run(
        "train", "--run-dir", str(tmp_path / "nothing"), "--resume"
    )
    assert "unknown device" in run("backtest", "--device", "tpu")
