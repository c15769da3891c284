"""The estimator-style RNN forecaster: ``Forecaster(...).fit(series).predict(h)``.

What the network sees (``rnnkit.data.timeseries``): the target is mapped to
model space (``u = (f(y) - mean_) / scale_``, or scaled one-step changes in
the ``diff``/``log-return`` modes), with the scaler fitted on the data given to
``fit`` only. Training windows are cut from that data; the last
``val_fraction`` of the window origins is the validation split that picks the
number of epochs (early stopping), and training windows whose targets reach
into it are dropped; then (``refit_full``) a fresh network is trained on all
windows for that many epochs. Several targets train one *global* network on
the pooled windows, each series with its own scaling. ``ensemble`` networks
with different seeds are averaged.

``Forecaster`` also follows the backtest protocol of
:mod:`rnnkit.forecasting.base` (``fit(history)``, ``forecast(history, h)``).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from rnnkit.data.timeseries import (
    CALENDAR_FEATURES,
    SeriesData,
    StandardScaler,
    TargetTransform,
    calendar_features,
    load_series,
    min_length,
)
from rnnkit.errors import UserError
from rnnkit.forecasting.base import Prediction
from rnnkit.models.forecaster import ForecasterConfig, ForecastNet
from rnnkit.training import StepResult, TrainConfig, Trainer, read_json, write_checkpoint

__all__ = ["ForecastTrainConfig", "Forecaster"]


@dataclass(kw_only=True)
class ForecastTrainConfig:
    """Training of the forecaster.

    Attributes:
        target_transform: ``none``, ``log``, ``diff`` or ``log-return`` (finance
            mode: forecast returns, map back to prices).
        epochs: maximum passes over the training windows.
        batch_size / lr / weight_decay / grad_clip: of AdamW.
        val_fraction: last share of window origins kept for early stopping
            (0 = train all ``epochs`` without validation).
        patience: epochs without validation improvement before stopping; the
            best weights are kept.
        refit_full: after early stopping, train a fresh network (same seed) on
            all windows, validation ones included, for the best epoch count.
        ensemble: networks trained with seeds ``seed, seed+1, ...`` and averaged.
        seed: for initialization and batch order (reproducible results).
        num_threads: torch threads while fitting and forecasting (0 = torch's
            default). One thread is fastest for these small matrices: 2.2 ms
            per training step against 68 ms with two threads on a busy
            2-core machine (measured, B=32, L=20, hidden 32).
    """

    target_transform: str = "none"
    epochs: int = 200
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    val_fraction: float = 0.15
    patience: int = 25
    refit_full: bool = True
    ensemble: int = 3
    seed: int = 0
    num_threads: int = 1

    def validate(self) -> None:
        TargetTransform(self.target_transform)
        for name in ("epochs", "batch_size", "ensemble"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise UserError(f"lr must be > 0, got {self.lr}")
        if self.num_threads < 0:
            raise UserError(f"num_threads must be >= 0, got {self.num_threads}")
        if not 0.0 <= self.val_fraction < 0.9:
            raise UserError(f"val_fraction must be in [0, 0.9), got {self.val_fraction}")


_MODEL_KEYS = {f.name for f in fields(ForecasterConfig)} - {"n_past", "n_known"}
_TRAIN_KEYS = {f.name for f in fields(ForecastTrainConfig)}


class _Batches:
    """Shuffled mini-batches of tensors, the same order for the same epoch (re-iterable)."""

    def __init__(self, tensors: tuple[Tensor, ...], batch_size: int, seed: int) -> None:
        self.tensors, self.batch_size, self.seed, self.epoch = tensors, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        n = self.tensors[0].shape[0]
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            yield tuple(t[idx] for t in self.tensors)


class Forecaster:
    """RNN forecaster with a scikit-learn-like interface (darts' ``RNNModel`` shape).

    ``Forecaster(cell="lstm", lookback=24, horizon=12, loss="quantile").fit(series)``
    then ``.predict(12)`` -> DataFrame with ``series, forecast, lower, upper``.
    Keyword arguments are the fields of :class:`ForecasterConfig` and
    :class:`ForecastTrainConfig`.

    Attributes (after ``fit``):
        nets_: the ensemble of :class:`ForecastNet`.
        target_scaler_, past_scaler_, known_scaler_: fitted on the fit data only.
        history_: the last ``lookback + 1`` steps of the fit data (for ``predict``).
        fit_log_: per member: epochs run, best validation loss, seconds.
    """

    def __init__(self, progress: Callable[[str], None] | None = None, **kwargs: Any) -> None:
        unknown = set(kwargs) - _MODEL_KEYS - _TRAIN_KEYS
        if unknown:
            raise UserError(
                f"unknown Forecaster option(s) {sorted(unknown)}; valid: "
                f"{', '.join(sorted(_MODEL_KEYS | _TRAIN_KEYS))}"
            )
        model_kwargs = {k: v for k, v in kwargs.items() if k in _MODEL_KEYS}
        self.model_config = ForecasterConfig(**model_kwargs)
        self.train_config = ForecastTrainConfig(
            **{k: v for k, v in kwargs.items() if k in _TRAIN_KEYS}
        )
        self.progress = progress
        self.model_config.validate()
        self.train_config.validate()

    @classmethod
    def from_configs(
        cls,
        model: ForecasterConfig,
        train: ForecastTrainConfig,
        progress: Callable[[str], None] | None = None,
    ) -> Forecaster:
        """Build from the two config dataclasses (what the pipeline composes)."""
        kwargs = {k: v for k, v in asdict(model).items() if k in _MODEL_KEYS}
        return cls(progress=progress, **kwargs, **asdict(train))

    # -- model space ----------------------------------------------------------

    @property
    def _transform(self) -> TargetTransform:
        return TargetTransform(self.train_config.target_transform)

    def _model_space(self, data: SeriesData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scaled inputs (S, T, D), target channel u (S, T) and known covariates (T, Ck)."""
        u = self.target_scaler_.transform(self._transform.model_series(data.values)).T  # (S, T)
        past = self.past_scaler_.transform(data.past) if data.past_names else data.past
        known = self.known_scaler_.transform(data.known) if data.known_names else data.known
        covs = np.concatenate([past, known], axis=1)  # (T, Cp + Ck)
        s, t = u.shape
        inputs = np.concatenate(
            [u[:, :, None], np.broadcast_to(covs, (s, t, covs.shape[1]))], axis=2
        )  # (S, T, D)
        return inputs, u, known

    def _windows(self, data: SeriesData) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        """Training tensors per window and each window's origin t.

        direct: x (N, L, D), known_future (N, H, Ck), y (N, H);
        autoregressive: x (N, L+H-1, D), known_next (N, L+H-1, Ck), y (N, L+H-1).
        """
        c = self.model_config
        inputs, u, known = self._model_space(data)
        lo = c.lookback + int(self._transform.differenced)  # u[0] is NaN when differenced
        origins = np.arange(lo, len(data) - c.horizon + 1)
        xs, ks, ys, ts = [], [], [], []
        for s in range(data.n_series):
            if c.mode == "direct":
                xi = origins[:, None] + np.arange(-c.lookback, 0)  # (N, L)
                yi = origins[:, None] + np.arange(c.horizon)  # (N, H)
                y = u[s][yi]
                if self._transform.differenced:
                    y = np.cumsum(y, axis=1)  # cumulative change since the origin
                xs.append(inputs[s][xi])
                ks.append(known[yi])
            else:
                a = origins - c.lookback
                xi = a[:, None] + np.arange(c.lookback + c.horizon - 1)  # (N, L+H-1)
                y = u[s][xi + 1]  # the next step after each input step
                xs.append(inputs[s][xi])
                ks.append(known[xi + 1])
            ys.append(y)
            ts.append(origins)
        arrays = (np.concatenate(xs), np.concatenate(ks), np.concatenate(ys))
        return arrays, np.concatenate(ts)

    # -- fitting --------------------------------------------------------------

    def fit(self, data: Any, **load_kwargs: Any) -> Forecaster:
        """Fit on ``data`` (anything :func:`rnnkit.data.timeseries.load_series` reads)."""
        data = load_series(data, **load_kwargs)
        with _threads(self.train_config.num_threads):
            return self._fit(data)

    def _fit(self, data: SeriesData) -> Forecaster:
        c = replace(self.model_config, n_past=len(data.past_names), n_known=len(data.known_names))
        c.validate()
        tr = self.train_config
        self.fitted_config_ = c
        transform = self._transform
        transform.check(data.values)
        need = min_length(c.lookback, c.horizon, transform.differenced)
        if len(data) < need:
            raise UserError(
                f"series too short: {len(data)} steps, need at least {need} for lookback "
                f"{c.lookback} and horizon {c.horizon}; use a smaller --lookback/--horizon"
            )
        # Scalers see the fit data only. Changes have ~0 mean: scale them, do not center.
        self.target_scaler_ = StandardScaler(with_mean=not transform.differenced).fit(
            transform.model_series(data.values)
        )
        self.past_scaler_ = StandardScaler().fit(data.past) if data.past_names else None
        self.known_scaler_ = StandardScaler().fit(data.known) if data.known_names else None
        self.meta_ = {
            "names": list(data.names),
            "known_names": list(data.known_names),
            "past_names": list(data.past_names),
            "freq": data.freq,
            "season": data.season,
        }
        arrays, origins = self._windows(data)
        tensors = tuple(torch.as_tensor(a, dtype=torch.float32) for a in arrays)
        n_val = int(round(tr.val_fraction * len(np.unique(origins))))
        if n_val:
            first_val = np.unique(origins)[-n_val]
            # No training target may reach into the validation period.
            train_idx = np.flatnonzero(origins + c.horizon <= first_val)
            val_idx = np.flatnonzero(origins >= first_val)
        else:
            train_idx, val_idx = np.arange(len(origins)), np.array([], dtype=np.int64)
        if len(train_idx) < 8:
            raise UserError(
                f"only {len(train_idx)} training windows; use a longer series, a smaller "
                "lookback/horizon or a smaller val_fraction"
            )
        train = tuple(t[train_idx] for t in tensors)
        val = tuple(t[val_idx] for t in tensors) if len(val_idx) else None
        self.nets_, self.fit_log_ = [], []
        for k in range(tr.ensemble):
            start = time.perf_counter()
            net, log = self._train_one(c, train, val, seed=tr.seed + k, epochs=tr.epochs)
            if val is not None and tr.refit_full:
                # The validation split only chose the epoch count; now train on every
                # window, including the most recent ones, for that many epochs.
                net, _ = self._train_one(
                    c, tensors, None, seed=tr.seed + k, epochs=max(1, log["best_epoch"])
                )
            log["seconds"] = time.perf_counter() - start
            self.nets_.append(net)
            self.fit_log_.append(log)
            if self.progress:
                val_msg = f", best val loss {log['best_val']:.4f}" if val is not None else ""
                self.progress(
                    f"  member {k + 1}/{tr.ensemble}: {log['epochs']} epochs{val_msg} "
                    f"({log['seconds']:.1f} s, {len(train_idx)} windows)"
                )
        keep = c.lookback + 1
        self.history_ = replace(data, **_tail(data, keep))
        return self

    def _train_one(
        self,
        c: ForecasterConfig,
        train: tuple[Tensor, ...],
        val: tuple[Tensor, ...] | None,
        seed: int,
        epochs: int,
    ) -> tuple[ForecastNet, dict[str, Any]]:
        tr = self.train_config
        torch.manual_seed(seed)
        net = ForecastNet(c)
        net.init_highway(train[0], train[2])
        batches = _Batches(train, tr.batch_size, seed)
        n_batches = -(-train[0].shape[0] // tr.batch_size)
        best: dict[str, Any] = {"loss": float("inf"), "state": None, "epoch": 0}
        epoch = [0]

        def loss_fn(model: nn.Module, batch: tuple[Tensor, ...], state: Any) -> StepResult:
            x, kf, y = batch
            return StepResult(model.loss(model(x, kf), y), None, x.shape[0])

        def evaluate(model: nn.Module) -> dict[str, float]:
            epoch[0] += 1
            x, kf, y = val
            loss = float(model.loss(model(x, kf), y))
            if loss < best["loss"]:
                best.update(loss=loss, epoch=epoch[0], state=copy.deepcopy(model.state_dict()))
            return {"val_loss": loss}

        cfg = TrainConfig(
            max_steps=epochs * n_batches,
            lr=tr.lr,
            min_lr=tr.lr / 10,
            warmup_steps=min(50, n_batches * 2),
            weight_decay=tr.weight_decay,
            grad_clip=tr.grad_clip,
            carry_state=False,
            eval_interval=n_batches,  # once per epoch
            early_stopping_patience=tr.patience if val is not None else 0,
            checkpoint_interval=0,
            progress="none",
            plot=False,
            seed=seed,
        )
        trainer = Trainer(net, loss_fn, batches, config=cfg, evaluate=evaluate if val else None)
        result = trainer.fit()
        if best["state"] is not None:
            net.load_state_dict(best["state"])
        net.eval()
        return net, {
            "epochs": result.step // n_batches,
            "best_epoch": best["epoch"],
            "best_val": best["loss"],
            "final_train": result.losses[-1] if result.losses else float("nan"),
        }

    # -- forecasting ----------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "nets_"):
            raise UserError("this Forecaster is not fitted yet; call fit(data) first")

    def forecast(
        self, history: SeriesData, horizon: int, known_future: np.ndarray | None = None
    ) -> Prediction:
        """Forecasts after the end of ``history`` with the fitted networks (no refit).

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
        with _threads(self.train_config.num_threads):
            return self._forecast(history, horizon, known_future)

    def _forecast(
        self, history: SeriesData, horizon: int, known_future: np.ndarray | None
    ) -> Prediction:
        c = self.fitted_config_
        inputs, _, _ = self._model_space(history)
        x = torch.as_tensor(inputs[:, -c.lookback :], dtype=torch.float32)  # (S, L, D)
        kf = None
        if c.n_known:
            kf_np = self.known_scaler_.transform(np.asarray(known_future, dtype=np.float64))
            kf = torch.as_tensor(kf_np[:horizon], dtype=torch.float32)
            kf = kf.unsqueeze(0).expand(x.shape[0], -1, -1)  # (S, H, Ck)
        outs = [net.predict(x, kf, steps=horizon) for net in self.nets_]
        # Average quantiles over the ensemble (Vincentization).
        point, lower, upper = (
            torch.stack([getattr(o, f) for o in outs]).mean(0).double().numpy()
            for f in ("point", "lower", "upper")
        )  # each (S, H)
        return self._to_levels(point, lower, upper, history.values[-1])

    def _to_levels(
        self, point: np.ndarray, lower: np.ndarray, upper: np.ndarray, last: np.ndarray
    ) -> Prediction:
        tf, sc = self._transform, self.target_scaler_
        mean, scale = sc.mean_[:, None], sc.scale_[:, None]  # (S, 1)
        if not tf.differenced:
            return Prediction(*(tf.f_inv(a * scale + mean) for a in (point, lower, upper)))
        if self.fitted_config_.mode == "autoregressive":
            # One-step changes -> cumulative; interval half-widths add in quadrature
            # (independent steps: an approximation documented in docs/forecasting.md).
            cum = np.cumsum(point, axis=1)
            lo = cum - np.sqrt(np.cumsum((point - lower) ** 2, axis=1))
            hi = cum + np.sqrt(np.cumsum((upper - point) ** 2, axis=1))
            point, lower, upper = cum, lo, hi
        return Prediction(*(tf.to_levels(a * scale, last) for a in (point, lower, upper)))

    def predict(self, horizon: int | None = None, known_future: Any = None) -> pd.DataFrame:
        """Forecast ``horizon`` steps after the fit data.

        Returns a DataFrame indexed by the future time stamps with columns
        ``series, horizon, forecast, lower, upper`` (lower/upper: the central
        ``level`` interval; NaN for ``loss="mse"``).
        """
        self._check_fitted()
        horizon = horizon or self.fitted_config_.horizon
        hist = self.history_
        future = hist.future_index(horizon)
        known = None
        if self.fitted_config_.n_known:
            known = self._future_known(future, known_future)
        pred = self.forecast(hist, horizon, known)
        frames = [
            pd.DataFrame(
                {
                    "series": name,
                    "horizon": np.arange(1, horizon + 1),
                    "forecast": pred.point[s],
                    "lower": pred.lower[s],
                    "upper": pred.upper[s],
                },
                index=future,
            )
            for s, name in enumerate(hist.names)
        ]
        return pd.concat(frames)

    def _future_known(self, future: pd.Index, known_future: Any) -> np.ndarray:
        names = self.meta_["known_names"]
        given = pd.DataFrame(known_future) if known_future is not None else pd.DataFrame()
        cols = {}
        cal = None
        for name in names:
            if name in given.columns:
                cols[name] = given[name].to_numpy(dtype=np.float64)[: len(future)]
            elif name in CALENDAR_FEATURES and isinstance(future, pd.DatetimeIndex):
                cal = cal if cal is not None else calendar_features(future, self.meta_["freq"])
                cols[name] = cal[name].to_numpy()
            else:
                raise UserError(
                    f"known covariate {name!r} has no future values; pass known_future with "
                    f"a column {name!r} for the {len(future)} forecast steps"
                )
            if len(cols[name]) < len(future):
                raise UserError(
                    f"known_future[{name!r}] has {len(cols[name])} rows, need {len(future)}"
                )
        return np.stack([cols[n] for n in names], axis=1)  # (H, Ck)

    # -- persistence ----------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json``, ``model.safetensors`` (all members), ``forecaster.json``."""
        self._check_fitted()
        hist = self.history_
        index = [str(v) if isinstance(hist.index, pd.DatetimeIndex) else int(v) for v in hist.index]
        state = {
            "target_scaler": self.target_scaler_.to_dict(),
            "past_scaler": self.past_scaler_.to_dict() if self.past_scaler_ else None,
            "known_scaler": self.known_scaler_.to_dict() if self.known_scaler_ else None,
            "meta": self.meta_,
            "fit_log": self.fit_log_,
            "history": {
                "index": index,
                "datetime": isinstance(hist.index, pd.DatetimeIndex),
                "index_name": hist.index.name,
                "values": hist.values.tolist(),
                "known": hist.known.tolist(),
                "past": hist.past.tolist(),
            },
        }
        config = {"model": asdict(self.fitted_config_), "train": asdict(self.train_config)}
        return write_checkpoint(
            directory,
            model=nn.ModuleList(self.nets_),
            config=config,
            extra_json={"forecaster.json": state},
        )

    @classmethod
    def load(cls, directory: str | Path) -> Forecaster:
        """Rebuild a saved forecaster; its predictions are identical to the saved one's."""
        from safetensors.torch import load_file

        d = Path(directory)
        for name in ("config.json", "model.safetensors", "forecaster.json"):
            if not (d / name).is_file():
                raise UserError(
                    f"{d} is not a saved forecaster (missing {name}); pass the "
                    "directory written by 'rnnkit forecast train' or save()"
                )
        config = read_json(d / "config.json")
        state = read_json(d / "forecaster.json")
        model_cfg = ForecasterConfig(**config["model"])
        out = cls(
            **{k: v for k, v in config["model"].items() if k in _MODEL_KEYS}, **config["train"]
        )
        out.fitted_config_ = model_cfg
        nets = nn.ModuleList(ForecastNet(model_cfg) for _ in range(out.train_config.ensemble))
        nets.load_state_dict(load_file(str(d / "model.safetensors")))
        out.nets_ = [net.eval() for net in nets]
        out.target_scaler_ = StandardScaler.from_dict(state["target_scaler"])
        out.past_scaler_ = _maybe_scaler(state["past_scaler"])
        out.known_scaler_ = _maybe_scaler(state["known_scaler"])
        out.meta_ = state["meta"]
        out.fit_log_ = state["fit_log"]
        h, meta = state["history"], state["meta"]
        index = pd.DatetimeIndex(h["index"]) if h["datetime"] else pd.Index(h["index"])
        out.history_ = SeriesData(
            index=index.rename(h["index_name"]),
            values=np.asarray(h["values"]),
            names=tuple(meta["names"]),
            known=np.asarray(h["known"]),
            known_names=tuple(meta["known_names"]),
            past=np.asarray(h["past"]),
            past_names=tuple(meta["past_names"]),
            freq=meta["freq"],
            season=meta["season"],
        )
        return out


@contextmanager
def _threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch threads (0: leave as is), restoring the previous count."""
    prev = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def _maybe_scaler(d: dict[str, Any] | None) -> StandardScaler | None:
    return StandardScaler.from_dict(d) if d else None


def _tail(data: SeriesData, keep: int) -> dict[str, Any]:
    return {
        "index": data.index[-keep:],
        "values": data.values[-keep:],
        "known": data.known[-keep:],
        "past": data.past[-keep:],
    }
