"""Rolling-origin (walk-forward) backtest.

For origins ``t = T - test_size, T - test_size + stride, ..., T - 1`` every
model forecasts ``y[t : t+H]`` from ``y[:t]`` (the history strictly before
the origin). Models are fitted on ``y[:t0]`` at the first origin and, with
``refit_every=k``, refitted every k origins on ``y[:t]``; between refits
``forecast`` only conditions on the new history. So nothing after an origin
reaches its forecast: not scaling, not model or order selection, not
features. Errors at horizon h use the origins whose target ``t + h - 1``
exists, so h = 1 has the most origins.

The MASE scale is the in-sample seasonal-naive MAE of each series on
``y[:t0]``, the training part at the first origin.

A model that raises while fitting or forecasting (ARIMA on a constant series)
is reported as failed, with the reason, and its scores are left empty; the
backtest goes on with the others. Only the models named in ``required`` stop
it (the forecaster under test).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

import rnnkit.forecast.metrics as M
from rnnkit.errors import UserError
from rnnkit.forecast.data import ForecastModel, Prediction
from rnnkit.forecast.series import SeriesData

__all__ = ["BacktestResult", "backtest", "format_table"]

# Thresholds of the lag-1 trap warning: the h=1 forecast correlates almost
# perfectly with the last observed value AND moves far less than the series.
LAG1_CORR = 0.98
LAG1_MOVE = 0.25


@dataclass
class BacktestResult:
    """Stacked forecasts of every model at every origin.

    Attributes:
        origins: (N,) positions of the first forecast step in ``index``.
        index: (T,) the data's time stamps.
        actual: (N, S, H) actual values, NaN past the end of the data.
        last: (N, S) the last observed value before each origin.
        preds: model name -> Prediction of (N, S, H) arrays.
        scale: (S,) MASE scale per series.
        level: central interval probability of lower/upper.
        seconds: model name -> fit + forecast time.
        failed: model name -> why it failed (its forecasts are all NaN).
    """

    origins: np.ndarray
    index: pd.Index
    actual: np.ndarray
    last: np.ndarray
    preds: dict[str, Prediction]
    scale: np.ndarray
    level: float
    series_names: tuple[str, ...]
    season: int = 1
    seconds: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def horizon(self) -> int:
        return self.actual.shape[2]

    @property
    def models(self) -> list[str]:
        return list(self.preds)

    def _cut(self, arr: np.ndarray, h: int | None) -> np.ndarray:
        return arr if h is None else arr[:, :, h - 1 : h]

    def metrics(self, h: int | None = None) -> pd.DataFrame:
        """One row per model: MAE, RMSE, sMAPE, MASE, skill vs naive, coverage, pinball.

        ``h`` is a horizon (1-based); None averages over all horizons 1..H.
        Skill = 1 - MAE / MAE(naive) on the same positions: 0 is no better
        than the random walk, 1 is perfect, negative is worse.
        """
        y = self._cut(self.actual, h)
        scale = self.scale[None, :, None]  # (1, S, 1)
        naive_mae = (
            M.mae(y, self._cut(self.preds["naive"].point, h)) if "naive" in self.preds else None
        )
        rows = {}
        for name, p in self.preds.items():
            f, lo, hi = (self._cut(a, h) for a in p)
            row = {
                "MAE": M.mae(y, f),
                "RMSE": M.rmse(y, f),
                "sMAPE": M.smape(y, f),
                "MASE": M.mase(y, f, scale),
                "skill": 1.0 - M.mae(y, f) / naive_mae if naive_mae else float("nan"),
                "coverage": M.coverage(y, lo, hi),
                "pinball": M.interval_pinball(y, lo, f, hi, self.level)
                if np.isfinite(lo).any()
                else float("nan"),
            }
            rows[name] = row
        return pd.DataFrame.from_dict(rows, orient="index")

    def by_horizon(self, metric: str = "MASE") -> pd.DataFrame:
        """Models x horizons 1..H table of one metric."""
        cols = {h: self.metrics(h)[metric] for h in range(1, self.horizon + 1)}
        return pd.DataFrame(cols)

    def lag1_check(self, name: str) -> tuple[float, float]:
        """(corr, move) of the model's h=1 forecast against the last observed value.

        ``corr``: correlation of forecast and last value across origins.
        ``move``: mean |forecast - last| / mean |actual - last|, how much the
        forecast moves relative to how much the series moved. A forecast that
        is the last value shifted has corr ~ 1 and move ~ 0.
        """
        f = self.preds[name].point[:, :, 0]
        y = self.actual[:, :, 0]
        ok = np.isfinite(y)
        last = self.last
        if ok.sum() < 3 or np.std(f[ok]) == 0 or np.std(last[ok]) == 0:
            return float("nan"), float("nan")
        corr = float(np.corrcoef(f[ok], last[ok])[0, 1])
        moved = float(np.mean(np.abs(y[ok] - last[ok])))
        move = float(np.mean(np.abs(f[ok] - last[ok]))) / moved if moved > 0 else float("nan")
        return corr, move

    def lag1_warning(self, name: str) -> str | None:
        """A warning when the model's forecast is essentially the last value."""
        corr, move = self.lag1_check(name)
        if np.isfinite(corr) and corr > LAG1_CORR and move < LAG1_MOVE:
            skill = self.metrics(1).loc[name, "skill"] if "naive" in self.preds else float("nan")
            return (
                f"warning: {name}'s 1-step forecast is essentially the last value shifted "
                f"(correlation {corr:.3f} with the lag-1 copy, it moves {move:.0%} as much as "
                f"the data; skill vs naive {skill:+.3f}). It has learned the random walk: "
                "a plot of it 'tracking' the series shows no predictive skill."
            )
        return None

    def summary(self) -> dict[str, Any]:
        """The metric tables as plain data (what ``backtest --json`` writes).

        ``{"horizon": H, "level": ..., "season": m, "origins": N, "seconds": {model: s},
        "metrics": {"h1": {model: {metric: value}}, "hH": ..., "all": ...}}``;
        ``"all"`` averages over horizons 1..H. NaN (no interval, a failed model)
        becomes null in JSON; ``"failed"``: {model: reason} of the models that failed.
        """
        tables = {"h1": self.metrics(1), f"h{self.horizon}": self.metrics(self.horizon)}
        tables["all"] = self.metrics(None)
        return {
            "horizon": self.horizon,
            "level": self.level,
            "season": self.season,
            "origins": len(self.origins),
            "series": list(self.series_names),
            "seconds": dict(self.seconds),
            "failed": dict(self.failed),
            "metrics": {
                key: {
                    model: {k: float(v) for k, v in row.items()}
                    for model, row in table.to_dict(orient="index").items()
                }
                for key, table in tables.items()
            },
        }

    def to_frame(self) -> pd.DataFrame:
        """Long table: one row per (origin, series, horizon, model)."""
        n, s, h = self.actual.shape
        o, si, hi = np.meshgrid(np.arange(n), np.arange(s), np.arange(h), indexing="ij")
        frames = []
        for name, p in self.preds.items():
            pos = self.origins[o] + hi  # (N, S, H) position of the target
            frames.append(
                pd.DataFrame(
                    {
                        "origin": np.asarray(self.index)[self.origins[o].ravel()],
                        "time": [
                            self.index[i] if i < len(self.index) else None for i in pos.ravel()
                        ],
                        "series": np.asarray(self.series_names)[si.ravel()],
                        "horizon": hi.ravel() + 1,
                        "model": name,
                        "actual": self.actual.ravel(),
                        "forecast": p.point.ravel(),
                        "lower": p.lower.ravel(),
                        "upper": p.upper.ravel(),
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)


def backtest(
    data: SeriesData,
    models: Mapping[str, ForecastModel],
    *,
    horizon: int,
    test_size: int,
    stride: int = 1,
    refit_every: int = 0,
    level: float = 0.8,
    progress: Callable[[str], None] | None = None,
    required: Collection[str] = (),
) -> BacktestResult:
    """Run every model over the same rolling origins. See the module docstring.

    Args:
        models: name -> unfitted model; include ``"naive"`` for the skill score.
        test_size: number of final steps used as origins.
        stride: distance between origins.
        refit_every: 0 fits once before the first origin; k refits every k origins.
        progress: called with one-line messages (e.g. ``print``).
        required: models whose failure stops the backtest (the error propagates);
            any other model that raises is reported in ``failed`` and skipped.
    """
    t_len = len(data)
    if horizon < 1:
        raise UserError(f"horizon must be >= 1, got {horizon}")
    if stride < 1 or refit_every < 0:
        raise UserError(f"stride must be >= 1 and refit_every >= 0, got {stride}, {refit_every}")
    if test_size < 1:
        raise UserError(
            f"test_size must be >= 1 (the number of final steps used as forecast origins), "
            f"got {test_size}; e.g. --backtest.test_size=30 (Python: test_size=30)"
        )
    first = t_len - test_size
    if first < max(10, 2 * data.season):
        raise UserError(
            f"test_size={test_size} leaves {first} training steps of {t_len}; use a smaller "
            "test size (--backtest.test_size) or a longer series"
        )
    # Known covariates must exist for all H steps, so origins stop at T - H.
    last_origin = t_len - 1 if not data.known_names else t_len - horizon
    origins = np.arange(first, last_origin + 1, stride)
    if origins.size == 0:
        raise UserError(f"no backtest origin fits: test_size={test_size}, horizon={horizon}")
    say = progress or (lambda msg: None)
    n, s = len(origins), data.n_series
    actual = np.full((n, s, horizon), np.nan)
    for i, t in enumerate(origins):
        stop = min(t + horizon, t_len)
        actual[i, :, : stop - t] = data.values[t:stop].T  # (h', S) -> (S, h')
    last = data.values[origins - 1]  # (N, S)
    scale = np.array(
        [M.seasonal_naive_scale(data.values[:first, j], data.season) for j in range(s)]
    )

    preds: dict[str, Prediction] = {}
    seconds: dict[str, float] = {}
    failed: dict[str, str] = {}
    for name, model in models.items():
        start = time.perf_counter()
        out = np.full((3, n, s, horizon), np.nan)
        try:
            for i, t in enumerate(origins):
                history = data.head(int(t))
                if i == 0 or (refit_every and i % refit_every == 0):
                    say(f"[{name}] fitting on {len(history)} steps before origin {data.index[t]}")
                    model.fit(history)
                known = data.known[t : t + horizon] if data.known_names else None
                p = model.forecast(history, horizon, known)
                for k, arr in enumerate(p):
                    out[k, i] = arr
        except Exception as exc:
            if name in required:
                raise
            out[:] = np.nan  # no partial scores: they would cover other origins
            failed[name] = _reason(exc)
            say(f"[{name}] failed: {failed[name]}; its scores are left empty")
        preds[name] = Prediction(out[0], out[1], out[2])
        seconds[name] = time.perf_counter() - start
        if name not in failed:
            say(f"[{name}] {n} origins in {seconds[name]:.1f} s")
    return BacktestResult(
        origins=origins,
        index=data.index,
        actual=actual,
        last=last,
        preds=preds,
        scale=scale,
        level=level,
        series_names=data.names,
        season=data.season,
        seconds=seconds,
        failed=failed,
    )


def _reason(exc: BaseException) -> str:
    """One line: the exception's type and the first line of its message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def format_table(result: BacktestResult, horizons: list[int | None] | None = None) -> str:
    """The comparison table as text: one block per horizon (None = average over 1..H)."""
    horizons = horizons or [1, result.horizon, None] if result.horizon > 1 else [1]
    blocks = []
    for h in dict.fromkeys(horizons):
        table = result.metrics(h)
        if table["coverage"].isna().all():
            table = table.drop(columns=["coverage", "pinball"])
        title = f"horizon {h}" if h is not None else f"average over horizons 1..{result.horizon}"
        n = int(np.isfinite(result._cut(result.actual, h)).sum())
        text = table.to_string(float_format=lambda v: f"{v:.3f}", na_rep="-")
        blocks.append(f"{title} ({n} forecasts)\n{text}")
    m = int(result.season)
    notes = (
        f"MASE: MAE / in-sample MAE of the seasonal naive forecast (m={m}) before the first "
        "origin. skill: 1 - MAE / MAE(naive); > 0 beats the random walk."
    )
    if any(np.isfinite(p.lower).any() for p in result.preds.values()):
        notes += (
            f" coverage: share of actuals inside the {result.level:.0%} interval; pinball: "
            "mean quantile loss of its edges and the median."
        )
    for name, reason in result.failed.items():
        notes += f"\nfailed: {name} ({reason}); its row is empty."
    return "\n\n".join(blocks) + "\n\n" + notes
