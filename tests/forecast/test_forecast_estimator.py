"""The Forecaster estimator: learning, no look-ahead, the estimator contract, save/load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnnkit import Forecaster, NotFittedError, UserError
from rnnkit.forecast import ForecastConfig, load_config
from rnnkit.forecast.backtest import backtest
from rnnkit.forecast.baselines import NaiveBaseline
from rnnkit.forecast.series import SeriesData, from_frame

TINY = {"lookback": 8, "hidden_size": 8, "ensemble": 1, "epochs": 15, "patience": 5}
DATA = Path(__file__).parent / "data"


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
    f = Forecaster(horizon=3, verbose=False, **{**TINY, "epochs": 30})
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
    f = Forecaster(horizon=1, target_transform="diff", verbose=False, **TINY)
    r = backtest(series(rw), {"naive": NaiveBaseline(), "rnn": f}, horizon=1, test_size=120)
    skill = r.metrics(1).loc["rnn", "skill"]
    assert -0.15 < skill < 0.05
    assert r.lag1_warning("rnn") is not None  # it is the last value shifted, and says so


def test_scalers_are_fitted_on_the_data_before_the_first_origin() -> None:
    rng = np.random.default_rng(1)
    y = np.concatenate([rng.normal(0, 1, 150), rng.normal(100, 1, 30)])  # a jump in the test
    f = Forecaster(horizon=2, verbose=False, **{**TINY, "epochs": 2})
    backtest(series(y), {"rnn": f}, horizon=2, test_size=30)
    np.testing.assert_allclose(f.target_scaler_.mean_, [y[:150].mean()])
    np.testing.assert_allclose(f.target_scaler_.scale_, [y[:150].std()])


def test_save_load_gives_identical_predictions(tmp_path: Path) -> None:
    frame = sine_frame()
    frame["y2"] = frame["y"] * 2 + 1  # two series: one global model
    f = Forecaster(horizon=4, loss="gaussian", verbose=False, **{**TINY, "ensemble": 2})
    assert f.fit(frame, time_col="month", calendar=True) is f
    before = f.predict(4)
    f.save(tmp_path / "model")
    g = Forecaster.load(tmp_path / "model")
    pd.testing.assert_frame_equal(before, g.predict(4))
    assert set(before["series"]) == {"y", "y2"} and len(before) == 8
    assert g.config == f.config and g.metrics_["val_loss"] == f.metrics_["val_loss"]
    assert (tmp_path / "model" / "README.md").is_file()  # the model card
    with pytest.raises(UserError, match="missing config.json"):
        Forecaster.load(tmp_path)


def test_folders_saved_by_earlier_versions_still_load() -> None:
    """tests/forecast/data/old_forecaster was written by rnnkit 0.1 (config.json with
    train.num_threads, no manifest); its predictions were saved beside it."""
    old = Forecaster.load(DATA / "old_forecaster")
    expected = pd.read_csv(DATA / "old_forecaster_predict.csv", index_col=0, parse_dates=True)
    got = old.predict(3)
    np.testing.assert_allclose(got[["forecast", "lower", "upper"]], expected.iloc[:, 2:])
    assert list(got.index) == list(expected.index)
    assert old.config.train.ensemble == 2 and len(old.nets_) == 2


def test_construction_from_a_preset_keywords_or_a_config() -> None:
    f = Forecaster(preset="sunspots", epochs=50, model__hidden_size=16, seed=3)
    assert f.config.train.epochs == 50 and f.config.model.hidden_size == 16
    assert f.config.model.lookback == 20 and f.config.data.source == "sunspots"  # the preset
    assert f.seed == 3
    g = Forecaster(cell="gru", lookback=24, horizon=12)
    assert (g.config.model.cell, g.config.model.horizon) == ("gru", 12)
    cfg = load_config(preset="airline", overrides=["train.ensemble=1"])
    h = Forecaster(config=cfg)
    assert isinstance(h.config, ForecastConfig) and h.config.train.target_transform == "log-return"
    from sklearn.base import clone

    assert clone(f).config == f.config
    with pytest.raises(UserError, match="unknown option hidden"):
        Forecaster(hidden=3)
    with pytest.raises(UserError, match="unknown option num_threads"):
        Forecaster(num_threads=1)  # now threads=
    with pytest.raises(UserError, match="unknown cell 'tcn'"):
        Forecaster(cell="tcn")
    with pytest.raises(UserError, match="level must be in"):
        Forecaster(level=80.0)
    with pytest.raises(UserError, match="must be int"):
        Forecaster(lookback="long")


def test_fit_evaluate_and_the_fitted_attributes(capsys: pytest.CaptureFixture[str]) -> None:
    frame = sine_frame()
    f = Forecaster(horizon=3, verbose=False, **{**TINY, "ensemble": 2})
    assert f.fit(frame.iloc[:-3], time_col="month") is f
    assert capsys.readouterr() == ("", "")  # verbose=False: not a line
    assert not f.model_.training and len(f.nets_) == 2
    assert f.metrics_["val_loss"] < 1 and "validation windows" in f.metrics_["measured_on"]
    assert {"member", "epoch", "step", "val_loss"} <= set(f.history_[0])
    assert f.result_["windows"] > 50 and len(f.result_["members"]) == 2
    scores = f.evaluate(frame)  # the last 3 (the model's horizon), unseen in training
    json.dumps(scores, allow_nan=True)
    for key in ("MAE", "RMSE", "sMAPE", "MASE", "skill", "coverage", "pinball"):
        assert isinstance(scores[key], float)
    assert scores["horizon"] == 3 and scores["n_forecasts"] == 3
    assert scores["skill"] > 0.3 and "the last 3 steps" in scores["measured_on"]
    # the same numbers as predicting from the history before the held-out steps
    pred = f.predict(3, history=frame.iloc[:-3])
    mae = float(np.mean(np.abs(pred["forecast"].to_numpy() - frame["y"].to_numpy()[-3:])))
    assert scores["MAE"] == pytest.approx(mae)
    with pytest.raises(UserError, match="fitted on data in memory"):
        f.evaluate()
    with pytest.raises(UserError, match="unknown data option time_column"):
        f.fit(frame, time_column="month")


def test_unfitted_use_raises_not_fitted(tmp_path: Path) -> None:
    f = Forecaster()
    with pytest.raises(NotFittedError, match="not fitted yet; call fit"):
        f.predict(3)
    with pytest.raises(NotFittedError):
        f.evaluate(sine_frame())
    with pytest.raises(NotFittedError):
        f.forecast(series(np.arange(30.0)), 3)
    with pytest.raises(NotFittedError):
        f.save(tmp_path / "model")


@pytest.mark.parametrize("loss", ["quantile", "gaussian"])
def test_intervals_are_ordered_and_cover_about_their_level(loss: str) -> None:
    rng = np.random.default_rng(2)
    y = 5 + rng.normal(size=500)  # iid Gaussian: the 80% interval is 5 +- 1.28
    f = Forecaster(horizon=2, loss=loss, level=0.8, verbose=False, **{**TINY, "epochs": 30})
    r = backtest(series(y), {"rnn": f}, horizon=2, test_size=200)
    p = r.preds["rnn"]
    assert np.all(p.lower <= p.point) and np.all(p.point <= p.upper)
    cov = r.metrics().loc["rnn", "coverage"]
    assert 0.7 < cov < 0.9
    width = float(np.mean(p.upper - p.lower))
    assert 1.8 < width < 3.4  # the true width is 2 * 1.2816 = 2.56


def test_autoregressive_mode_forecasts_past_its_training_horizon() -> None:
    d = from_frame(sine_frame(), time_col="month")
    f = Forecaster(horizon=2, mode="autoregressive", verbose=False, **TINY).fit(d)
    assert len(f.predict(7)) == 7
    direct = Forecaster(horizon=2, verbose=False, **{**TINY, "epochs": 1}).fit(d)
    with pytest.raises(UserError, match="forecasts 2 steps at once"):
        direct.predict(5)


def test_finance_mode_maps_returns_back_to_prices() -> None:
    rng = np.random.default_rng(4)
    price = 20 * np.exp(np.cumsum(rng.normal(0, 0.02, 300)))
    f = Forecaster(horizon=3, target_transform="log-return", verbose=False, **TINY)
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
    f = Forecaster(horizon=3, verbose=False, **{**TINY, "epochs": 2}).fit(d)
    with pytest.raises(UserError, match="known covariate 'promo' has no future values"):
        f.predict(3)
    pred = f.predict(3, known_future=pd.DataFrame({"promo": [1.0, 0.0, 0.0]}))
    assert len(pred) == 3 and pred["forecast"].notna().all()
    assert f.config.model.n_known == 1 and f.config.model.n_past == 1  # from the data
    with pytest.raises(UserError, match="autoregressive mode cannot use past-only"):
        Forecaster(horizon=3, mode="autoregressive", verbose=False, **TINY).fit(d)


def test_short_series() -> None:
    with pytest.raises(UserError, match="series too short"):
        Forecaster(lookback=20, horizon=5, verbose=False).fit(series(np.arange(25.0)))


# ----------------------------------------------------------------------------- run directories


def test_a_run_directory_holds_the_model_and_is_never_overwritten_silently(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    frame = sine_frame(80)
    f = Forecaster(horizon=3, verbose=False, **{**TINY, "ensemble": 2, "epochs": 4})
    f.fit(frame, time_col="month", run_dir=run)
    for name in ("best", "checkpoint", "metrics.jsonl", "members/member2/select/checkpoint"):
        assert (run / name).exists(), name
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["member"] for r in records if r["kind"] == "member"] == [1, 2]
    pd.testing.assert_frame_equal(Forecaster.load(run).predict(3), f.predict(3))
    with pytest.raises(UserError, match="already holds a run .*--overwrite"):
        f.fit(frame, time_col="month", run_dir=run)
    f.fit(frame, time_col="month", run_dir=run, overwrite=True)
    with pytest.raises(UserError, match="holds no checkpoint/ to resume from"):
        f.fit(frame, time_col="month", run_dir=tmp_path / "new", resume=True)


class _Interrupt:
    """Stop training (as Ctrl-C does) in epoch 3 of the member with seed 1."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from rnnkit.forecast import fitting

        base = fitting.Batches

        class Interrupting(base):  # type: ignore[misc, valid-type]
            def __iter__(self):  # noqa: ANN204
                if self.seed == 1 and self.epoch == 2:
                    raise KeyboardInterrupt
                return super().__iter__()

        monkeypatch.setattr(fitting, "Batches", Interrupting)
        self.undo = lambda: monkeypatch.setattr(fitting, "Batches", base)


def test_resume_keeps_finished_members_and_continues_the_interrupted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = sine_frame(80)
    options = {**TINY, "ensemble": 2, "epochs": 6, "horizon": 3}
    whole = Forecaster(verbose=False, **options).fit(frame, time_col="month")

    run = tmp_path / "run"
    stop = _Interrupt(monkeypatch)
    f = Forecaster(verbose=False, **options)
    with pytest.raises(KeyboardInterrupt):
        f.fit(frame, time_col="month", run_dir=run)
    stop.undo()
    assert (run / "members/member1/select.json").is_file()  # member 1 finished
    assert (run / "members/member2/select/checkpoint").is_dir()  # member 2 stopped in epoch 3
    assert not (run / "best").exists()
    partial = Forecaster.load(run)  # the forecaster so far: member 1
    assert len(partial.nets_) == 1

    g = Forecaster(verbose=False, **options).fit(frame, time_col="month", run_dir=run, resume=True)
    assert [log["epochs"] for log in g.fit_log_] == [log["epochs"] for log in whole.fit_log_]
    pd.testing.assert_frame_equal(g.predict(3), whole.predict(3), rtol=1e-5)
    pd.testing.assert_frame_equal(Forecaster.load(run).predict(3), g.predict(3))
    with pytest.raises(UserError, match="data differ"):
        shutil.rmtree(run / "best")
        g.fit(sine_frame(80, seed=1), time_col="month", run_dir=run, resume=True)


# ----------------------------------------------------------------------------- targets (slow)


@pytest.mark.slow
def test_sunspots_target_lstm_at_most_arima() -> None:
    """docs/benchmarks/forecast.md: last 30 years, MASE at h=1 and h=10."""
    result = Forecaster(preset="sunspots", verbose=False).backtest()
    for h in (1, 10):
        table = result.metrics(h)
        assert table.loc["rnn", "MASE"] <= table.loc["arima", "MASE"]
        assert table.loc["rnn", "MASE"] < table.loc["seasonal_naive", "MASE"]


@pytest.mark.slow
def test_airline_target_below_seasonal_naive(data_mirror: str) -> None:
    result = Forecaster(preset="airline", verbose=False).backtest()
    table = result.metrics()
    assert table.loc["rnn", "MASE"] < table.loc["seasonal_naive", "MASE"]
