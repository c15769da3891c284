"""Reports for text classifiers: metrics, the confusion matrix, explanations rendered.

Used by :class:`~rnnkit.sentiment.SentimentClassifier` and ``rnnkit sentiment``
(``eval`` and ``explain``); nothing here needs the model, so the functions work
on any predictions:

- :func:`classification_report` / :func:`format_report`: accuracy, macro-F1,
  per-class precision/recall/F1 and the confusion matrix, as a dict and as text;
- :func:`plot_confusion`: the confusion matrix as a matplotlib Figure (saved as
  a PNG when given a path);
- :class:`Explanation` with :func:`render_terminal` (ANSI-highlighted text) and
  :func:`render_html` (an HTML snippet, also what a notebook shows for an
  Explanation): which tokens moved a prediction.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "Explanation",
    "classification_report",
    "format_report",
    "plot_confusion",
    "render_html",
    "render_terminal",
]


def classification_report(
    y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[Any]
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    ``confusion[i][j]`` counts examples of true class i predicted as j.
    precision_c = M[c,c] / sum_i M[i,c], recall_c = M[c,c] / sum_j M[c,j] (0 when the
    denominator is 0), F1 = 2PR / (P + R), macro-F1 = mean over classes of F1_c.
    """
    C = len(classes)
    m = np.zeros((C, C), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    tp = np.diag(m).astype(np.float64)
    pred_n, true_n = m.sum(0), m.sum(1)
    precision = np.divide(tp, pred_n, out=np.zeros(C), where=pred_n > 0)
    recall = np.divide(tp, true_n, out=np.zeros(C), where=true_n > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(C), where=denom > 0)
    per_class = {
        str(c): {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(true_n[i]),
        }
        for i, c in enumerate(classes)
    }
    total = int(m.sum())
    return {
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "macro_f1": float(f1.mean()),
        "per_class": per_class,
        "confusion": m.tolist(),
        "classes": list(classes),
        "n": total,
    }


def format_report(report: dict[str, Any]) -> str:
    """The report as a plain-text table (what ``eval`` prints)."""
    lines = [
        f"examples {report['n']} | accuracy {report['accuracy']:.4f} | "
        f"macro-F1 {report['macro_f1']:.4f}",
        "",
        f"{'class':>12} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}",
    ]
    for c, r in report["per_class"].items():
        lines.append(
            f"{c:>12} {r['precision']:9.4f} {r['recall']:9.4f} {r['f1']:9.4f} {r['support']:8d}"
        )
    names = [str(c) for c in report["classes"]]
    width = max(8, *(len(n) for n in names))
    lines += ["", "confusion matrix (rows: true, columns: predicted)"]
    lines.append(" " * width + " " + " ".join(f"{n:>{width}}" for n in names))
    for n, row in zip(names, report["confusion"], strict=True):
        lines.append(f"{n:>{width}} " + " ".join(f"{v:>{width}d}" for v in row))
    return "\n".join(lines)


def plot_confusion(
    report: dict[str, Any], path: str | Path | None = None, *, title: str = ""
) -> Figure:
    """The confusion matrix of ``report`` as a matplotlib Figure (counts in the cells,
    rows = true class); saved as an image to ``path`` when given (PNG by its suffix).

    Uses matplotlib's object API (no pyplot state), so it changes no backend and
    a notebook shows the returned Figure inline.
    """
    from matplotlib.figure import Figure

    m = np.asarray(report["confusion"])
    names = [str(c) for c in report["classes"]]
    size = 2.5 + 0.6 * len(names)
    fig = Figure(figsize=(size, size))
    ax = fig.subplots()
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            dark = m[i, j] > m.max() / 2
            ax.text(j, i, str(m[i, j]), ha="center", va="center", color="w" if dark else "k")
    scores = f"accuracy {report['accuracy']:.3f}, macro-F1 {report['macro_f1']:.3f}"
    ax.set_title(f"{title}\n{scores}" if title else scores)
    fig.tight_layout()
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    return fig


# ---------------------------------------------------------------------------
# Explanations
# ---------------------------------------------------------------------------


class Explanation(NamedTuple):
    """Why a text got its label: one score per token (positive: pushed towards ``label``).

    ``spans`` are (start, end) character offsets of the tokens in ``text``.
    """

    text: str
    label: Any
    probability: float
    tokens: list[str]
    spans: list[tuple[int, int]]
    scores: list[float]
    method: str

    def _repr_html_(self) -> str:
        """Jupyter shows an Explanation as highlighted text (:func:`render_html`)."""
        return render_html(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``spans`` as lists)."""
        d = self._asdict()
        d["spans"] = [list(s) for s in self.spans]
        return d


def _ansi_bg(score: float, scale: float) -> str:
    # 256-colour backgrounds, three steps of green (for the label) or red (against it).
    greens, reds = (194, 151, 77), (224, 217, 203)
    level = min(2, int(3 * abs(score) / scale)) if scale > 0 else 0
    return f"\x1b[48;5;{(greens if score > 0 else reds)[level]}m\x1b[30m"


def render_terminal(exp: Explanation, *, color: bool = True, top: int = 5) -> str:
    """The text with its tokens highlighted (ANSI colours) and the top tokens listed."""
    scale = max((abs(s) for s in exp.scores), default=0.0)
    lines = [f"{exp.label}  p={exp.probability:.3f}  ({exp.method}; green: for, red: against)"]
    if color:
        out, pos = [], 0
        for (a, b), s in zip(exp.spans, exp.scores, strict=True):
            out.append(exp.text[pos:a])
            out.append(f"{_ansi_bg(s, scale)}{exp.text[a:b]}\x1b[0m" if s else exp.text[a:b])
            pos = max(pos, b)
        out.append(exp.text[pos:])
        lines.append("".join(out))
    ranked = sorted(range(len(exp.scores)), key=lambda i: -abs(exp.scores[i]))[:top]
    lines.append(
        "most influential: " + ", ".join(f"{exp.tokens[i]!r} {exp.scores[i]:+.3f}" for i in ranked)
    )
    return "\n".join(lines)


def render_html(exp: Explanation) -> str:
    """An HTML snippet: each token's background is green (for) or red (against the label)."""
    scale = max((abs(s) for s in exp.scores), default=0.0) or 1.0
    parts, pos = [], 0
    for (a, b), s in zip(exp.spans, exp.scores, strict=True):
        parts.append(html.escape(exp.text[pos:a]))
        rgb = "0,160,0" if s > 0 else "220,0,0"
        parts.append(
            f'<span style="background: rgba({rgb},{abs(s) / scale * 0.6:.3f})" '
            f'title="{s:+.4f}">{html.escape(exp.text[a:b])}</span>'
        )
        pos = max(pos, b)
    parts.append(html.escape(exp.text[pos:]))
    head = html.escape(f"{exp.label} (p={exp.probability:.3f}, {exp.method})")
    return f'<p class="rnnkit-explanation"><b>{head}</b><br>{"".join(parts)}</p>\n'
