"""Plots: backtest forecasts against actuals with intervals, errors by horizon, forecasts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rnnkit.data.timeseries import SeriesData
from rnnkit.forecasting.backtest import BacktestResult

__all__ = ["plot_backtest", "plot_forecast"]


def _pyplot():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def plot_backtest(
    result: BacktestResult,
    data: SeriesData,
    path: str | Path,
    *,
    model: str = "rnn",
    series: int = 0,
    context: int | None = None,
) -> Path:
    """Two panels: (top) the series, ``model``'s 1-step and H-step backtest
    forecasts with their interval; (bottom) MASE by horizon for every model."""
    plt = _pyplot()
    h_max = result.horizon
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(10, 7.5), height_ratios=(3, 2))
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
    others = iter(plt.get_cmap("tab10").colors[1:] * 2)  # tab:blue is the model's
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
    from matplotlib.ticker import FormatStrFormatter

    # plain numbers (0.6, 2) on the log axis, not 6x10^-1
    ax2.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
    ax2.yaxis.set_minor_formatter(FormatStrFormatter("%.2g"))
    ax2.set_title("error by horizon")
    ax2.legend(fontsize=8, ncol=4)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_forecast(
    history: SeriesData, forecast: pd.DataFrame, path: str | Path, *, context: int = 120
) -> Path:
    """History (last ``context`` steps), point forecast and interval, one panel per series."""
    plt = _pyplot()
    names = list(history.names)
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 3.6 * len(names)), squeeze=False)
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
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
