"""Metrics, baselines and the backtest engine (no neural network involved)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rnnkit.errors import UserError
from rnnkit.forecast import metrics as M
from rnnkit.forecast.backtest import backtest, format_table
from rnnkit.forecast.baselines import (
    ARIMABaseline,
    DriftBaseline,
    ETSBaseline,
    MeanBaseline,
    NaiveBaseline,
    SeasonalNaiveBaseline,
)
from rnnkit.forecast.data import Prediction
from rnnkit.forecast.series import SeriesData


def series(values: np.ndarray, season: int = 1) -> SeriesData:
    values = np.asarray(values, dtype=float)
    return SeriesData(index=pd.RangeIndex(len(values)), values=values, names=("y",), season=season)


def test_metrics_against_hand_computed_values() -> None:
    y = np.array([1.0, 2.0, 4.0, np.nan])
    f = np.array([2.0, 2.0, 1.0, 7.0])
    assert M.mae(y, f) == pytest.approx((1 + 0 + 3) / 3)
    assert M.rmse(y, f) == pytest.approx(np.sqrt((1 + 0 + 9) / 3))
    assert M.smape(y, f) == pytest.approx(200 / 3 * (1 / 3 + 0 + 3 / 5))
    assert M.smape(np.zeros(2), np.zeros(2)) == 0.0
    assert M.seasonal_naive_scale(np.array([1.0, 3.0, 2.0, 6.0]), 2) == pytest.approx(2.0)
    assert M.mase(y, f, 2.0) == pytest.approx(4 / 3 / 2)
    assert M.coverage(y, f - 1.5, f + 1.5) == pytest.approx(2 / 3)
    # pinball at tau: tau * (y - q) above, (1 - tau) * (q - y) below
    assert M.pinball(np.array([3.0, 0.0]), np.array([1.0, 1.0]), 0.9) == pytest.approx(
        (0.9 * 2 + 0.1 * 1) / 2
    )


def test_simple_baselines_match_their_formulas() -> None:
    y = np.array([5.0, 1.0, 2.0, 3.0, 10.0, 4.0, 6.0])
    d = series(y, season=3)
    h = 5
    np.testing.assert_array_equal(NaiveBaseline().forecast(d, h).point[0], [6.0] * h)
    # season 3: last season is (10, 4, 6) repeated
    np.testing.assert_array_equal(
        SeasonalNaiveBaseline().forecast(d, h).point[0], [10.0, 4.0, 6.0, 10.0, 4.0]
    )
    slope = (6.0 - 5.0) / 6
    np.testing.assert_allclose(
        DriftBaseline().forecast(d, h).point[0], 6.0 + slope * np.arange(1, h + 1)
    )
    np.testing.assert_allclose(MeanBaseline().forecast(d, h).point[0], [y.mean()] * h)
    p = NaiveBaseline().forecast(d, h)
    assert np.isnan(p.lower).all() and np.isnan(p.upper).all()


def test_arima_baseline_forecast_is_the_ar_recursion() -> None:
    rng = np.random.default_rng(0)
    y = np.zeros(300)
    for t in range(1, 300):
        y[t] = 2.0 + 0.7 * (y[t - 1] - 2.0) + rng.normal()
    model = ARIMABaseline(order=(1, 0, 0)).fit(series(y[:250]))
    res = model.results_[0]
    const, phi = res.params[0], res.params[1]  # statsmodels: mean and AR coefficient
    hist = series(y[:280])
    p = model.forecast(hist, 3)
    # The AR(1) recursion in deviations from the mean, with the fitted parameters
    expected = const + phi ** np.arange(1, 4) * (y[279] - const)
    np.testing.assert_allclose(p.point[0], expected, rtol=1e-6)
    assert np.all(p.lower < p.point) and np.all(p.point < p.upper)
    assert abs(phi - 0.7) < 0.1


def test_arima_order_selection_and_ets_run() -> None:
    t = np.arange(120)
    y = 10 + np.sin(2 * np.pi * t / 12) + 0.01 * t
    d = SeriesData(
        index=pd.date_range("2000-01-01", periods=120, freq="MS"),
        values=y,
        names=("y",),
        freq="MS",
        season=12,
    )
    arima = ARIMABaseline(max_p=3).fit(d)
    assert arima.orders_[0][0] <= 3
    ets = ETSBaseline().fit(d)
    p = ets.forecast(d, 12).point[0]
    assert np.abs(p - (10 + np.sin(2 * np.pi * np.arange(120, 132) / 12) + 1.2)).max() < 0.5


class Spy:
    """Records the last time index it was shown; forecasts the last value."""

    def __init__(self) -> None:
        self.fit_ends: list[int] = []
        self.forecast_ends: list[int] = []

    def fit(self, data: SeriesData) -> Spy:
        self.fit_ends.append(int(data.index[-1]))
        return self

    def forecast(self, history: SeriesData, horizon: int, known_future=None) -> Prediction:
        self.forecast_ends.append(int(history.index[-1]))
        return NaiveBaseline().forecast(history, horizon)


def test_backtest_never_shows_a_model_data_at_or_after_the_origin() -> None:
    d = series(np.arange(100.0))
    spy = Spy()
    r = backtest(d, {"naive": NaiveBaseline(), "spy": spy}, horizon=4, test_size=20, refit_every=5)
    np.testing.assert_array_equal(r.origins, np.arange(80, 100))
    assert spy.forecast_ends == list(range(79, 99))  # history ends just before each origin
    assert spy.fit_ends == [79, 84, 89, 94]  # refits every 5 origins, on past data only
    # actuals: y[t : t + 4], NaN past the end
    np.testing.assert_array_equal(r.actual[0, 0], [80, 81, 82, 83])
    assert np.isnan(r.actual[-1, 0, 1:]).all()
    # MASE scale from the data before the first origin (in-sample naive MAE = 1)
    assert r.scale[0] == pytest.approx(1.0)
    assert r.metrics(1).loc["naive", "MAE"] == pytest.approx(1.0)
    assert r.metrics(4).loc["naive", "MASE"] == pytest.approx(4.0)


class Peeker:
    """A leaky model: forecasts with the true future. The backtest's skill score must show it."""

    def __init__(self, full: SeriesData) -> None:
        self.full = full

    def fit(self, data: SeriesData) -> Peeker:
        return self

    def forecast(self, history: SeriesData, horizon: int, known_future=None) -> Prediction:
        t = len(history)
        future = self.full.values[t : t + horizon, 0]
        return Prediction.point_only(np.pad(future, (0, horizon - len(future)))[None, :])


def test_skill_score_exposes_leakage_on_a_random_walk() -> None:
    rw = np.cumsum(np.random.default_rng(3).normal(size=300))
    d = series(rw)
    r = backtest(
        d,
        {"naive": NaiveBaseline(), "drift": DriftBaseline(), "peek": Peeker(d)},
        horizon=1,
        test_size=100,
    )
    table = r.metrics(1)
    assert table.loc["peek", "skill"] == pytest.approx(1.0)
    assert abs(table.loc["drift", "skill"]) < 0.05  # honest models: no skill on a random walk
    assert r.lag1_warning("naive") is not None and r.lag1_warning("peek") is None
    text = format_table(r)
    assert "horizon 1 (100 forecasts)" in text and "skill" in text


def test_backtest_errors() -> None:
    d = series(np.arange(40.0))
    with pytest.raises(UserError, match="leaves 5 training steps"):
        backtest(d, {"naive": NaiveBaseline()}, horizon=1, test_size=35)
    with pytest.raises(UserError, match="horizon must be >= 1"):
        backtest(d, {"naive": NaiveBaseline()}, horizon=0, test_size=5)


def test_holdout_scores_by_hand() -> None:
    history = np.array([[1.0], [2.0], [4.0], [3.0]])  # (T, S): naive forecast 3
    actual = np.array([[5.0, 1.0]])  # (S, H)
    point = np.array([[4.0, 2.0]])
    lower, upper = point - 1.5, point + 0.5
    s = M.holdout_scores(actual, point, lower, upper, history, season=1, level=0.8)
    assert s["MAE"] == pytest.approx(1.0)
    assert s["MASE"] == pytest.approx(1.0 / ((1 + 2 + 1) / 3))  # in-sample naive MAE 4/3
    assert s["skill"] == pytest.approx(1 - 1.0 / 2.0)  # naive errors 2 and 2
    assert s["coverage"] == pytest.approx(0.5)  # 5 is above [2.5, 4.5], 1 inside [0.5, 2.5]
    nan = np.full_like(point, np.nan)
    s = M.holdout_scores(actual, point, nan, nan, history, season=1, level=0.8)
    assert np.isnan(s["coverage"]) and np.isnan(s["pinball"])


def test_backtest_summary_and_plots_return_figures(tmp_path) -> None:  # noqa: ANN001
    from matplotlib.figure import Figure

    from rnnkit.forecast.plots import plot_backtest, plot_forecast

    d = series(np.sin(np.arange(80.0) / 3) + 5)
    r = backtest(d, {"naive": NaiveBaseline(), "drift": DriftBaseline()}, horizon=3, test_size=10)
    summary = r.summary()
    assert set(summary["metrics"]) == {"h1", "h3", "all"} and summary["origins"] == 10
    assert summary["metrics"]["all"]["naive"]["skill"] == 0.0
    fig = plot_backtest(r, d, model="drift")
    assert isinstance(fig, Figure) and not list(tmp_path.iterdir())  # no path: nothing saved
    frame = pd.DataFrame(
        {"series": "y", "forecast": [5.0, 5.1], "lower": np.nan, "upper": np.nan}, index=[80, 81]
    )
    fig = plot_forecast(d, frame, tmp_path / "sub" / "fc.png")
    assert isinstance(fig, Figure) and (tmp_path / "sub" / "fc.png").stat().st_size > 5_000
