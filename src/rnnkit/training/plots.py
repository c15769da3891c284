"""A PNG of the training and validation curves from ``metrics.jsonl``."""

from __future__ import annotations

import os
from pathlib import Path

from rnnkit.training.progress import read_metrics

__all__ = ["plot_curves"]


def plot_curves(
    metrics_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str] | None = None,
    *,
    title: str | None = None,
) -> Path:
    """Plot training loss (raw and smoothed), validation metrics and the pre-clip grad norm.

    Returns the PNG's path (default ``curves.png`` beside ``metrics.jsonl``).
    """
    import matplotlib

    matplotlib.use("Agg")  # no display needed; never opens a window
    import matplotlib.pyplot as plt

    metrics_path = Path(metrics_path)
    out = Path(out_path) if out_path else metrics_path.with_name("curves.png")
    records = read_metrics(metrics_path)
    train = [r for r in records if "loss" in r]
    evals = [r for r in records if r.get("kind") == "eval"]

    fig, (ax, ax_g) = plt.subplots(
        2, 1, figsize=(8, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    if train:
        steps = [r["step"] for r in train]
        losses = [r["loss"] for r in train]
        ax.plot(steps, losses, color="tab:blue", alpha=0.25, lw=0.8, label="train (per step)")
        # Exponential moving average: the raw per-step curve is noisy.
        ema, smooth = losses[0], []
        for v in losses:
            ema = 0.95 * ema + 0.05 * v
            smooth.append(ema)
        ax.plot(steps, smooth, color="tab:blue", lw=1.5, label="train (EMA 0.95)")
        ax_g.plot(steps, [r.get("grad_norm", float("nan")) for r in train], lw=0.8, color="gray")
    # Losses share the training loss's axis; other metrics (BLEU, accuracy, WER, ...)
    # have their own scale and go on a second axis at the right.
    keys = sorted({k for r in evals for k in r if k not in ("kind", "step", "time")})
    ax_m = ax.twinx() if any("loss" not in k for k in keys) else None
    colors = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"][1:] * 3)
    for key in keys:
        pts = [(r["step"], r[key]) for r in evals if key in r]
        target, style = (ax, "-") if "loss" in key or ax_m is None else (ax_m, "--")
        target.plot(
            *zip(*pts, strict=True), style, marker="o", ms=3, lw=1.5, label=key, color=next(colors)
        )
    ax.set_ylabel("loss")
    handles, labels = ax.get_legend_handles_labels()
    if ax_m is not None:
        ax_m.set_ylabel("validation metrics (dashed)")
        more = ax_m.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    ax.legend(handles, labels)
    ax.grid(alpha=0.3)
    ax_g.set_ylabel("grad norm\n(pre-clip)")
    ax_g.set_xlabel("optimizer step")
    ax_g.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
