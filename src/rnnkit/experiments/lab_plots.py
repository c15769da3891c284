"""Pictures and tables of the lab: learning curves, the sweep grid, gradient flow.

Every plot returns its matplotlib Figure (a notebook shows it inline) and saves
it as a PNG only when given a path. The Figures are built with the object API
(``matplotlib.figure.Figure``): no pyplot state, no backend switch.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from rnnkit.experiments.gradients import GradientsConfig, cell_gradients, plot_gradients
from rnnkit.experiments.lab_run import LabConfig, LabResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "markdown_table",
    "plot_gradient_flow",
    "plot_learning_curves",
    "plot_sweep_grid",
]

PathLike = str | os.PathLike[str]


def _draw(ax: Any, res: LabResult) -> None:
    """Held-out metric / baseline (log scale) with the 'solved' line."""
    steps = [s for s, _ in res.evals]
    ratios = [m / res.baseline for _, m in res.evals]
    ax.semilogy(steps, ratios, marker="o", ms=2, lw=1.2, color="tab:blue")
    ax.axhline(res.config.solved_ratio, color="tab:green", ls="--", lw=0.8)
    ax.axhline(1.0, color="gray", ls=":", lw=0.8)
    if res.solved:
        ax.axvline(res.solved_at, color="tab:green", lw=0.8)
    ax.grid(alpha=0.3)


def plot_learning_curves(res: LabResult, path: PathLike | None = None) -> Figure:
    """Learning curves of one run: training loss and held-out metric relative to the baseline."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8))
    ax_l, ax_m = fig.subplots(1, 2)
    steps, losses = zip(*res.curve, strict=True)
    ax_l.semilogy(steps, losses, lw=0.6, alpha=0.4, color="tab:blue")
    ema, smooth = losses[0], []
    for v in losses:  # the per-step loss is noisy: show an EMA over it
        ema = 0.95 * ema + 0.05 * v
        smooth.append(ema)
    ax_l.semilogy(steps, smooth, lw=1.5, color="tab:blue")
    ax_l.set(xlabel="step", ylabel="training loss", title="training loss (EMA 0.95)")
    ax_l.grid(alpha=0.3)
    _draw(ax_m, res)
    ax_m.set(xlabel="step", ylabel=f"held-out {res.metric_name} / baseline", title=res.summary())
    c = res.config
    fig.suptitle(f"{c.task}, {c.cell}, T={c.length}, H={c.hidden_size}")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


def plot_sweep_grid(results: list[LabResult], path: PathLike | None = None) -> Figure:
    """A grid of learning curves: one row per cell, one column per length."""
    from matplotlib.figure import Figure

    if not results:
        raise ValueError("plot_sweep_grid needs at least one result")
    cells = list(dict.fromkeys(r.config.cell for r in results))
    lengths = sorted({r.config.length for r in results})
    fig = Figure(figsize=(2.8 * len(lengths), 2.1 * len(cells)))
    axes = fig.subplots(len(cells), len(lengths), squeeze=False, sharey=True)
    for r in results:
        ax = axes[cells.index(r.config.cell)][lengths.index(r.config.length)]
        _draw(ax, r)
        ax.set_title(
            f"{r.config.cell} T={r.config.length}: "
            + (f"solved @{r.solved_at}" if r.solved else "not solved"),
            fontsize=8,
        )
        ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("step", fontsize=8)
    for row in axes:
        row[0].set_ylabel("metric / baseline", fontsize=8)
    fig.suptitle(
        f"{results[0].config.task}: held-out metric / trivial baseline "
        f"(dashed: solved at {results[0].config.solved_ratio:g})"
    )
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


def plot_gradient_flow(
    base: LabConfig, cells: list[str], length: int, path: PathLike | None = None
) -> Figure | None:
    """The picture of ``rnnkit gradients`` for the rnn/lstm/gru among ``cells``.

    At torch's default init (the lab's init), hidden size and seed of ``base``:
    how far back a gradient reaches before any training. None when ``cells``
    has none of rnn/lstm/gru (the NumPy engine has no min-cells).
    """
    classic = tuple(c for c in cells if c in ("rnn", "lstm", "gru"))
    if not classic:
        return None
    cfg = GradientsConfig(
        cells=classic,
        length=max(length, 2),
        hidden_size=base.hidden_size,
        seed=base.seed,
        gate_init="torch",
    )
    return plot_gradients([cell_gradients(c, cfg) for c in classic], cfg, path)


def markdown_table(results: list[LabResult]) -> str:
    """Results as a markdown table, one row per (cell, length)."""
    head = (
        "cell",
        "T",
        "solved at step",
        f"best {results[0].metric_name} / baseline" if results else "best / baseline",
        "steps run",
        "seconds",
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        lines.append(
            f"| {r.config.cell} | {r.config.length} | "
            f"{r.solved_at if r.solved else 'not solved'} | "
            f"{r.best_metric / r.baseline:.3g} | {r.steps} | {r.seconds:.0f} |"
        )
    return "\n".join(lines) + "\n"
