"""``rnnkit forecast backtest|train|eval|predict``: the command line (argparse only).

- ``backtest``: the RNN beside every baseline over rolling origins; prints the
  table, writes ``forecast_backtest.png`` (``--plot``), ``--csv``, ``--json``.
- ``train``: fit on the whole series into a run directory (``--run-dir``,
  ``--resume``, ``--overwrite``); ``RUN_DIR/best`` is the saved forecaster.
- ``eval``: score a saved forecaster on the last ``--horizon`` steps of ``--data``.
- ``predict``: forecast after the training data, or after ``--data`` (no refit).

Settings: defaults <- ``--preset`` (a built-in ``--data`` selects its own
preset) <- ``--section.key=VALUE``; ``--data`` and ``--horizon`` are shortcuts
for ``--data.source`` and ``--model.horizon``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any, TextIO

from rnnkit import cli_common
from rnnkit import config as config_lib
from rnnkit.errors import UserError
from rnnkit.forecast.backtest import format_table
from rnnkit.forecast.config import ForecastConfig
from rnnkit.forecast.data import BUILTIN_DATASETS, load_data, load_like
from rnnkit.forecast.estimator import Forecaster
from rnnkit.forecast.plots import plot_backtest, plot_forecast

__all__ = ["add_cli"]

DEFAULT_RUN_DIR = "runs/forecast"
DATA_HELP = (
    f"built-in dataset ({', '.join(BUILTIN_DATASETS)}) or a CSV with a time column first; "
    "a built-in name also selects its preset"
)


def _shortcuts(cfg: ForecastConfig, args: argparse.Namespace) -> ForecastConfig:
    if args.data:
        cfg = replace(cfg, data=replace(cfg.data, source=args.data))
    if args.horizon is not None:
        cfg = config_lib.apply_overrides(cfg, {"model.horizon": args.horizon})
    return cfg


def _preset(args: argparse.Namespace) -> str | None:
    """``--preset``, or the built-in ``--data``'s own preset (each has one)."""
    if args.preset is None and args.data in BUILTIN_DATASETS:
        return str(args.data)
    return args.preset


def _out(args: argparse.Namespace) -> TextIO:
    """Where the human-readable report goes: stderr when ``--json -`` takes stdout."""
    return sys.stderr if args.json == "-" else sys.stdout


def _cmd_backtest(args: argparse.Namespace) -> int:
    cfg = config_lib.config_from_args(ForecastConfig, args, app="forecast", preset=_preset(args))
    cfg = _shortcuts(cfg, args)
    est = Forecaster(config=cfg, **cli_common.runtime_kwargs(args))
    result = est.backtest()
    out = _out(args)
    print(format_table(result), file=out)
    warning = result.lag1_warning("rnn")
    if warning:
        print("\n" + warning, file=out)
    if args.csv:
        result.to_frame().to_csv(args.csv, index=False)
        print(f"wrote {args.csv}", file=out)
    if args.plot:
        plot_backtest(result, load_data(cfg.data), args.plot)
        print(f"wrote {args.plot}", file=out)
    summary = {"data": cfg.data.source, **result.summary(), "lag1_warning": warning}
    cli_common.write_json(args.json, summary)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    run_dir = args.run_dir or DEFAULT_RUN_DIR
    if not args.resume:
        args.preset = _preset(args)
    cfg = cli_common.train_config(
        ForecastConfig, args, app="forecast", default_run_dir=DEFAULT_RUN_DIR
    )
    cfg = _shortcuts(cfg, args)
    est = Forecaster(config=cfg, **cli_common.runtime_kwargs(args))
    est.fit(run_dir=run_dir, resume=args.resume, overwrite=args.overwrite)
    epochs = ", ".join(str(log["best_epoch"] or log["epochs"]) for log in est.fit_log_)
    print(f"saved {run_dir} ({len(est.nets_)} networks, epochs {epochs})", file=_out(args))
    metrics = {**est.metrics_, "run_dir": run_dir, "members": est.fit_log_}
    cli_common.write_json(args.json, metrics)
    return 0


def _load(args: argparse.Namespace) -> Forecaster:
    if args.horizon is not None and args.horizon < 1:
        raise UserError(f"--horizon must be >= 1, got {args.horizon}")
    est = Forecaster.load(args.checkpoint, device=args.device, threads=args.threads)
    options = {"time_col": args.time_col, "fill": args.fill, "duplicates": args.duplicates}
    est.set_params(**{k: v for k, v in options.items() if v is not None})
    return est


def _cmd_eval(args: argparse.Namespace) -> int:
    est = _load(args)
    scores = est.evaluate(args.data, horizon=args.horizon)
    for key, value in scores.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{key:12s} {shown}", file=_out(args))
    cli_common.write_json(args.json, scores)
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    est = _load(args)
    history = est.context_
    if args.data:
        # Condition on new history (same columns) without refitting.
        history = load_like(args.data, est.meta_, est.config.data)
    frame = est.predict(args.horizon, history=history)
    frame.index.name = history.index.name or "time"
    out = _out(args)
    print(frame.to_string(float_format=lambda v: f"{v:.3f}"), file=out)
    if args.output:
        frame.to_csv(args.output)
        print(f"wrote {args.output}", file=out)
    if args.plot:
        plot_forecast(history, frame, args.plot)
        print(f"wrote {args.plot}", file=out)
    records = frame.reset_index().astype({frame.index.name: str}).to_dict(orient="records")
    cli_common.write_json(args.json, {"forecast": records})
    return 0


def _read_options(p: argparse.ArgumentParser, data_help: str) -> None:
    """How ``--data`` is read; the ``--data.KEY`` spellings are those of train and backtest
    (and of the messages about the data), the short ones came first."""
    p.add_argument("--data", default=None, help=data_help)
    p.add_argument(
        "--time-col",
        "--data.time_col",
        dest="time_col",
        default=None,
        help="time column of --data (default: the first)",
    )
    p.add_argument(
        "--fill",
        "--data.fill",
        dest="fill",
        default=None,
        help="missing values in --data: none, ffill, interpolate, drop (default: the model's)",
    )
    p.add_argument(
        "--data.duplicates",
        dest="duplicates",
        default=None,
        help="repeated time stamps in --data: error, mean, last (default: the model's)",
    )


def add_cli(subparsers: Any) -> None:
    """Register ``rnnkit forecast {backtest,train,eval,predict}``."""
    verbs = cli_common.add_app_parser(
        subparsers,
        "forecast",
        help="time-series forecasting with RNNs, backtested against baselines",
        description="Forecast time series with an RNN/LSTM/GRU encoder and a multi-step "
        "head, and compare it honestly with naive, seasonal naive, drift, mean, ARIMA and "
        "ETS in a rolling-origin backtest.",
    )
    horizon_help = "steps to forecast (shortcut for --model.horizon)"
    b = verbs.add_parser(
        "backtest",
        help="rolling-origin backtest: the RNN beside every baseline",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,
        description="Walk forward over the last --backtest.test_size steps: at each origin "
        "every model forecasts the next --horizon steps from the data before it (no "
        "look-ahead: scaling, epochs and ARIMA orders are chosen before the first origin). "
        "Prints MAE, RMSE, sMAPE, MASE, skill vs naive (and coverage / pinball loss of "
        "the prediction interval) at horizon 1, at H and averaged, and writes a plot. "
        "Example: rnnkit forecast backtest --data sunspots --horizon 10",
    )
    b.add_argument("--data", default=None, help=f"{DATA_HELP} (shortcut for --data.source)")
    b.add_argument("--horizon", type=int, default=None, help=horizon_help)
    b.add_argument(
        "--preset", default=None, help="preset name (rnnkit/forecast/presets) or a .toml file"
    )
    b.add_argument(
        "--plot",
        default="forecast_backtest.png",
        help="PNG of forecasts vs actuals and MASE by horizon ('' for none)",
    )
    b.add_argument("--csv", default=None, help="write every backtest forecast to this CSV")
    cli_common.add_runtime_arguments(b)
    cli_common.add_json_argument(b, what="the metric tables")
    config_lib.add_config_arguments(b, ForecastConfig)
    b.set_defaults(func=_cmd_backtest)

    t = cli_common.add_train_parser(
        verbs,
        "forecast",
        ForecastConfig,
        help="fit on all the data into a run directory",
        description="Fit the forecaster on the whole series. The run directory holds "
        "best/ (the saved forecaster for 'eval' and 'predict'), checkpoint/ (the "
        "forecaster so far), members/ (each ensemble member's training) and metrics.jsonl.",
        data_help=DATA_HELP,
        resume_help="continue an interrupted run in --run-dir: finished ensemble members "
        "are kept, the interrupted one continues from its checkpoint",
    )
    t.add_argument("--horizon", type=int, default=None, help=horizon_help)
    t.set_defaults(func=_cmd_train)

    e = cli_common.add_verb_parser(
        verbs,
        "eval",
        help="score a saved forecaster on the last --horizon steps of --data",
        description="Hold out the last --horizon steps of --data, forecast them from the "
        "steps before (no refit) and print MAE, RMSE, sMAPE, MASE, skill vs naive and "
        "interval coverage. Without --data: the data the model was trained on (then the "
        "held-out steps were seen in training).",
    )
    e.add_argument(
        "--horizon", type=int, default=None, help="steps held out (default: the model's)"
    )
    _read_options(e, "CSV (or built-in name) with the model's columns")
    e.set_defaults(func=_cmd_eval)

    r = cli_common.add_verb_parser(
        verbs,
        "predict",
        help="forecast with a saved model, write a CSV and a plot",
        description="Forecast the steps after the training data, or after --data (a CSV "
        "with the same columns) without refitting. Writes time, series, horizon, forecast, "
        "lower, upper.",
    )
    r.add_argument(
        "--horizon", type=int, default=None, help="steps to forecast (default: the model's)"
    )
    _read_options(r, "CSV of new history to forecast from")
    r.add_argument("--output", default="forecast.csv", help="CSV to write ('' for none)")
    r.add_argument("--plot", default="forecast.png", help="PNG of history and forecast ('' none)")
    r.set_defaults(func=_cmd_predict)
