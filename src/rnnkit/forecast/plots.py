"""Plots: backtest forecasts against actuals with intervals, errors by horizon, forecasts.

Each function returns a :class:`matplotlib.figure.Figure` built with the object
API (no pyplot state, no backend switch), so a notebook shows it inline and a
script saves it: the figure is written to ``path`` only when one is given.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from rnnkit.forecast.backtest import BacktestResult
from rnnkit.forecast.series import SeriesData

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_backtest", "plot_forecast"]


def _save(fig: Figure, path: str | os.PathLike[str] | None) -> Figure:
    if path is not None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(target, dpi=110)
    return fig


def plot_backtest(
    result: BacktestResult,
    data: SeriesData,
    path: str | os.PathLike[str] | None = None,
    *,
    model: str = "rnn",
    series: int = 0,
    context: int | None = None,
) -> Figure:
    """Two panels: (top) the series, ``model``'s 1-step and H-step backtest
    forecasts with their interval; (bottom) MASE by horizon for every model.
    Saved to ``path`` when given (a PNG for ``.png``)."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.ticker import FormatStrFormatter

    h_max = result.horizon
    fig = Figure(figsize=(10, 7.5), layout="tight")
    ax, ax2 = fig.subplots(2, 1, height_ratios=(3, 2))
    first = int(result.origins[0])
    context = context if context is not None else max(3 * (len(data) - first), 60)
    lo = max(0, first - context)
    x = np.asarray(data.index)
    ax.plot(x[lo:], data.values[lo:, series], color="black", lw=1.2, label="actual")
    ax.axvline(x[first], color="gray", ls=":", lw=1)
    pred = result.preds[model]
    for h, color in ((1, "tab:blue"), (h_max, "tab:orange")):
        pos = result.origins + h - 1  # (N,) target positions
        ok = pos < len(data)
        t = x[pos[ok]]
        ax.plot(
            t,
            pred.point[ok, series, h - 1],
            color=color,
            lw=1.2,
            marker=".",
            label=f"{model}, {h} step{'s' if h > 1 else ''} ahead",
        )
        if np.isfinite(pred.lower[ok, series, h - 1]).any():
            ax.fill_between(
                t,
                pred.lower[ok, series, h - 1],
                pred.upper[ok, series, h - 1],
                color=color,
                alpha=0.18,
                label=f"{result.level:.0%} interval, h={h}",
            )
        if h_max == 1:
            break
    ax.set_title(f"rolling-origin backtest: {data.names[series]}")
    ax.legend(loc="upper left", fontsize=8)
    table = result.by_horizon("MASE")
    others = iter(colormaps["tab10"].colors[1:] * 2)  # tab:blue is the model's
    for name in table.index:
        style = (
            {"lw": 2.4, "color": "tab:blue"}
            if name == model
            else {"lw": 1, "alpha": 0.8, "color": next(others)}
        )
        ax2.plot(table.columns, table.loc[name].to_numpy(), marker="o", label=name, **style)
    ax2.set_xlabel("horizon (steps ahead)")
    ax2.set_ylabel("MASE (log scale, lower is better)")
    ax2.set_yscale("log")
    # plain numbers (0.6, 2) on the log axis, not 6x10^-1
    ax2.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
    ax2.yaxis.set_minor_formatter(FormatStrFormatter("%.2g"))
    ax2.set_title("error by horizon")
    ax2.legend(fontsize=8, ncol=4)
    ax2.grid(alpha=0.3)
    return _save(fig, path)


def plot_forecast(
    history: SeriesData,
    forecast: pd.DataFrame,
    path: str | os.PathLike[str] | None = None,
    *,
    context: int = 120,
) -> Figure:
    """History (last ``context`` steps), point forecast and interval, one panel per
    series. Saved to ``path`` when given."""
    from matplotlib.figure import Figure

    names = list(history.names)
    fig = Figure(figsize=(10, 3.6 * len(names)), layout="tight")
    axes = fig.subplots(len(names), 1, squeeze=False)
    for ax, (s, name) in zip(axes[:, 0], enumerate(names), strict=True):
        ax.plot(
            history.index[-context:],
            history.values[-context:, s],
            color="black",
            lw=1.2,
            label="history",
        )
        fc = forecast[forecast["series"] == name]
        ax.plot(fc.index, fc["forecast"], color="tab:blue", marker=".", label="forecast")
        if fc["lower"].notna().any():
            ax.fill_between(
                fc.index, fc["lower"], fc["upper"], color="tab:blue", alpha=0.2, label="interval"
            )
        ax.set_title(name)
        ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)
