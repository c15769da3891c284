"""The contract every forecasting model in a backtest follows.

A model is fitted on a history and then asked for forecasts at later origins.
``forecast(history, ...)`` may use ``history`` as conditioning context (the
last lookback window, the filter state) but must not change what was learned
in ``fit``; the backtest decides when to refit.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import numpy as np

from rnnkit.data.timeseries import SeriesData

__all__ = ["ForecastModel", "Prediction"]


class Prediction(NamedTuple):
    """Forecasts for S series and H steps, in the units of the data.

    ``lower``/``upper`` are the quantiles (1-level)/2 and (1+level)/2 of the
    predictive distribution, all NaN for point-only models (the type never
    changes). ``point`` is the median for probabilistic models.
    """

    point: np.ndarray  # (S, H)
    lower: np.ndarray  # (S, H)
    upper: np.ndarray  # (S, H)

    @classmethod
    def point_only(cls, point: np.ndarray) -> Prediction:
        nan = np.full_like(point, np.nan, dtype=np.float64)
        return cls(np.asarray(point, dtype=np.float64), nan, nan.copy())


class ForecastModel(Protocol):
    """What :func:`rnnkit.forecasting.backtest.backtest` needs from a model."""

    def fit(self, data: SeriesData) -> ForecastModel: ...

    def forecast(
        self, history: SeriesData, horizon: int, known_future: np.ndarray | None = None
    ) -> Prediction:
        """``known_future``: (H, Ck) known covariates for the forecast steps."""
        ...
