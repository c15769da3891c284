"""Forecasting application: ``rnnkit forecast backtest|train|predict``.

Read top to bottom:

1. :class:`ForecastConfig`: data + model + training + backtest settings
   (defaults <- ``configs/forecast/<preset>.toml`` <- ``--section.key=VALUE``).
2. :func:`load_data`: the configured series (built-in or CSV), validated.
3. :func:`run_backtest`: the RNN and every baseline over the same rolling
   origins (:mod:`rnnkit.forecasting.backtest`), a table, the lag-1 check.
4. :func:`train` / the ``predict`` verb: fit on all data, save, forecast.

The estimator itself is :class:`rnnkit.forecasting.Forecaster`
(``Forecaster(cell="lstm", lookback=24, horizon=12).fit(series).predict(12)``),
re-exported here.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rnnkit import config as house_config
from rnnkit.data.timeseries import (
    BUILTIN_DATASETS,
    CALENDAR_FEATURES,
    SeriesData,
    load_series,
)
from rnnkit.errors import UserError
from rnnkit.forecasting import (
    BacktestResult,
    Forecaster,
    ForecastTrainConfig,
    backtest,
    default_baselines,
    format_table,
)
from rnnkit.forecasting.plots import plot_backtest, plot_forecast
from rnnkit.models.forecaster import ForecasterConfig

__all__ = [
    "BacktestConfig",
    "DataConfig",
    "ForecastConfig",
    "Forecaster",
    "add_cli",
    "load_config",
    "load_data",
    "run_backtest",
    "train",
]


@dataclass(kw_only=True)
class DataConfig:
    """Which series, and how to read it.

    Attributes:
        source: ``sunspots``, ``airline``, ``vix`` or a CSV path.
        time_col: the time column of a CSV (default: the first column).
        target / known / past: comma-separated column names ("" = all numeric
            non-covariate columns / none / none).
        fill: ``none`` (error on gaps), ``ffill``, ``interpolate``, ``drop``.
        duplicates: ``error``, ``mean`` or ``last`` for repeated time stamps.
        freq: pandas alias to reindex onto (``D``, ``MS``), ``steps`` for
            consecutive observations, "" to infer.
        season: seasonal period (0 = from the frequency / dataset).
        calendar: add month or weekday sine/cosine as known covariates.
    """

    source: str = "sunspots"
    time_col: str = ""
    target: str = ""
    known: str = ""
    past: str = ""
    fill: str = "none"
    duplicates: str = "error"
    freq: str = ""
    season: int = 0
    calendar: bool = False


@dataclass(kw_only=True)
class BacktestConfig:
    """Rolling origins: the last ``test_size`` steps, one origin every ``stride``.

    ``refit_every``: 0 fits every model once on the data before the first
    origin; k refits every k origins (slower for the RNN). ``arima``/``ets``
    add the statsmodels baselines.
    """

    test_size: int = 30
    stride: int = 1
    refit_every: int = 0
    arima: bool = True
    ets: bool = True


@dataclass(kw_only=True)
class ForecastConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ForecasterConfig = field(default_factory=ForecasterConfig)
    train: ForecastTrainConfig = field(default_factory=ForecastTrainConfig)
    backtest: BacktestConfig = field(default_factory=BacktestConfig)


def load_config(*, preset: str | None = None, overrides: Any = ()) -> ForecastConfig:
    """Defaults <- ``configs/forecast/<preset>.toml`` <- overrides (``["model.cell=gru"]``)."""
    return house_config.load_config(
        ForecastConfig, app="forecast", preset=preset, overrides=overrides
    )


def _names(text: str) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] or None


def load_data(cfg: DataConfig) -> SeriesData:
    """The configured series, validated (see :func:`rnnkit.data.timeseries.from_frame`)."""
    kwargs: dict[str, Any] = {"fill": cfg.fill, "duplicates": cfg.duplicates}
    if cfg.source not in BUILTIN_DATASETS:
        kwargs["time_col"] = cfg.time_col or None
        kwargs["target_cols"] = _names(cfg.target)
    if cfg.known or cfg.past:
        kwargs["known_cols"], kwargs["past_cols"] = _names(cfg.known), _names(cfg.past)
    if cfg.freq:
        kwargs["freq"] = cfg.freq
    if cfg.season:
        kwargs["season"] = cfg.season
    if cfg.calendar:
        kwargs["calendar"] = True
    if cfg.source not in BUILTIN_DATASETS and not Path(cfg.source).is_file():
        raise UserError(
            f"data file not found: {cfg.source}; pass a CSV path or one of "
            f"{', '.join(BUILTIN_DATASETS)}"
        )
    return load_series(cfg.source, **kwargs)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_backtest(
    cfg: ForecastConfig, *, progress: Any = _say, data: SeriesData | None = None
) -> tuple[BacktestResult, SeriesData]:
    """Backtest the RNN beside the baselines; returns the result and the data."""
    data = data if data is not None else load_data(cfg.data)
    b = cfg.backtest
    progress(
        f"data: {cfg.data.source}, {len(data)} steps x {data.n_series} series "
        f"({data.index[0]} .. {data.index[-1]}), season {data.season}; backtest over the last "
        f"{b.test_size} steps, horizon {cfg.model.horizon}, "
        + (
            "fit once before the first origin"
            if not b.refit_every
            else f"refit every {b.refit_every} origins"
        )
    )
    models: dict[str, Any] = {
        "rnn": Forecaster.from_configs(cfg.model, cfg.train, progress=progress)
    }
    models.update(default_baselines(level=cfg.model.level, arima=b.arima, ets=b.ets))
    result = backtest(
        data,
        models,
        horizon=cfg.model.horizon,
        test_size=b.test_size,
        stride=b.stride,
        refit_every=b.refit_every,
        level=cfg.model.level,
        progress=progress,
    )
    return result, data


def train(cfg: ForecastConfig, out_dir: str | Path, *, progress: Any = _say) -> Forecaster:
    """Fit the forecaster on all of the configured data and save it to ``out_dir``."""
    data = load_data(cfg.data)
    progress(f"data: {cfg.data.source}, {len(data)} steps x {data.n_series} series")
    model = Forecaster.from_configs(cfg.model, cfg.train, progress=progress).fit(data)
    model.save(out_dir)
    return model


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _config(args: argparse.Namespace) -> ForecastConfig:
    preset = args.preset
    if preset is None and args.data in BUILTIN_DATASETS:
        preset = args.data  # each built-in dataset has its preset of sensible defaults
    cfg = house_config.config_from_args(ForecastConfig, args, app="forecast", preset=preset)
    if args.data:
        cfg = replace(cfg, data=replace(cfg.data, source=args.data))
    if args.horizon:
        cfg = replace(cfg, model=replace(cfg.model, horizon=args.horizon))
    return cfg


def _cmd_backtest(args: argparse.Namespace) -> int:
    cfg = _config(args)
    result, data = run_backtest(cfg)
    print(format_table(result))
    warning = result.lag1_warning("rnn")
    if warning:
        print("\n" + warning)
    if args.csv:
        result.to_frame().to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    if args.plot:
        print(f"wrote {plot_backtest(result, data, args.plot)}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    cfg = _config(args)
    model = train(cfg, args.out)
    epochs = ", ".join(str(log["best_epoch"] or log["epochs"]) for log in model.fit_log_)
    print(f"saved {args.out} ({cfg.train.ensemble} networks, epochs {epochs})")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    if args.horizon is not None and args.horizon < 1:
        raise UserError(f"--horizon must be >= 1, got {args.horizon}")
    model = Forecaster.load(args.checkpoint)
    if args.data:
        # Condition on new history (same columns) without refitting.
        meta = model.meta_
        calendar = [n for n in meta["known_names"] if n in CALENDAR_FEATURES]
        known = [n for n in meta["known_names"] if n not in CALENDAR_FEATURES]
        data = load_series(
            args.data,
            time_col=args.time_col or None,
            target_cols=meta["names"],
            known_cols=known or None,
            past_cols=meta["past_names"] or None,
            fill=args.fill,
            freq=meta["freq"],
            season=meta["season"],
            calendar=bool(calendar),
        )
        model.history_ = data
    frame = model.predict(args.horizon)
    frame.index.name = model.history_.index.name or "time"
    frame.to_csv(args.out)
    print(frame.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {args.out}")
    if args.plot:
        print(f"wrote {plot_forecast(model.history_, frame, args.plot)}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        default=None,
        help=f"built-in dataset ({', '.join(BUILTIN_DATASETS)}) or a CSV with a time column "
        "first (shortcut for --data.source; a built-in name also selects its preset)",
    )
    p.add_argument(
        "--horizon", type=int, default=None, help="steps to forecast (shortcut for --model.horizon)"
    )
    p.add_argument("--preset", default=None, help="preset name in configs/forecast or a .toml file")
    house_config.add_config_arguments(p, ForecastConfig)


def add_cli(subparsers: Any) -> None:
    """Register ``rnnkit forecast {backtest,train,predict}``."""
    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = subparsers.add_parser(
        "forecast",
        help="time-series forecasting with RNNs, backtested against baselines",
        description="Forecast time series with an RNN/LSTM/GRU encoder and a multi-step "
        "head, and compare it honestly with naive, seasonal naive, drift, mean, ARIMA and "
        "ETS in a rolling-origin backtest.",
    )
    p.set_defaults(_parser=p)
    verbs = p.add_subparsers(
        dest="verb", metavar="<verb>", parser_class=house_config.StrictArgumentParser
    )
    b = verbs.add_parser(
        "backtest",
        help="rolling-origin backtest: the RNN beside every baseline",
        formatter_class=fmt,
        allow_abbrev=False,
        description="Walk forward over the last --backtest.test_size steps: at each origin "
        "every model forecasts the next --horizon steps from the data before it (no "
        "look-ahead: scaling, epochs and ARIMA orders are chosen before the first origin). "
        "Prints MAE, RMSE, sMAPE, MASE, skill vs naive (and coverage / pinball loss of "
        "the prediction interval) at horizon 1, at H and averaged, and writes a plot. "
        "Example: rnnkit forecast backtest --data sunspots --horizon 10",
    )
    _common(b)
    b.add_argument(
        "--plot",
        default="forecast_backtest.png",
        help="PNG of forecasts vs actuals and MASE by horizon ('' for none)",
    )
    b.add_argument("--csv", default=None, help="write every backtest forecast to this CSV")
    b.set_defaults(func=_cmd_backtest)

    t = verbs.add_parser(
        "train",
        help="fit on all the data and save the forecaster",
        formatter_class=fmt,
        allow_abbrev=False,
        description="Fit the forecaster on the whole series and save it as a directory "
        "(config.json, model.safetensors, forecaster.json) for 'rnnkit forecast predict'.",
    )
    _common(t)
    t.add_argument("--out", default="runs/forecast", help="directory to save the model in")
    t.set_defaults(func=_cmd_train)

    r = verbs.add_parser(
        "predict",
        help="forecast with a saved model, write a CSV and a plot",
        formatter_class=fmt,
        allow_abbrev=False,
        description="Forecast the steps after the training data, or after --data (a CSV "
        "with the same columns) without refitting. Writes time, series, horizon, forecast, "
        "lower, upper.",
    )
    r.add_argument("--checkpoint", required=True, help="directory written by 'train'")
    r.add_argument(
        "--horizon", type=int, default=None, help="steps to forecast (default: the model's horizon)"
    )
    r.add_argument("--data", default=None, help="CSV of new history to forecast from")
    r.add_argument("--time-col", default="", help="time column of --data (default: first)")
    r.add_argument(
        "--fill", default="none", help="missing values in --data: none, ffill, interpolate, drop"
    )
    r.add_argument("--out", default="forecast.csv", help="CSV to write")
    r.add_argument("--plot", default="forecast.png", help="PNG of history and forecast ('' none)")
    r.set_defaults(func=_cmd_predict)
