"""Bad data and faults in the forecast application: each is a one-line error that names
the cause and a flag that exists, never a traceback, a NaN loss or an ``inf`` forecast."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rnnkit import Forecaster, UserError
from rnnkit.cli import build_parser, main
from rnnkit.forecast.backtest import backtest
from rnnkit.forecast.baselines import NaiveBaseline
from rnnkit.forecast.series import from_frame

TINY = {"lookback": 8, "hidden_size": 8, "ensemble": 1, "epochs": 2, "horizon": 3}
FAST = ["--model.lookback=8", "--model.hidden_size=8", "--train.epochs=2", "--train.ensemble=1"]
# A CUDA device this machine does not have (there is none here; on a GPU machine, no 99th).
NO_CUDA = "cuda:99" if torch.cuda.is_available() else "cuda"


def sine_frame(n: int = 60) -> pd.DataFrame:
    t = np.arange(n)
    y = 10 + 3 * np.sin(2 * np.pi * t / 12)
    return pd.DataFrame({"month": pd.date_range("2000-01-01", periods=n, freq="MS"), "y": y})


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run ``rnnkit forecast ARGV``; it must fail with exit 2 and one ``error:`` line."""
    assert main(["forecast", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: "), err
    assert not any("Traceback" in line for line in err)
    return err[-1]


def _options(app: str, verb: str) -> set[str]:
    def sub(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                return dict(a.choices)
        return {}

    parser = sub(sub(build_parser(["forecast"]))[app])[verb]
    return {o for a in parser._actions for o in a.option_strings}


def assert_flags_exist(message: str, verb: str) -> None:
    """Every ``--flag`` a message names is an option of ``rnnkit forecast VERB``."""
    named = {m.split("=")[0] for m in re.findall(r"--[a-z][\w.-]*", message)}
    missing = named - _options("forecast", verb)
    assert not missing, f"'rnnkit forecast {verb}' has no {sorted(missing)}: {message}"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # default outputs (forecast.png, ...) land there


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("forecaster")
    Forecaster(verbose=False, threads=1, **TINY).fit(sine_frame(), time_col="month").save(d / "m")
    return d / "m"


# ----------------------------------------------------------------------------- values


def test_infinite_values_are_a_data_error_naming_the_column_and_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = write_csv(tmp_path / "inf.csv", sine_frame())
    text = csv.read_text().splitlines()
    text[21] = text[21].split(",")[0] + ",inf"  # row 20: 2001-09-01
    text[31] = text[31].split(",")[0] + ",1e400"  # beyond float64: read as infinity
    csv.write_text("\n".join(text) + "\n")
    msg = one_line_error(capsys, "train", "--data", str(csv), "--run-dir", str(tmp_path / "r"))
    assert "target column 'y' holds 2 infinite value(s) at 2001-09-01, 2002-07-01" in msg
    assert "loss is nan" not in msg and "learning rate" not in msg
    assert_flags_exist(msg, "train")
    assert not (tmp_path / "r").exists()  # refused before anything was written
    frame = sine_frame().assign(temp=1.0)
    frame.loc[3, "temp"] = -np.inf
    with pytest.raises(UserError, match="covariate column 'temp' holds 1 infinite value"):
        from_frame(frame, time_col="month", target_cols=["y"], past_cols=["temp"])


def test_values_near_1e300_are_an_error_not_inf_forecasts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], model_dir: Path
) -> None:
    huge = sine_frame().assign(y=lambda f: f["y"] * 1e300)  # finite, but their spread is not
    with pytest.raises(UserError, match="target column 'y' cannot be scaled: .*1.3e\\+301"):
        Forecaster(verbose=False, **TINY).fit(huge, time_col="month")
    csv = write_csv(tmp_path / "huge.csv", huge)
    msg = one_line_error(capsys, "train", "--data", str(csv), "--run-dir", str(tmp_path / "r"))
    assert "cannot be scaled" in msg and "divide it by a power of ten" in msg
    # A model fitted on ordinary values, asked to forecast from a history near 1e40:
    # its network overflows float32; the forecast would be inf/NaN, exit 0.
    far = write_csv(tmp_path / "far.csv", sine_frame().assign(y=lambda f: f["y"] * 1e40))
    msg = one_line_error(
        capsys, "predict", "--checkpoint", str(model_dir), "--data", str(far), "--output", ""
    )
    assert "the forecast of series 'y' is not finite" in msg


def test_horizon_0_is_an_error_in_every_verb(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], model_dir: Path
) -> None:
    csv = write_csv(tmp_path / "s.csv", sine_frame())
    run = str(tmp_path / "r")
    for argv in (
        ["train", "--data", str(csv), "--run-dir", run, "--horizon", "0"],
        ["train", "--data", str(csv), "--run-dir", run, "--model.horizon=0"],
        ["backtest", "--data", str(csv), "--horizon", "0", "--plot", ""],
        ["eval", "--checkpoint", str(model_dir), "--data", str(csv), "--horizon", "0"],
        ["predict", "--checkpoint", str(model_dir), "--horizon", "0", "--output", ""],
    ):
        assert "horizon must be >= 1, got 0" in one_line_error(capsys, *argv), argv
    with pytest.raises(UserError, match="horizon must be >= 1, got 0"):
        Forecaster(horizon=0)
    f = Forecaster.load(model_dir)
    for call in (lambda: f.predict(0), lambda: f.evaluate(sine_frame(), horizon=0)):
        with pytest.raises(UserError, match="horizon must be >= 1, got 0"):
            call()


# ----------------------------------------------------------------------------- backtest


def test_a_failing_baseline_is_reported_and_the_backtest_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    const = write_csv(tmp_path / "const.csv", sine_frame().assign(y=5.0))
    out_json = tmp_path / "bt.json"
    argv = ["forecast", "backtest", "--data", str(const), "--horizon", "3", "--plot", ""]
    argv += ["--backtest.test_size=10", "--json", str(out_json), *FAST, "--threads", "1"]
    assert main(argv) == 0  # before: 'error: Invalid input, x is constant' from ARIMA
    out = capsys.readouterr()
    assert "failed: arima (ValueError: Invalid input, x is constant); its row is empty" in out.out
    assert "[arima] failed: ValueError" in out.err
    summary = json.loads(out_json.read_text())
    assert summary["failed"] == {"arima": "ValueError: Invalid input, x is constant"}
    arima = summary["metrics"]["h1"]["arima"]
    assert arima["MAE"] is None and arima["sMAPE"] is None  # no scores for a failed model
    assert summary["metrics"]["h1"]["ets"]["MAE"] == pytest.approx(0.0, abs=1e-6)

    class Broken(NaiveBaseline):
        def forecast(self, history, horizon, known_future=None):  # noqa: ANN001, ANN201
            raise np.linalg.LinAlgError("singular matrix")

    data = from_frame(sine_frame(), time_col="month")
    result = backtest(data, {"naive": NaiveBaseline(), "x": Broken()}, horizon=3, test_size=10)
    assert result.failed == {"x": "LinAlgError: singular matrix"}
    assert np.isnan(result.preds["x"].point).all()
    with pytest.raises(np.linalg.LinAlgError):  # the model under test is never skipped
        backtest(data, {"x": Broken()}, horizon=3, test_size=10, required=("x",))


def test_backtest_test_size_0_says_what_is_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    data = from_frame(sine_frame(), time_col="month")
    with pytest.raises(UserError, match="test_size must be >= 1 .*got 0") as exc:
        backtest(data, {"naive": NaiveBaseline()}, horizon=3, test_size=0)
    assert "smaller test size" not in str(exc.value)
    msg = one_line_error(capsys, "backtest", "--backtest.test_size=0", "--plot", "")
    assert "test_size must be >= 1" in msg
    assert_flags_exist(msg, "backtest")


# ----------------------------------------------------------------------------- messages


def test_every_hint_names_a_flag_of_that_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], model_dir: Path
) -> None:
    gap = sine_frame()
    gap.loc[10, "y"] = np.nan
    gap_csv = write_csv(tmp_path / "gap.csv", gap)
    dup_csv = write_csv(tmp_path / "dup.csv", pd.concat([sine_frame(), sine_frame().iloc[:1]]))
    text_csv = write_csv(tmp_path / "text.csv", sine_frame().assign(y="abc"))
    odd = sine_frame().drop(index=[5, 17, 30]).reset_index(drop=True)
    odd["month"] = odd["month"] + pd.to_timedelta(np.arange(len(odd)) % 3, unit="D")
    odd_csv = write_csv(tmp_path / "odd.csv", odd)
    neg_csv = write_csv(tmp_path / "neg.csv", sine_frame().assign(y=lambda f: f["y"] - 20))
    short_csv = write_csv(tmp_path / "short.csv", sine_frame(20))
    run = ["--run-dir", str(tmp_path / "run")]
    read = ["--checkpoint", str(model_dir), "--output", "", "--plot", ""]
    cases = [
        ("train", ["--data", str(gap_csv), *run], "--data.fill=ffill"),
        ("backtest", ["--data", str(dup_csv), "--plot", ""], "--data.duplicates=mean"),
        ("train", ["--data", str(text_csv), *run], "--data.target="),
        ("train", ["--data", str(odd_csv), *run], "--data.freq=steps"),
        ("train", ["--data", str(neg_csv), *run, "--train.target_transform=log"], "diff"),
        ("train", ["--data", str(short_csv), *run, "--horizon", "6"], "--model.lookback"),
        ("train", ["--data", str(gap_csv), *run, "--data.time_col=when"], "--data.time_col"),
        ("predict", [*read, "--data", str(gap_csv)], "--data.fill=ffill"),
        ("eval", ["--checkpoint", str(model_dir), "--data", str(dup_csv)], "--data.duplicates"),
        ("predict", [*read, "--horizon", "5"], "--horizon"),
    ]
    for verb, argv, hint in cases:
        msg = one_line_error(capsys, verb, *argv)
        assert hint in msg, (verb, msg)
        assert_flags_exist(msg, verb)
    # ... and the flags named work there: the gap filled, the duplicates averaged
    assert main(["forecast", "predict", *read, "--data", str(gap_csv), "--data.fill=ffill"]) == 0
    argv = ["forecast", "eval", "--checkpoint", str(model_dir), "--data", str(dup_csv)]
    assert main([*argv, "--data.duplicates=mean"]) == 0
    # a model fitted on a monthly grid, given daily data: the grid is the model's
    days = sine_frame().assign(month=pd.date_range("2000-01-01", periods=60, freq="D"))
    days_csv = write_csv(tmp_path / "days.csv", days)
    msg = one_line_error(capsys, "predict", *read, "--data", str(days_csv))
    assert "do not lie on the 'MS' grid this model was fitted on" in msg
    assert_flags_exist(msg, "predict")


def test_data_paths_that_are_not_readable_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sales.csv").mkdir()
    msg = one_line_error(capsys, "backtest", "--data", str(tmp_path / "sales.csv"))
    assert "is a directory, not a file" in msg and "not found" not in msg
    with pytest.raises(UserError, match="is a directory"):
        Forecaster(verbose=False).fit(tmp_path / "sales.csv")
    for content, expect in ((b"", "cannot read"), (b"month,y\n", "too short: 0 rows")):
        (tmp_path / "x.csv").write_bytes(content)
        assert expect in one_line_error(capsys, "backtest", "--data", str(tmp_path / "x.csv"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_an_unreadable_data_file_is_a_permission_error(tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "s.csv", sine_frame())
    csv.chmod(0)
    try:
        with pytest.raises(UserError, match="cannot read data file .*permission denied"):
            Forecaster(verbose=False).fit(csv)
    finally:
        csv.chmod(0o644)


def test_permission_denied_is_named_even_for_root(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """The OS refusing to open the file (EACCES, injected where chmod cannot stop root)."""
    import builtins

    csv = write_csv(tmp_path / "s.csv", sine_frame())
    real_open = builtins.open

    def refusing_open(file, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if os.fspath(file) == str(csv):
            raise PermissionError(13, "Permission denied", str(csv))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    with pytest.raises(UserError, match="cannot read data file .*permission denied") as exc:
        Forecaster(verbose=False).fit(csv)
    assert "not found" not in str(exc.value)


def test_an_emptied_forecaster_json_is_one_line_damaged(model_dir: Path, tmp_path: Path) -> None:
    import shutil

    d = tmp_path / "old"
    shutil.copytree(model_dir, d)
    (d / "manifest.json").unlink()  # a folder written before manifests: loaded unverified
    for content in ("{}", "[]", "null", '{"meta": {}}'):
        (d / "forecaster.json").write_text(content)
        with pytest.raises(UserError, match="damaged: .* does not hold a complete forecast"):
            Forecaster.load(d)
    (d / "forecaster.json").write_text("{")
    with pytest.raises(UserError, match="forecaster.json"):
        Forecaster.load(d)


# ----------------------------------------------------------------------------- runtime


def test_an_absent_cuda_device_is_refused_before_any_data_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nope = str(tmp_path / "nope.csv")  # reading it would fail with 'not found'
    run = ["--run-dir", str(tmp_path / "r")]
    for argv in (
        ["train", "--data", nope, *run, f"--train.device={NO_CUDA}"],
        ["train", "--data", nope, *run, "--device", NO_CUDA],
        ["backtest", "--data", nope, f"--train.device={NO_CUDA}"],
        ["backtest", "--data", nope, "--device", NO_CUDA],
    ):
        msg = one_line_error(capsys, *argv)
        assert f"device '{NO_CUDA}'" in msg and "not found" not in msg, argv
    assert not (tmp_path / "r").exists()
    for est in (Forecaster(device=NO_CUDA), Forecaster(train__device=NO_CUDA)):
        with pytest.raises(UserError, match=f"device '{NO_CUDA}'"):
            est.fit(nope)
        with pytest.raises(UserError, match=f"device '{NO_CUDA}'"):
            est.backtest(nope)


def test_the_run_directory_is_locked_while_a_forecaster_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rnnkit.forecast import fitting

    run = tmp_path / "run"
    seen: list[dict] = []
    base = fitting.Batches

    class Watching(base):  # type: ignore[misc, valid-type]
        def __iter__(self):  # noqa: ANN204
            seen.append(json.loads((run / ".rnnkit.lock").read_text()))
            return super().__iter__()

    monkeypatch.setattr(fitting, "Batches", Watching)
    Forecaster(verbose=False, **TINY).fit(sine_frame(), time_col="month", run_dir=run)
    assert seen and all(lock["pid"] == os.getpid() for lock in seen)
    assert not (run / ".rnnkit.lock").exists()  # released at the end

    # A second process holds the run directory: refused by name, nothing read or written.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import socket

        lock = {"pid": other.pid, "host": socket.gethostname(), "started": "now"}
        (run / ".rnnkit.lock").write_text(json.dumps(lock))
        before = sorted(p.name for p in run.iterdir())
        for kw in ({"overwrite": True}, {"resume": True}):
            with pytest.raises(UserError, match=f"in use by process {other.pid}"):
                Forecaster(verbose=False, **TINY).fit(tmp_path / "nope.csv", run_dir=run, **kw)
        assert sorted(p.name for p in run.iterdir()) == before
    finally:
        other.kill()
        other.wait()
    # its process gone, the stale lock is taken over
    Forecaster(verbose=False, **TINY).fit(
        sine_frame(), time_col="month", run_dir=run, overwrite=True
    )
    assert not (run / ".rnnkit.lock").exists()
