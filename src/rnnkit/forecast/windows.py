"""Windows of the forecast application: model inputs, training windows, batches.

For a forecast origin ``t`` (the index of the first forecast step), lookback
``L`` and horizon ``H``::

    inputs   x[t-L], ..., x[t-1]      (only values before the origin)
    targets  y[t],   ..., y[t+H-1]

:func:`model_inputs` maps a series to model units (the transforms and scalers
of :mod:`rnnkit.forecast.scaling`), :func:`training_windows` cuts the windows,
:func:`split_windows` holds out the most recent ones for validation and
:class:`Batches` shuffles them for the training loop.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rnnkit.errors import UserError
from rnnkit.forecast.config import ForecasterConfig
from rnnkit.forecast.scaling import StandardScaler, TargetTransform
from rnnkit.forecast.series import SeriesData

__all__ = [
    "Batches",
    "Windows",
    "make_windows",
    "min_length",
    "model_inputs",
    "split_windows",
    "training_windows",
]


def make_windows(
    inputs: np.ndarray,
    targets: np.ndarray,
    lookback: int,
    horizon: int,
    origins: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut (input window, target block) pairs.

    Args:
        inputs: (T, D) model inputs per step.
        targets: (T, K) target per step; row ``t + k`` is the target for step k
            after origin t (for cumulative targets, pass a (T, H) array whose
            row t already holds the H cumulative values and ``horizon=1``).
        origins: the origins t to use (default every valid one,
            ``lookback <= t <= T - horizon``).

    Returns:
        x: (N, lookback, D) with ``x[n] = inputs[t-lookback : t]``.
        y: (N, horizon, K) with ``y[n] = targets[t : t+horizon]``.
    """
    t_len = inputs.shape[0]
    if origins is None:
        origins = np.arange(lookback, t_len - horizon + 1)
    origins = np.asarray(origins, dtype=np.int64)
    if origins.size and (origins.min() < lookback or origins.max() > t_len - horizon):
        raise ValueError(f"origins must lie in [{lookback}, {t_len - horizon}]")
    # Fancy indexing with (N, L) and (N, H) index grids instead of a Python loop.
    xi = origins[:, None] + np.arange(-lookback, 0)[None, :]  # (N, L)
    yi = origins[:, None] + np.arange(horizon)[None, :]  # (N, H)
    return inputs[xi], targets[yi]


def min_length(lookback: int, horizon: int, differenced: bool) -> int:
    """Shortest history that yields at least a handful of training windows."""
    return lookback + horizon + int(differenced) + max(8, math.ceil(0.1 * lookback))


def model_inputs(
    data: SeriesData,
    transform: TargetTransform,
    target_scaler: StandardScaler,
    past_scaler: StandardScaler | None,
    known_scaler: StandardScaler | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scaled inputs (S, T, D), target channel u (S, T) and known covariates (T, Ck).

    ``u = (f(y) - mean_) / scale_`` (or scaled one-step changes when
    differenced); the inputs per step are ``[u_t, past_t, known_t]``, D = 1 + Cp + Ck.
    """
    u = target_scaler.transform(transform.model_series(data.values)).T  # (S, T)
    past = past_scaler.transform(data.past) if past_scaler is not None else data.past
    known = known_scaler.transform(data.known) if known_scaler is not None else data.known
    covs = np.concatenate([past, known], axis=1)  # (T, Cp + Ck)
    s, t = u.shape
    inputs = np.concatenate(
        [u[:, :, None], np.broadcast_to(covs, (s, t, covs.shape[1]))], axis=2
    )  # (S, T, D)
    return inputs, u, known


def training_windows(
    c: ForecasterConfig,
    inputs: np.ndarray,
    u: np.ndarray,
    known: np.ndarray,
    differenced: bool,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """Training arrays per window, pooled over the S series, and each window's origin t.

    direct: x (N, L, D), known_future (N, H, Ck), y (N, H) (the cumulative change
    since the origin when ``differenced``); autoregressive: x (N, L+H-1, D),
    known_next (N, L+H-1, Ck), y (N, L+H-1), the step after each input step.
    """
    t_len = u.shape[1]
    lo = c.lookback + int(differenced)  # u[0] is NaN when differenced
    origins = np.arange(lo, t_len - c.horizon + 1)
    xs, ks, ys, ts = [], [], [], []
    for s in range(u.shape[0]):
        if c.mode == "direct":
            x, y = make_windows(inputs[s], u[s], c.lookback, c.horizon, origins)  # (N,L,D),(N,H)
            _, kf = make_windows(inputs[s], known, c.lookback, c.horizon, origins)  # (N, H, Ck)
            if differenced:
                y = np.cumsum(y, axis=1)  # cumulative change since the origin
        else:
            xi = (origins - c.lookback)[:, None] + np.arange(c.lookback + c.horizon - 1)
            x, kf, y = inputs[s][xi], known[xi + 1], u[s][xi + 1]  # the next step's
        xs.append(x)
        ks.append(kf)
        ys.append(y)
        ts.append(origins)
    arrays = (np.concatenate(xs), np.concatenate(ks), np.concatenate(ys))
    return arrays, np.concatenate(ts)


@dataclass
class Windows:
    """The training tensors ``(x, known_future, y)``: the training split, the
    validation split (``None`` without one) and all windows (for the refit)."""

    train: tuple[Tensor, ...]
    val: tuple[Tensor, ...] | None
    all: tuple[Tensor, ...]
    n_val_origins: int = 0
    n_origins: int = 0


def split_windows(
    arrays: tuple[np.ndarray, ...], origins: np.ndarray, horizon: int, val_fraction: float
) -> Windows:
    """Hold out the windows of the last ``val_fraction`` of the origins for validation.

    Training windows whose targets reach into the validation period are dropped,
    so no training target is a validation target.
    """
    tensors = tuple(torch.as_tensor(a, dtype=torch.float32) for a in arrays)
    unique = np.unique(origins)
    n_val = int(round(val_fraction * len(unique)))
    if n_val:
        first_val = unique[-n_val]
        train_idx = np.flatnonzero(origins + horizon <= first_val)
        val_idx = np.flatnonzero(origins >= first_val)
    else:
        train_idx, val_idx = np.arange(len(origins)), np.array([], dtype=np.int64)
    if len(train_idx) < 8:
        raise UserError(
            f"only {len(train_idx)} training windows; use a longer series, a smaller "
            "--model.lookback or --horizon, or a smaller --train.val_fraction"
        )
    val = tuple(t[val_idx] for t in tensors) if len(val_idx) else None
    return Windows(tuple(t[train_idx] for t in tensors), val, tensors, n_val, len(unique))


class Batches:
    """Shuffled mini-batches of tensors, the same order for the same epoch (re-iterable,
    so a resumed :class:`~rnnkit.training.Trainer` finds its place)."""

    def __init__(self, tensors: tuple[Tensor, ...], batch_size: int, seed: int) -> None:
        self.tensors, self.batch_size, self.seed, self.epoch = tensors, batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.tensors[0].shape[0] // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        n = self.tensors[0].shape[0]
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            yield tuple(t[idx] for t in self.tensors)
