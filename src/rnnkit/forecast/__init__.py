"""Time-series forecasting: the :class:`Forecaster` estimator and its config.

``Forecaster(cell="lstm", lookback=24, horizon=12).fit(series).predict(12)``;
``Forecaster(preset="sunspots").backtest()`` compares it with the baselines.
The command line is ``rnnkit forecast backtest|train|eval|predict``.
"""

from __future__ import annotations

from rnnkit.forecast.config import (
    BacktestConfig,
    DataConfig,
    ForecastConfig,
    ForecasterConfig,
    ForecastTrainConfig,
    load_config,
)
from rnnkit.forecast.estimator import Forecaster

__all__ = [
    "BacktestConfig",
    "DataConfig",
    "ForecastConfig",
    "ForecastTrainConfig",
    "Forecaster",
    "ForecasterConfig",
    "load_config",
]
