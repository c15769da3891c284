"""The alignment figure: log-mel spectrogram above, the per-frame CTC argmax below.

Built with matplotlib's object API (no pyplot state, no backend switch), so it
shows inline in a notebook and saves from a script alike.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_alignment"]


def plot_alignment(
    logmel: np.ndarray,
    best: Sequence[int],
    chars: Sequence[str],
    *,
    subsample: int,
    hop_ms: float,
    title: str = "",
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """The figure of one utterance; saved to ``path`` (PNG, SVG, PDF...) when given.

    Args:
        logmel: (T, M) un-normalised log-mel features, for display.
        best: (T',) argmax label of each output frame (0 = blank).
        chars: the vocabulary's characters (label ``k`` is ``chars[k - 1]``).
        subsample: feature frames per output frame.
        hop_ms: feature frame shift, for the axis label.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    a1, a2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [4, 1]})
    a1.imshow(np.asarray(logmel).T, origin="lower", aspect="auto", interpolation="nearest")
    a1.set_ylabel("mel channel")
    a1.set_title(title)
    best = list(best)
    s = subsample
    a2.step(np.arange(len(best)) * s, [0 if k == 0 else 1 for k in best], where="post", lw=0.8)
    for t, k in enumerate(best):
        if k != 0 and (t == 0 or best[t - 1] != k):
            a2.text(t * s, 0.5, chars[k - 1].replace(" ", "_"), fontsize=8)
    a2.set_yticks([0, 1], ["blank", "char"])
    a2.set_xlabel(f"feature frame ({hop_ms:g} ms)")
    a2.set_xlim(0, len(logmel))
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig
