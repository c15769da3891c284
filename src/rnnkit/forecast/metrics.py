"""Forecast accuracy metrics (Hyndman & Koehler 2006; Gneiting & Raftery 2007).

All functions take arrays of the same shape and ignore positions where the
actual value is NaN (origins near the end of the series have no actuals for
their later horizons). With ``e = y - f``:

- MAE   = mean |e|
- RMSE  = sqrt(mean e^2)
- sMAPE = mean 200 |e| / (|y| + |f|)  in percent, 0 where y = f = 0
- MASE  = mean |e| / s, where s is the in-sample MAE of the seasonal naive
  forecast ``y_t = y_{t-m}`` on the training part (Hyndman & Koehler 2006,
  eq. 4). MASE < 1: better than the in-sample seasonal naive one-step error.
- coverage = share of actuals inside [lower, upper].
- pinball at level tau = mean max(tau (y - q), (tau - 1)(y - q)); for an
  interval we average the pinball loss of its lower quantile, the median
  (point forecast) and its upper quantile.
"""

from __future__ import annotations

import contextlib

import numpy as np

__all__ = [
    "coverage",
    "holdout_scores",
    "interval_pinball",
    "mae",
    "mase",
    "pinball",
    "rmse",
    "seasonal_naive_scale",
    "smape",
]


def _pair(y: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, f = np.broadcast_arrays(np.asarray(y, dtype=np.float64), np.asarray(f, dtype=np.float64))
    ok = np.isfinite(y)
    return y[ok], f[ok]


def mae(y: np.ndarray, f: np.ndarray) -> float:
    y, f = _pair(y, f)
    return float(np.mean(np.abs(y - f))) if y.size else float("nan")


def rmse(y: np.ndarray, f: np.ndarray) -> float:
    y, f = _pair(y, f)
    return float(np.sqrt(np.mean((y - f) ** 2))) if y.size else float("nan")


def smape(y: np.ndarray, f: np.ndarray) -> float:
    y, f = _pair(y, f)
    if not y.size:
        return float("nan")
    denom = np.abs(y) + np.abs(f)
    # 0/0 (both zero) is a perfect forecast, not NaN; a NaN forecast (a failed model) stays NaN.
    ratio = np.divide(np.abs(y - f), denom, out=np.zeros_like(denom), where=denom > 0)
    ratio[np.isnan(f)] = np.nan
    return float(200.0 * np.mean(ratio))


def seasonal_naive_scale(y_train: np.ndarray, season: int = 1) -> float:
    """In-sample MAE of the seasonal naive forecast on ``y_train`` (T,).

    Falls back to ``season=1`` when the series is shorter than two seasons.
    """
    y = np.asarray(y_train, dtype=np.float64)
    y = y[np.isfinite(y)]
    m = season if len(y) >= 2 * season else 1
    if len(y) <= m:
        raise ValueError(f"need more than {m} training values for the MASE scale, got {len(y)}")
    scale = float(np.mean(np.abs(y[m:] - y[:-m])))
    # A constant training series has scale 0; MASE is then undefined, not infinite.
    return scale if scale > 0 else float("nan")


def mase(y: np.ndarray, f: np.ndarray, scale: float | np.ndarray) -> float:
    """MAE divided by ``scale``; ``scale`` broadcasts against y (e.g. (S, 1) per series)."""
    y, f, s = np.broadcast_arrays(
        np.asarray(y, dtype=np.float64), np.asarray(f, dtype=np.float64), np.asarray(scale)
    )
    ok = np.isfinite(y)
    return float(np.mean(np.abs(y[ok] - f[ok]) / s[ok])) if ok.any() else float("nan")


def coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    y, lower, upper = np.broadcast_arrays(y, lower, upper)
    ok = np.isfinite(y) & np.isfinite(lower) & np.isfinite(upper)
    if not ok.any():
        return float("nan")
    return float(np.mean((y[ok] >= lower[ok]) & (y[ok] <= upper[ok])))


def pinball(y: np.ndarray, q: np.ndarray, tau: float) -> float:
    y, q = _pair(y, q)
    if not y.size:
        return float("nan")
    d = y - q
    return float(np.mean(np.maximum(tau * d, (tau - 1.0) * d)))


def interval_pinball(
    y: np.ndarray, lower: np.ndarray, median: np.ndarray, upper: np.ndarray, level: float
) -> float:
    """Mean pinball loss of the quantiles (1-level)/2, 0.5 and (1+level)/2."""
    lo_tau, hi_tau = (1.0 - level) / 2.0, (1.0 + level) / 2.0
    parts = [pinball(y, lower, lo_tau), pinball(y, median, 0.5), pinball(y, upper, hi_tau)]
    return float(np.mean(parts))


def holdout_scores(
    actual: np.ndarray,
    point: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    history: np.ndarray,
    *,
    season: int,
    level: float,
) -> dict[str, float]:
    """Every metric of one forecast of (S, H) ``actual`` values made after ``history`` (T, S).

    MASE is scaled per series by the in-sample seasonal-naive MAE of ``history``;
    skill is 1 - MAE / MAE of the naive forecast (the last value of ``history``).
    Coverage and pinball are NaN without an interval.
    """
    scale = np.full((actual.shape[0], 1), np.nan)
    for s in range(actual.shape[0]):
        with contextlib.suppress(ValueError):  # too short for a scale: MASE stays NaN
            scale[s] = seasonal_naive_scale(history[:, s], season)
    naive = np.repeat(history[-1][:, None], actual.shape[1], axis=1)  # (S, H)
    err, naive_err = mae(actual, point), mae(actual, naive)
    has_interval = bool(np.isfinite(lower).any())
    return {
        "MAE": err,
        "RMSE": rmse(actual, point),
        "sMAPE": smape(actual, point),
        "MASE": mase(actual, point, scale),
        "skill": 1.0 - err / naive_err if naive_err > 0 else float("nan"),
        "coverage": coverage(actual, lower, upper),
        "pinball": interval_pinball(actual, lower, point, upper, level)
        if has_interval
        else float("nan"),
    }
