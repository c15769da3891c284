"""Baseline forecasters that every RNN result is printed beside.

With history ``y_1..y_n`` and step ``h = 1..H`` (Hyndman & Athanasopoulos,
*Forecasting: Principles and Practice*, 3rd ed., section 5.2):

- naive (random walk):  y_n
- seasonal naive:       y_{n - m + ((h-1) mod m) + 1}
- drift:                y_n + h (y_n - y_1) / (n - 1)
- mean:                 (1/n) sum y_t
- ARIMA: statsmodels ARIMA; by default the differencing d comes from an ADF
  test and the AR order p from AIC, chosen once on the data given to ``fit``
  (so never on anything after the first origin); a seasonal difference
  (0,1,0)_m for calendar seasons. Gives prediction intervals.
- ETS: statsmodels Holt-Winters, damped additive trend, multiplicative
  seasonality for positive calendar-seasonal data.

``fit`` learns parameters; ``forecast(history)`` re-runs the filter over the
new history with those parameters fixed (nothing is re-estimated there).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from statistics import NormalDist

import numpy as np

from rnnkit.forecast.data import Prediction
from rnnkit.forecast.series import SeriesData

__all__ = [
    "ARIMABaseline",
    "DriftBaseline",
    "ETSBaseline",
    "MeanBaseline",
    "NaiveBaseline",
    "SeasonalNaiveBaseline",
    "default_baselines",
]


class NaiveBaseline:
    """Last value (the random walk forecast)."""

    name = "naive"

    def fit(self, data: SeriesData) -> NaiveBaseline:
        return self

    def forecast(
        self, history: SeriesData, horizon: int, known_future: np.ndarray | None = None
    ) -> Prediction:
        last = history.values[-1]  # (S,)
        return Prediction.point_only(np.repeat(last[:, None], horizon, axis=1))  # (S, H)


class SeasonalNaiveBaseline:
    """Value one season earlier; equals naive when the season is 1."""

    name = "seasonal_naive"

    def __init__(self, season: int | None = None) -> None:
        self.season = season

    def fit(self, data: SeriesData) -> SeasonalNaiveBaseline:
        return self

    def forecast(
        self, history: SeriesData, horizon: int, known_future: np.ndarray | None = None
    ) -> Prediction:
        m = self.season or history.season
        n = len(history)
        if n < m:
            m = 1
        idx = n - m + (np.arange(horizon) % m)  # (H,)
        return Prediction.point_only(history.values[idx].T)  # (H, S) -> (S, H)


class DriftBaseline:
    """Straight line through the first and last observation."""

    name = "drift"

    def fit(self, data: SeriesData) -> DriftBaseline:
        return self

    def forecast(
        self, history: SeriesData, horizon: int, known_future: np.ndarray | None = None
    ) -> Prediction:
        y = history.values  # (n, S)
        slope = (y[-1] - y[0]) / max(len(y) - 1, 1)  # (S,)
        h = np.arange(1, horizon + 1)
        return Prediction.point_only(y[-1][:, None] + slope[:, None] * h[None, :])


class MeanBaseline:
    """Mean of the whole history."""

    name = "mean"

    def fit(self, data: SeriesData) -> MeanBaseline:
        return self

    def forecast(
        self, history: SeriesData, horizon: int, known_future: np.ndarray | None = None
    ) -> Prediction:
        mean = history.values.mean(axis=0)  # (S,)
        return Prediction.point_only(np.repeat(mean[:, None], horizon, axis=1))


@contextmanager
def _quiet() -> Iterator[None]:
    # statsmodels warns about convergence and frequencies on every fit; the
    # baselines are judged by their backtest errors, not by those warnings.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _calendar_season(data: SeriesData) -> int:
    """The season if it is a calendar period (not e.g. the ~11-year solar cycle)."""
    return data.season if data.freq not in (None, "steps") and data.season > 1 else 1


class ARIMABaseline:
    """statsmodels ARIMA per series, order chosen once at ``fit`` unless given.

    Args:
        order: (p, d, q); None selects d by an ADF test (5%) and p in
            0..max_p by AIC with q = 0.
        max_p: the largest AR order tried.
        level: the central interval probability for ``lower``/``upper``.
        max_points: only the last ``max_points`` values are used, to keep long
            daily series fast.
    """

    name = "arima"

    def __init__(
        self,
        order: tuple[int, int, int] | None = None,
        *,
        max_p: int = 12,
        level: float = 0.8,
        max_points: int = 2000,
    ) -> None:
        self.order = order
        self.max_p = max_p
        self.level = level
        self.max_points = max_points

    def _model(self, y: np.ndarray, order: tuple[int, int, int], m: int):  # noqa: ANN202
        from statsmodels.tsa.arima.model import ARIMA

        seasonal = (0, 1, 0, m) if m > 1 and len(y) > 3 * m else (0, 0, 0, 0)
        trend = "c" if order[1] == 0 and seasonal[1] == 0 else "n"
        return ARIMA(y, order=order, seasonal_order=seasonal, trend=trend)

    def _fit_one(self, y: np.ndarray, order: tuple[int, int, int], m: int):  # noqa: ANN202
        model = self._model(y, order, m)
        # Burg's method is fast and close to the MLE for pure AR models (after any
        # differencing): 0.01-0.3 s per fit here against 3-9 s for the MLE.
        pure_ar = order[2] == 0 and model.seasonal_order[0] == model.seasonal_order[2] == 0
        return model.fit(method="burg") if pure_ar else model.fit()

    def fit(self, data: SeriesData) -> ARIMABaseline:
        from statsmodels.tsa.stattools import adfuller

        m = _calendar_season(data)
        self.orders_: list[tuple[int, int, int]] = []
        self.results_ = []
        with _quiet():
            for s in range(data.n_series):
                y = data.values[-self.max_points :, s]
                order = self.order
                if order is None:
                    d = 0 if adfuller(y, autolag="AIC")[1] < 0.05 else 1
                    max_p = int(min(self.max_p, max(1, len(y) // 10)))
                    fits = [(self._fit_one(y, (p, d, 0), m), (p, d, 0)) for p in range(max_p + 1)]
                    res, order = min(fits, key=lambda r: r[0].aic)
                else:
                    res = self._fit_one(y, order, m)
                self.orders_.append(order)
                self.results_.append(res)
        return self

    def forecast(
        self, history: SeriesData, horizon: int, known_future: np.ndarray | None = None
    ) -> Prediction:
        z = NormalDist().inv_cdf((1.0 + self.level) / 2.0)
        out = np.empty((3, history.n_series, horizon))
        with _quiet():
            for s, res in enumerate(self.results_):
                y = history.values[-self.max_points :, s]
                fc = res.apply(y).get_forecast(horizon)  # same parameters, new data
                mean = np.asarray(fc.predicted_mean)
                sd = np.sqrt(np.asarray(fc.var_pred_mean))
                out[:, s] = mean, mean - z * sd, mean + z * sd
        return Prediction(out[0], out[1], out[2])


class ETSBaseline:
    """statsmodels Holt-Winters exponential smoothing with a damped additive trend."""

    name = "ets"

    def fit(self, data: SeriesData) -> ETSBaseline:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        m = _calendar_season(data)
        self.specs_: list[dict[str, object]] = []
        self.params_: list[dict[str, object]] = []
        with _quiet():
            for s in range(data.n_series):
                y = data.values[:, s]
                seasonal = None
                if m > 1 and len(y) >= 2 * m:
                    seasonal = "mul" if np.all(y > 0) else "add"
                spec = {
                    "trend": "add",
                    "damped_trend": True,
                    "seasonal": seasonal,
                    "seasonal_periods": m if seasonal else None,
                }
                res = ExponentialSmoothing(y, initialization_method="estimated", **spec).fit()
                self.specs_.append(spec)
                self.params_.append(dict(res.params))
        return self

    def forecast(
        self, history: SeriesData, horizon: int, known_future: np.ndarray | None = None
    ) -> Prediction:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        out = np.empty((history.n_series, horizon))
        with _quiet():
            for s, (spec, p) in enumerate(zip(self.specs_, self.params_, strict=True)):
                init = {"initial_level": p["initial_level"], "initial_trend": p["initial_trend"]}
                if spec["seasonal"]:
                    init["initial_seasonal"] = p["initial_seasons"]
                model = ExponentialSmoothing(
                    history.values[:, s], initialization_method="known", **spec, **init
                )
                fixed = {
                    k: p[k]
                    for k in ("smoothing_level", "smoothing_trend", "damping_trend")
                    if np.isfinite(p[k])
                }
                if spec["seasonal"]:
                    fixed["smoothing_seasonal"] = p["smoothing_seasonal"]
                res = model.fit(optimized=False, **fixed)  # re-filter, fixed parameters
                out[s] = res.forecast(horizon)
        return Prediction.point_only(out)


def default_baselines(level: float = 0.8, arima: bool = True, ets: bool = True) -> dict:
    """name -> fresh baseline model, in the order they are printed."""
    out: dict[str, object] = {
        "naive": NaiveBaseline(),
        "seasonal_naive": SeasonalNaiveBaseline(),
        "drift": DriftBaseline(),
        "mean": MeanBaseline(),
    }
    if arima:
        out["arima"] = ARIMABaseline(level=level)
    if ets:
        out["ets"] = ETSBaseline()
    return out
