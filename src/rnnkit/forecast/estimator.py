"""The forecaster: ``Forecaster(cell="lstm", lookback=24, horizon=12).fit(series).predict(12)``.

Longer than 400 lines: one class, the whole estimator contract (fit with resumable
run directories, predict, evaluate, backtest, save/load of this and the 0.1 format).

The target is mapped to model space with scalers fitted on the data given to
``fit`` only (:mod:`rnnkit.forecast.windows`); the last ``val_fraction`` of the
window origins picks the number of epochs, then a fresh network trains on all
windows (:mod:`rnnkit.forecast.fitting`). ``ensemble`` networks are averaged.

A run directory (``fit(..., run_dir=...)``, ``rnnkit forecast train``) holds::

    best/          the finished forecaster (what Forecaster.load(RUN_DIR) reads)
    checkpoint/    the forecaster so far: scalers + the members finished until now
    members/member<k>/{select,refit}/   each member's Trainer run directories
    metrics.jsonl  every member's validation evaluations and summary

``Forecaster`` also follows the backtest protocol of :mod:`rnnkit.forecast.data`
(``fit(history)``, ``forecast(history, h, known_future) -> Prediction``).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from rnnkit import config as config_lib
from rnnkit.errors import UserError
from rnnkit.estimator import Estimator, use_threads
from rnnkit.forecast.backtest import BacktestResult, backtest
from rnnkit.forecast.baselines import default_baselines
from rnnkit.forecast.config import DataConfig, ForecastConfig, upgrade_config
from rnnkit.forecast.data import (
    Prediction,
    context_from_dict,
    context_to_dict,
    describe,
    fingerprint,
    forecast_frame,
    future_known,
    load_data,
    load_like,
    tail,
)
from rnnkit.forecast.fitting import prepare, prepare_run_dir, train_member, write_metrics
from rnnkit.forecast.metrics import holdout_scores
from rnnkit.forecast.model import ForecastNet, ensemble_forecast
from rnnkit.forecast.scaling import StandardScaler, TargetTransform
from rnnkit.forecast.series import SeriesData
from rnnkit.training import (
    check_run_dir,
    load_model_weights,
    read_json,
    resolve_checkpoint,
    run_lock,
)

__all__ = ["Forecaster"]


class Forecaster(Estimator):
    """RNN forecaster with the rnnkit estimator contract (darts' ``RNNModel`` shape).

    ``Forecaster(cell="lstm", lookback=24, horizon=12, loss="quantile").fit(series)``
    then ``.predict(12)`` -> DataFrame with ``series, horizon, forecast, lower, upper``.
    Keyword arguments are keys of :class:`~rnnkit.forecast.config.ForecastConfig`
    (``hidden_size``, ``epochs``, ``model__level``, ...), ``preset=`` a preset name.

    ``threads=None`` runs torch on one thread rather than torch's default: these
    networks are tiny, and one thread measured 2.2 ms per training step against
    68 ms with two on a busy 2-core machine (B=32, L=20, hidden 32).

    Attributes (after ``fit``):
        nets_: the ensemble of :class:`~rnnkit.forecast.model.ForecastNet`
            (``model_`` is the same networks as one ``nn.ModuleList``).
        target_scaler_, past_scaler_, known_scaler_: fitted on the fit data only.
        context_: the last ``lookback + 1`` steps of the fit data (``predict`` starts there).
        fit_log_: per member: epochs run, best epoch and validation loss, seconds.
        history_: every validation evaluation, ``{"member", "epoch", "step", "val_loss"}``.
        metrics_: the mean best validation loss of the members, and what it was measured on.
    """

    app = "forecast"
    config_class = ForecastConfig
    artifact_files = ("forecaster.json",)
    progress_key = None  # the networks train without progress bars; verbose= gates messages

    def set_params(self, **params: Any) -> Forecaster:
        super().set_params(**params)
        self.config.validate()  # a bad cell or level fails here, not after loading data
        return self

    def _threads(self) -> contextlib.AbstractContextManager[None]:
        return use_threads(self.threads if self.threads is not None else 1)

    # -- fitting -------------------------------------------------------------------

    def fit(
        self,
        data: Any = None,
        *,
        run_dir: str | os.PathLike[str] | None = None,
        resume: bool = False,
        overwrite: bool = False,
        **data_options: Any,
    ) -> Forecaster:
        """Fit on ``data``: a DataFrame, a pandas Series, an array, a CSV path, a built-in
        name (``sunspots``, ``airline``, ``vix``) or SeriesData; None reads ``data.source``.

        ``data_options`` are keys of the config's ``data`` section for this call
        (``time_col="month"``, ``calendar=True``, ``target="a,b"``, ``fill="ffill"``).
        ``run_dir``: write a resumable run there (see the module docstring);
        ``resume`` continues it (finished ensemble members are kept, the interrupted
        one continues from its checkpoint), ``overwrite`` replaces a run there.
        """
        cfg = self._runtime_config()
        known = {f.name for f in fields(DataConfig)}
        for name in data_options:
            if name not in known:
                raise UserError(
                    f"unknown data option {name} for fit(); the options are the keys of the "
                    f"data section: {', '.join(sorted(known))}"
                )
        cfg = config_lib.apply_overrides(cfg, {f"data.{k}": v for k, v in data_options.items()})
        # Before any data is read (and before the lock: a refused run creates nothing).
        check_run_dir(run_dir, resume=resume, overwrite=overwrite)
        run = Path(run_dir) if run_dir is not None else None
        source = describe(data, cfg.data)
        if isinstance(data, str | Path):
            cfg = replace(cfg, data=replace(cfg.data, source=str(data)))
        elif data is not None and not isinstance(data, SeriesData):
            cfg = replace(cfg, data=replace(cfg.data, source=""))  # in memory: not reproducible
        with self._threads(), self._quiet():
            series = load_data(cfg.data, data)
            # One writer per run directory (each member's Trainer also locks its sub-run);
            # taken after reading the data, so bad data leaves no empty run directory.
            with run_lock(run):
                if run is not None:
                    prepare_run_dir(run, resume=resume, overwrite=overwrite)
                self._fit(series, cfg, source=source, run_dir=run, resume=resume)
        return self

    def _fit(
        self,
        data: SeriesData,
        cfg: ForecastConfig,
        *,
        source: str,
        run_dir: Path | None,
        resume: bool,
    ) -> None:
        prep = prepare(data, cfg.model, cfg.train)
        c, tr, windows = prep.config, cfg.train, prep.windows
        n_train = len(windows.train[0])

        # The fitted state apart from the networks: a run's checkpoint/ holds it from now on.
        self.config = replace(cfg, model=c)  # the values used, with the data's covariate counts
        self.fitted_config_ = c
        self.target_scaler_, self.past_scaler_, self.known_scaler_ = prep.scalers
        self.meta_ = {
            "names": list(data.names),
            "known_names": list(data.known_names),
            "past_names": list(data.past_names),
            "freq": data.freq,
            "season": data.season,
            "source": source,
            "fingerprint": fingerprint(data),
        }
        self.context_ = tail(data, c.lookback + 1)
        if run_dir is not None:
            if resume:
                self._check_same_data(run_dir)
            self._set_members([], [], [])
            self.save(run_dir / "checkpoint")
        nets: list[ForecastNet] = []
        logs: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        for k in range(tr.ensemble):
            member_dir = run_dir / "members" / f"member{k + 1}" if run_dir is not None else None
            net, log, evals = train_member(
                c,
                tr,
                windows,
                seed=tr.seed + k,
                run_dir=member_dir,
                resume=resume,
                save_config=config_lib.to_dict(self.config),
            )
            nets.append(net.to(tr.device))
            logs.append(log)
            history += [{"member": k + 1, **e} for e in evals]
            val_msg = f", best val loss {log['best_val']:.4f}" if windows.val is not None else ""
            self._say(
                f"  member {k + 1}/{tr.ensemble}: {log['epochs']} epochs{val_msg} "
                f"({log['seconds']:.1f} s, {n_train} windows)"
            )
            if run_dir is not None:
                self._set_members(nets, logs, history)
                self.save(run_dir / "checkpoint")
                write_metrics(run_dir / "metrics.jsonl", logs, history)
        self._set_members(nets, logs, history)
        if windows.val is not None:
            refit = ", before the refit on all windows" if tr.refit_full else ""
            self.metrics_ = {
                "val_loss": float(np.mean([log["best_val"] for log in logs])),
                "measured_on": f"the validation windows of {source} (the last "
                f"{windows.n_val_origins} of {windows.n_origins} window origins){refit}; "
                "the mean of the members' best losses",
            }
        self.result_ = {
            "members": logs,
            "windows": n_train,
            "val_windows": len(windows.val[0]) if windows.val is not None else 0,
            "seconds": float(sum(log["seconds"] for log in logs)),
        }
        if run_dir is not None:
            self.save(run_dir / "best")

    def _set_members(self, nets: list[ForecastNet], logs: list[Any], history: list[Any]) -> None:
        self.nets_, self.fit_log_, self.history_ = list(nets), list(logs), list(history)
        self.model_ = nn.ModuleList(nets).eval()
        self.metrics_: dict[str, Any] = {}

    def _check_same_data(self, run_dir: Path) -> None:
        saved = resolve_checkpoint(run_dir / "checkpoint", required=self.artifact_files)
        before = read_json(saved / "forecaster.json").get("meta", {}).get("fingerprint")
        if before is not None and before != self.meta_["fingerprint"]:
            raise UserError(
                f"the data differ from those the run in {run_dir} was trained on; resume "
                "with the same data, or start a new run (--overwrite or another --run-dir)"
            )

    # -- forecasting ---------------------------------------------------------------

    def forecast(
        self, history: SeriesData, horizon: int, known_future: np.ndarray | None = None
    ) -> Prediction:
        """Forecasts after the end of ``history`` with the fitted networks (no refit):
        the backtest protocol. Returns arrays (S, horizon) in the data's units.

        Args:
            history: at least ``lookback + 1`` steps with the fit data's columns.
            known_future: (horizon, Ck) known covariates of the forecast steps.
        """
        self._check_fitted()
        c = self.fitted_config_
        if len(history) < c.lookback + 1:
            raise UserError(f"need at least {c.lookback + 1} steps of history, got {len(history)}")
        if c.n_known and (known_future is None or len(known_future) < horizon):
            raise UserError(
                f"the model uses known covariates {self.meta_['known_names']}: pass their "
                f"values for all {horizon} forecast steps"
            )
        with self._threads():
            return self._forecast(history, horizon, known_future)

    def _forecast(
        self, history: SeriesData, horizon: int, known_future: np.ndarray | None
    ) -> Prediction:
        transform = TargetTransform(self.config.train.target_transform)
        scalers = (self.target_scaler_, self.past_scaler_, self.known_scaler_)
        levels = ensemble_forecast(self.nets_, history, transform, scalers, horizon, known_future)
        pred = Prediction(*levels)
        _check_finite(pred, history, self.fitted_config_.loss)
        return pred

    def predict(
        self, horizon: int | None = None, known_future: Any = None, *, history: Any = None
    ) -> pd.DataFrame:
        """Forecast ``horizon`` steps (default: the model's) after the fit data, or after
        ``history`` (new data with the same columns: a CSV path, DataFrame, ...; no refit).

        Returns a DataFrame indexed by the future time stamps with columns
        ``series, horizon, forecast, lower, upper`` (lower/upper: the central
        ``level`` interval; NaN for ``loss="mse"``). ``known_future``: a DataFrame
        of the known covariates' future values (calendar features are computed).
        """
        self._check_fitted()
        horizon = self.fitted_config_.horizon if horizon is None else horizon
        if horizon < 1:
            raise UserError(f"horizon must be >= 1, got {horizon}")
        hist = (
            self.context_ if history is None else load_like(history, self.meta_, self.config.data)
        )
        future = hist.future_index(horizon)
        known = None
        if self.fitted_config_.n_known:
            known = future_known(future, known_future, self.meta_)
        pred = self.forecast(hist, horizon, known)
        return forecast_frame(pred, hist.names, future)

    # -- evaluation ----------------------------------------------------------------

    def evaluate(self, data: Any = None, *, horizon: int | None = None) -> dict[str, Any]:
        """Score on the last ``horizon`` steps of ``data``, held out.

        The model forecasts them from everything in ``data`` before them (without
        refitting: the fitted scalers and networks, conditioned on that history)
        and is scored against the actual values. ``data``: as for ``fit``, with
        the fitted model's columns; None reads the data the model was fitted on
        (then the held-out steps were seen in training: fit on a shorter series for
        an honest score, or use :meth:`backtest`).

        Returns MAE, RMSE, sMAPE, MASE (scaled by the in-sample seasonal-naive
        MAE of the history), skill (1 - MAE / MAE of the naive last-value
        forecast), coverage of the ``level`` interval and pinball loss (NaN
        without intervals), plus ``horizon``, ``n_forecasts``, ``level`` and
        ``measured_on``.
        """
        self._check_fitted()
        c = self.fitted_config_
        h = c.horizon if horizon is None else horizon
        if h < 1:
            raise UserError(f"horizon must be >= 1, got {h}")
        series = load_like(data, self.meta_, self.config.data)
        if len(series) < c.lookback + 1 + h:
            raise UserError(
                f"need at least lookback + 1 + horizon = {c.lookback + 1 + h} steps to hold out "
                f"{h}, got {len(series)}"
            )
        cut = len(series) - h
        history = series.head(cut)
        pred = self.forecast(history, h, series.known[cut:] if c.n_known else None)
        actual = series.values[cut:].T  # (H, S) -> (S, H)
        scores: dict[str, Any] = holdout_scores(
            actual, *pred, history.values, season=series.season, level=c.level
        )
        where = describe(data, self.config.data) if data is not None else self.meta_["source"]
        scores.update(
            horizon=int(h),
            n_forecasts=int(np.isfinite(actual).sum()),
            level=float(c.level),
            measured_on=f"the last {h} steps of {where} ({series.index[cut]} .. "
            f"{series.index[-1]}), forecast from the {cut} steps before them",
        )
        return scores

    def backtest(self, data: Any = None) -> BacktestResult:
        """Rolling-origin backtest of this forecaster beside every baseline (naive,
        seasonal naive, drift, mean, ARIMA, ETS) with the config's ``backtest``
        section; ``data`` as for ``fit`` (None: ``data.source``).

        The forecaster is fitted on the data before the first origin (so it is
        fitted afterwards). See :func:`rnnkit.forecast.backtest.backtest`.
        """
        cfg = self._runtime_config()
        b, h = cfg.backtest, cfg.model.horizon
        series = load_data(cfg.data, data)
        how = "fit once before the first origin"
        if b.refit_every:
            how = f"refit every {b.refit_every} origins"
        self._say(
            f"data: {describe(data, cfg.data)}, {len(series)} steps x {series.n_series} series "
            f"({series.index[0]} .. {series.index[-1]}), season {series.season}; backtest over "
            f"the last {b.test_size} steps, horizon {h}, {how}"
        )
        models: dict[str, Any] = {"rnn": self}
        models.update(default_baselines(level=cfg.model.level, arima=b.arima, ets=b.ets))
        return backtest(
            series,
            models,
            horizon=h,
            test_size=b.test_size,
            stride=b.stride,
            refit_every=b.refit_every,
            level=cfg.model.level,
            progress=self._say,
            required=("rnn",),  # the forecaster under test; a failing baseline is reported
        )

    # -- saving ----------------------------------------------------------------------

    def _artifacts(self) -> dict[str, Any]:
        state = {
            "target_scaler": self.target_scaler_.to_dict(),
            "past_scaler": self.past_scaler_.to_dict() if self.past_scaler_ else None,
            "known_scaler": self.known_scaler_.to_dict() if self.known_scaler_ else None,
            "meta": self.meta_,
            "fit_log": self.fit_log_,
            # the context predict() starts from ("history" in every version's files)
            "history": context_to_dict(self.context_),
        }
        return {"forecaster.json": state}

    def _restore(self, directory: Path) -> None:
        state = read_json(directory / "forecaster.json")
        meta = state["meta"]
        c = replace(
            self.config.model, n_past=len(meta["past_names"]), n_known=len(meta["known_names"])
        )
        if not state["fit_log"]:
            raise UserError(
                f"{directory} holds no trained network yet (its training stopped before the "
                "first ensemble member finished); continue it with --resume (fit(..., "
                "resume=True))"
            )
        nets = nn.ModuleList(ForecastNet(c) for _ in state["fit_log"])
        load_model_weights(nets, directory)
        self.fitted_config_ = c
        self._set_members([net.eval() for net in nets], state["fit_log"], [])
        self.target_scaler_ = StandardScaler.from_dict(state["target_scaler"])
        self.past_scaler_ = _maybe_scaler(state["past_scaler"])
        self.known_scaler_ = _maybe_scaler(state["known_scaler"])
        self.meta_ = meta
        self.context_ = context_from_dict(state["history"], meta)

    @classmethod
    def _upgrade_config(cls, raw: Any) -> Any:
        """Folders saved by earlier versions (``train.num_threads``) load too."""
        return upgrade_config(raw) if isinstance(raw, dict) else raw


def _check_finite(pred: Prediction, history: SeriesData, loss: str) -> None:
    """A one-line error instead of ``inf``/NaN forecasts (values too large for float64)."""
    arrays = [pred.point] if loss == "mse" else list(pred)  # mse has no interval (NaN)
    for s, name in enumerate(history.names):
        if all(np.isfinite(a[s]).all() for a in arrays):
            continue
        largest = float(np.nanmax(np.abs(history.values[:, s])))
        raise UserError(
            f"the forecast of series {name!r} is not finite (inf or NaN): its history (values "
            f"up to {largest:.3g}) overflows the model's arithmetic (float32 inside the "
            "network, float64 in the data's units); divide the data by a power of ten (e.g. "
            "work in millions), then fit and forecast on that scale"
        )


def _maybe_scaler(d: dict[str, Any] | None) -> StandardScaler | None:
    return StandardScaler.from_dict(d) if d else None
