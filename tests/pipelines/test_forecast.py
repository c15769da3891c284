"""The RNN forecaster, its no-look-ahead guarantees, save/load, and the CLI end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rnnkit.cli import main
from rnnkit.data.timeseries import SeriesData, from_frame
from rnnkit.errors import UserError
from rnnkit.forecasting import Forecaster, NaiveBaseline, backtest
from rnnkit.models.forecaster import ForecasterConfig, ForecastNet
from rnnkit.nn.registry import RECURRENT

TINY = {"lookback": 8, "hidden_size": 8, "ensemble": 1, "epochs": 15, "patience": 5}


def sine_frame(n: int = 120, noise: float = 0.05, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 10 + 3 * np.sin(2 * np.pi * t / 12) + noise * rng.normal(size=n)
    return pd.DataFrame({"month": pd.date_range("2000-01-01", periods=n, freq="MS"), "y": y})


def series(values: np.ndarray) -> SeriesData:
    return SeriesData(index=pd.RangeIndex(len(values)), values=values, names=("y",))


def test_forecaster_learns_a_sine_and_beats_naive() -> None:
    frame = sine_frame()
    d = from_frame(frame, time_col="month")
    f = Forecaster(horizon=3, **{**TINY, "epochs": 30})
    r = backtest(d, {"naive": NaiveBaseline(), "rnn": f}, horizon=3, test_size=24)
    assert r.metrics().loc["rnn", "skill"] > 0.5  # a smooth cycle is very predictable
    pred = f.predict(3)
    assert list(pred.columns) == ["series", "horizon", "forecast", "lower", "upper"]
    # the backtest fitted it on the 96 months before the first origin (2000-01 .. 2007-12)
    assert list(pred.index) == list(pd.date_range("2008-01-01", periods=3, freq="MS"))


def test_no_skill_on_a_random_walk() -> None:
    """The future of a random walk is unpredictable from its past: any real skill against
    the naive forecast would come from look-ahead (the leaky model in
    test_forecast_eval.py gets skill 1.0 through this same backtest)."""
    rw = np.cumsum(np.random.default_rng(7).normal(size=400))
    d = series(rw)
    f = Forecaster(horizon=1, target_transform="diff", **TINY)
    r = backtest(d, {"naive": NaiveBaseline(), "rnn": f}, horizon=1, test_size=120)
    skill = r.metrics(1).loc["rnn", "skill"]
    assert -0.15 < skill < 0.05
    assert r.lag1_warning("rnn") is not None  # it is the last value shifted, and says so


def test_scalers_are_fitted_on_the_data_before_the_first_origin() -> None:
    rng = np.random.default_rng(1)
    y = np.concatenate([rng.normal(0, 1, 150), rng.normal(100, 1, 30)])  # a jump in the test
    f = Forecaster(horizon=2, **{**TINY, "epochs": 2})
    backtest(series(y), {"rnn": f}, horizon=2, test_size=30)
    np.testing.assert_allclose(f.target_scaler_.mean_, [y[:150].mean()])
    np.testing.assert_allclose(f.target_scaler_.scale_, [y[:150].std()])


def test_save_load_gives_identical_predictions(tmp_path: Path) -> None:
    frame = sine_frame()
    frame["y2"] = frame["y"] * 2 + 1  # two series: one global model
    f = Forecaster(horizon=4, loss="gaussian", **{**TINY, "ensemble": 2, "epochs": 3})
    f.fit(frame, time_col="month", calendar=True)
    before = f.predict(4)
    f.save(tmp_path / "model")
    g = Forecaster.load(tmp_path / "model")
    after = g.predict(4)
    pd.testing.assert_frame_equal(before, after)
    assert set(after["series"]) == {"y", "y2"} and len(after) == 8
    with pytest.raises(UserError, match="not a saved forecaster"):
        Forecaster.load(tmp_path)


@pytest.mark.parametrize("loss", ["quantile", "gaussian"])
def test_intervals_are_ordered_and_cover_about_their_level(loss: str) -> None:
    rng = np.random.default_rng(2)
    y = 5 + rng.normal(size=500)  # iid Gaussian: the 80% interval is 5 +- 1.28
    f = Forecaster(horizon=2, loss=loss, level=0.8, **{**TINY, "epochs": 30})
    r = backtest(series(y), {"rnn": f}, horizon=2, test_size=200)
    p = r.preds["rnn"]
    assert np.all(p.lower <= p.point) and np.all(p.point <= p.upper)
    cov = r.metrics().loc["rnn", "coverage"]
    assert 0.7 < cov < 0.9
    width = float(np.mean(p.upper - p.lower))
    assert 1.8 < width < 3.4  # the true width is 2 * 1.2816 = 2.56


@pytest.mark.parametrize("cell", list(RECURRENT))
def test_autoregressive_step_matches_forward_on_the_extended_window(cell: str) -> None:
    """The step() rollout must equal forward() run over the window with the fed-back
    predictions appended (two independent code paths)."""
    torch.manual_seed(0)
    cfg = ForecasterConfig(
        cell=cell,
        lookback=6,
        horizon=4,
        hidden_size=5,
        mode="autoregressive",
        loss="mse",
        n_known=1,
    )
    net = ForecastNet(cfg).eval()
    x = torch.randn(3, 6, 2)
    kf = torch.randn(3, 4, 1)
    out = net.predict(x, kf, steps=4).point  # (3, 4)
    seq = x
    for k in range(4):
        known_next = torch.cat([seq[:, 1:, 1:], kf[:, k : k + 1]], dim=1)  # each step's next
        params = net(seq, known_next)  # (3, T, 1)
        nxt = params[:, -1, 0]
        torch.testing.assert_close(out[:, k], nxt, rtol=1e-5, atol=1e-6)
        step_in = torch.stack([nxt, kf[:, k, 0]], dim=1).unsqueeze(1)  # (3, 1, 2)
        seq = torch.cat([seq, step_in], dim=1)


def test_autoregressive_mode_forecasts_past_its_training_horizon() -> None:
    d = from_frame(sine_frame(), time_col="month")
    f = Forecaster(horizon=2, mode="autoregressive", **TINY).fit(d)
    assert len(f.predict(7)) == 7
    direct = Forecaster(horizon=2, **{**TINY, "epochs": 1}).fit(d)
    with pytest.raises(UserError, match="forecasts 2 steps at once"):
        direct.predict(5)


def test_highway_starts_at_the_least_squares_ar_fit() -> None:
    torch.manual_seed(0)
    cfg = ForecasterConfig(lookback=5, horizon=3, hidden_size=4, loss="mse")
    net = ForecastNet(cfg)
    x = torch.randn(200, 5, 1, dtype=torch.float64).float()
    y = x[:, -3:, 0] * 0.5 + 0.1 * torch.randn(200, 3)
    net.init_highway(x, y, ridge=0.0)
    a = np.concatenate([x[:, :, 0].numpy(), np.ones((200, 1))], axis=1).astype(np.float64)
    w, *_ = np.linalg.lstsq(a, y.numpy().astype(np.float64), rcond=None)
    expected = a @ w
    with torch.no_grad():
        got = net(x)[..., 0].double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)


def test_finance_mode_maps_returns_back_to_prices() -> None:
    rng = np.random.default_rng(4)
    price = 20 * np.exp(np.cumsum(rng.normal(0, 0.02, 300)))
    f = Forecaster(horizon=3, target_transform="log-return", **{**TINY, "epochs": 5})
    f.fit(series(price))
    pred = f.predict(3)
    # a geometric random walk: forecasts stay near the last price, intervals around it
    assert np.all(np.abs(pred["forecast"] / price[-1] - 1) < 0.1)
    assert np.all(pred["lower"] < pred["forecast"]) and np.all(pred["forecast"] < pred["upper"])
    assert np.all(pred["lower"] > 0)  # exp of a log return: prices stay positive
    with pytest.raises(UserError, match="needs positive values"):
        f.fit(series(price - 30))


def test_covariates_known_and_past() -> None:
    frame = sine_frame()
    frame["promo"] = (np.arange(120) % 5 == 0).astype(float)
    frame["temp"] = np.cos(np.arange(120))
    d = from_frame(
        frame, time_col="month", target_cols=["y"], known_cols=["promo"], past_cols=["temp"]
    )
    f = Forecaster(horizon=3, **{**TINY, "epochs": 2}).fit(d)
    with pytest.raises(UserError, match="known covariate 'promo' has no future values"):
        f.predict(3)
    pred = f.predict(3, known_future=pd.DataFrame({"promo": [1.0, 0.0, 0.0]}))
    assert len(pred) == 3 and pred["forecast"].notna().all()
    with pytest.raises(UserError, match="autoregressive mode cannot use past-only"):
        Forecaster(horizon=3, mode="autoregressive", **TINY).fit(d)


def test_bad_options_and_short_series() -> None:
    with pytest.raises(UserError, match="unknown Forecaster option"):
        Forecaster(hidden=3)
    with pytest.raises(UserError, match="unknown cell 'tcn'"):
        Forecaster(cell="tcn")
    with pytest.raises(UserError, match="level must be in"):
        Forecaster(level=80)
    with pytest.raises(UserError, match="series too short"):
        Forecaster(lookback=20, horizon=5).fit(series(np.arange(25.0)))
    with pytest.raises(UserError, match="not fitted"):
        Forecaster().predict(3)


# ----------------------------------------------------------------------------- CLI


FAST = [
    "--model.lookback=8",
    "--model.hidden_size=8",
    "--train.epochs=5",
    "--train.ensemble=1",
    "--backtest.arima=false",
]


def test_cli_backtest_train_predict_end_to_end(tmp_path: Path, capsys) -> None:
    csv = tmp_path / "sales.csv"
    sine_frame(96).to_csv(csv, index=False)
    png = tmp_path / "bt.png"
    rc = main(
        [
            "forecast",
            "backtest",
            "--data",
            str(csv),
            "--horizon",
            "3",
            "--backtest.test_size=12",
            "--plot",
            str(png),
            *FAST,
        ]
    )
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "horizon 3 (10 forecasts)" in out.out
    for name in ("rnn", "naive", "seasonal_naive", "drift", "mean", "ets", "MASE", "skill"):
        assert name in out.out
    assert "[rnn] fitting on 84 steps" in out.err  # progress goes to stderr
    assert png.stat().st_size > 10_000

    model_dir = tmp_path / "model"
    rc = main(
        [
            "forecast",
            "train",
            "--data",
            str(csv),
            "--horizon",
            "3",
            "--out",
            str(model_dir),
            "--data.calendar=true",  # month features: predict computes their future values
            *FAST[:-1],
        ]
    )
    assert rc == 0
    out_csv = tmp_path / "fc.csv"
    rc = main(
        [
            "forecast",
            "predict",
            "--checkpoint",
            str(model_dir),
            "--out",
            str(out_csv),
            "--plot",
            str(tmp_path / "fc.png"),
        ]
    )
    assert rc == 0
    got = pd.read_csv(out_csv)
    assert list(got.columns) == ["month", "series", "horizon", "forecast", "lower", "upper"]
    assert list(got["month"]) == ["2008-01-01", "2008-02-01", "2008-03-01"]
    # predict from new history: the same model conditioned on a shorter CSV
    short = tmp_path / "short.csv"
    sine_frame(60).to_csv(short, index=False)
    rc = main(
        [
            "forecast",
            "predict",
            "--checkpoint",
            str(model_dir),
            "--data",
            str(short),
            "--out",
            str(out_csv),
            "--plot",
            "",
        ]
    )
    assert rc == 0 and pd.read_csv(out_csv)["month"].iloc[0] == "2005-01-01"


def test_cli_errors_are_one_line(tmp_path: Path, capsys) -> None:
    def run(*argv: str) -> str:
        assert main(["forecast", *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        return err[-1]

    assert "data file not found: nope.csv" in run("backtest", "--data", "nope.csv")
    gap = tmp_path / "gap.csv"
    frame = sine_frame(60)
    frame.loc[10, "y"] = np.nan
    frame.to_csv(gap, index=False)
    assert "missing values (first at 2000-11-01" in run("backtest", "--data", str(gap))
    dup = tmp_path / "dup.csv"
    pd.concat([sine_frame(60), sine_frame(60).iloc[:1]]).to_csv(dup, index=False)
    assert "duplicate timestamps" in run("train", "--data", str(dup))
    text = tmp_path / "text.csv"
    sine_frame(60).assign(y="abc").to_csv(text, index=False)
    assert "no numeric target column" in run("backtest", "--data", str(text))
    short = tmp_path / "short.csv"
    sine_frame(20).to_csv(short, index=False)
    msg = run("backtest", "--data", str(short), "--backtest.test_size=5", *FAST)
    assert "test_size=5 leaves 15 training steps of 20" in msg
    msg = run("train", "--data", str(short), "--horizon", "6", *FAST)
    assert "series too short: 20 steps, need at least 22" in msg
    with pytest.raises(SystemExit) as exc:
        main(["forecast", "backtest", "--model.hidden=3"])
    assert exc.value.code == 2
    assert "unknown option --model.hidden" in capsys.readouterr().err
    assert "not a saved forecaster" in run("predict", "--checkpoint", str(tmp_path))
    assert "--horizon must be >= 1" in run(
        "predict", "--checkpoint", str(tmp_path), "--horizon", "0"
    )


# ----------------------------------------------------------------------------- targets (slow)


@pytest.mark.slow
def test_sunspots_target_lstm_at_most_arima() -> None:
    """docs/benchmarks/forecast.md: last 30 years, MASE at h=1 and h=10."""
    from rnnkit.pipelines.forecast import load_config, run_backtest

    result, _ = run_backtest(load_config(preset="sunspots"), progress=lambda msg: None)
    for h in (1, 10):
        table = result.metrics(h)
        assert table.loc["rnn", "MASE"] <= table.loc["arima", "MASE"]
        assert table.loc["rnn", "MASE"] < table.loc["seasonal_naive", "MASE"]


@pytest.mark.slow
def test_airline_target_below_seasonal_naive(data_mirror: str) -> None:
    from rnnkit.pipelines.forecast import load_config, run_backtest

    result, _ = run_backtest(load_config(preset="airline"), progress=lambda msg: None)
    table = result.metrics()
    assert table.loc["rnn", "MASE"] < table.loc["seasonal_naive", "MASE"]
