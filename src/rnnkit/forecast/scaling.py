"""Units of the forecast application: target transforms and the fitted scaler.

:class:`TargetTransform` is fixed (never fitted): log and/or one-step
differences of the target. :class:`StandardScaler` is learned from data and
follows the scikit-learn convention: arguments in ``__init__``, validation in
``fit``, learned attributes end with ``_``. The forecaster fits its scalers on
the data given to ``fit`` only, i.e. in a backtest on the part of the series
before the first forecast origin.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rnnkit.errors import UserError
from rnnkit.forecast.config import TRANSFORMS

__all__ = ["StandardScaler", "TargetTransform", "check_scalable", "to_levels"]


class TargetTransform:
    """A fixed (never fitted) transform of the target levels ``y``.

    ``f`` is the identity (``"none"``, ``"diff"``) or ``log`` (``"log"``,
    ``"log-return"``). The differencing kinds (``"diff"``, ``"log-return"``)
    model changes: the model inputs are one-step changes
    ``z_t = f(y_t) - f(y_{t-1})`` and the forecast for step k after origin t
    is the cumulative change ``f(y_{t+k-1}) - f(y_{t-1})``, mapped back as
    ``y = f^-1(f(y_{t-1}) + change)``. Because that map is monotone, quantiles
    of the change map to quantiles of the level exactly.
    """

    def __init__(self, kind: str = "none") -> None:
        if kind not in TRANSFORMS:
            raise UserError(
                f"target transform must be one of {', '.join(TRANSFORMS)}, got {kind!r}"
            )
        self.kind = kind

    @property
    def differenced(self) -> bool:
        return self.kind in ("diff", "log-return")

    @property
    def uses_log(self) -> bool:
        return self.kind in ("log", "log-return")

    def check(self, y: np.ndarray) -> None:
        if self.uses_log and np.any(y <= 0):
            raise UserError(
                f"target transform {self.kind!r} needs positive values, found "
                f"{float(np.min(y))}; use --train.target_transform=diff or none (Python: "
                "target_transform='diff')"
            )

    def f(self, y: np.ndarray) -> np.ndarray:
        return np.log(y) if self.uses_log else y

    def f_inv(self, v: np.ndarray) -> np.ndarray:
        return np.exp(v) if self.uses_log else v

    def model_series(self, y: np.ndarray) -> np.ndarray:
        """(T, S) levels -> (T, S) model-space series (row 0 is NaN when differenced)."""
        v = self.f(y)
        if not self.differenced:
            return v
        z = np.full_like(v, np.nan)
        z[1:] = v[1:] - v[:-1]
        return z

    def to_levels(self, out: np.ndarray, last_level: np.ndarray) -> np.ndarray:
        """Model-space forecasts (S, H, ...) -> levels, given the level before the origin (S,)."""
        if not self.differenced:
            return self.f_inv(out)
        base = self.f(last_level).reshape((-1,) + (1,) * (out.ndim - 1))  # (S, 1, ...)
        return self.f_inv(base + out)


class StandardScaler:
    """Per-column standardization ``(x - mean_) / scale_``, fitted on training rows only.

    Attributes (after :meth:`fit`):
        mean_: (C,) column means, NaN rows ignored.
        scale_: (C,) column standard deviations (1 where a column is constant).
        n_samples_: rows used.
    """

    def __init__(self, *, with_mean: bool = True) -> None:
        self.with_mean = with_mean

    def fit(self, x: np.ndarray) -> StandardScaler:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"StandardScaler.fit expects a 2-D array (T, C), got {x.shape}")
        ok = ~np.isnan(x).any(axis=1)
        if ok.sum() < 2:
            raise UserError("too few rows to fit the scaler (need at least 2 without NaN)")
        rows = x[ok]
        check_scalable(rows, [f"column {j}" for j in range(x.shape[1])])
        self.mean_ = rows.mean(axis=0) if self.with_mean else np.zeros(x.shape[1])
        scale = rows.std(axis=0)
        self.scale_ = np.where(scale > 1e-12, scale, 1.0)
        self.n_samples_ = int(ok.sum())
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.mean_) / self.scale_

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) * self.scale_ + self.mean_

    def to_dict(self) -> dict[str, object]:
        return {
            "with_mean": self.with_mean,
            "mean_": self.mean_.tolist(),
            "scale_": self.scale_.tolist(),
            "n_samples_": self.n_samples_,
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> StandardScaler:
        out = cls(with_mean=bool(d["with_mean"]))
        out.mean_ = np.asarray(d["mean_"], dtype=np.float64)
        out.scale_ = np.asarray(d["scale_"], dtype=np.float64)
        out.n_samples_ = int(d["n_samples_"])  # type: ignore[arg-type]
        return out


def check_scalable(x: np.ndarray, names: Sequence[str], what: str = "") -> None:
    """A one-line error when a column's mean or spread overflows float64.

    Values near 1e300 are finite, but their squared deviations are not: the
    scaler's standard deviation would be infinite and every forecast ``inf``.
    ``x``: (T, C) with NaN rows allowed; ``names``: the C column names for the message.
    """
    x = np.asarray(x, dtype=np.float64)
    ok = ~np.isnan(x).any(axis=1)
    if not ok.any():
        return
    rows = x[ok]
    with np.errstate(over="ignore", invalid="ignore"):
        bad = ~(np.isfinite(rows.mean(axis=0)) & np.isfinite(rows.std(axis=0)))
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        largest = float(np.max(np.abs(rows[:, j])))
        raise UserError(
            f"{names[j]}{what} cannot be scaled: its values (up to {largest:.3g} in "
            "magnitude) overflow float64 arithmetic, so every forecast would be inf; divide "
            "it by a power of ten (e.g. work in millions) and forecast again"
        )


def to_levels(
    transform: TargetTransform,
    target_scaler: StandardScaler,
    forecasts: tuple[np.ndarray, ...],
    last: np.ndarray,
    *,
    autoregressive: bool,
) -> tuple[np.ndarray, ...]:
    """Scaled model-space forecasts (point, lower, upper), each (S, H), -> levels.

    ``last`` (S,) is the level before the origin (the base of differenced forecasts).
    """
    mean, scale = target_scaler.mean_[:, None], target_scaler.scale_[:, None]  # (S, 1)
    if not transform.differenced:
        return tuple(transform.f_inv(a * scale + mean) for a in forecasts)
    point, lower, upper = forecasts
    if autoregressive:
        # One-step changes -> cumulative; interval half-widths add in quadrature
        # (independent steps: an approximation documented in docs/forecasting.md).
        cum = np.cumsum(point, axis=1)
        lower = cum - np.sqrt(np.cumsum((point - lower) ** 2, axis=1))
        upper = cum + np.sqrt(np.cumsum((upper - point) ** 2, axis=1))
        point = cum
    return tuple(transform.to_levels(a * scale, last) for a in (point, lower, upper))
