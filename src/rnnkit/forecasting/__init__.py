"""Forecasting: the RNN estimator, baselines, metrics and the rolling-origin backtest."""

from rnnkit.forecasting.backtest import BacktestResult, backtest, format_table
from rnnkit.forecasting.base import ForecastModel, Prediction
from rnnkit.forecasting.baselines import (
    ARIMABaseline,
    DriftBaseline,
    ETSBaseline,
    MeanBaseline,
    NaiveBaseline,
    SeasonalNaiveBaseline,
    default_baselines,
)
from rnnkit.forecasting.estimator import Forecaster, ForecastTrainConfig

__all__ = [
    "ARIMABaseline",
    "BacktestResult",
    "DriftBaseline",
    "ETSBaseline",
    "ForecastModel",
    "ForecastTrainConfig",
    "Forecaster",
    "MeanBaseline",
    "NaiveBaseline",
    "Prediction",
    "SeasonalNaiveBaseline",
    "backtest",
    "default_baselines",
    "format_table",
]
