"""Losses that return their gradient: ``loss_fn(prediction, target) -> (loss, d_prediction)``.

Both match torch.nn.functional with ``reduction="mean"`` (the default) or
``"sum"``, and keep the dtype of the prediction.
"""

from __future__ import annotations

import numpy as np

__all__ = ["softmax_cross_entropy", "mse"]

_REDUCTIONS = ("mean", "sum")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def softmax_cross_entropy(
    logits: np.ndarray, targets: np.ndarray, reduction: str = "mean"
) -> tuple[float, np.ndarray]:
    """Cross-entropy of a softmax over the last axis, and its gradient.

    .. math::
        p = \\operatorname{softmax}(z), \\qquad
        L = -\\frac{1}{N} \\sum_n \\log p_{n, y_n}, \\qquad
        \\frac{\\partial L}{\\partial z_n} = \\frac{1}{N} (p_n - \\operatorname{onehot}(y_n))

    with N the number of positions (``reduction="mean"``) or 1 (``"sum"``);
    ``torch.nn.functional.cross_entropy`` on the flattened positions.

    Args:
        logits: (..., V) unnormalised scores, e.g. (B, T, V).
        targets: (...) integer class indices in [0, V), e.g. (B, T).

    Returns:
        ``(loss, dlogits)``, ``dlogits`` with the shape and dtype of ``logits``.
    """
    _check_reduction(reduction)
    logits = np.asarray(logits)
    targets = np.asarray(targets)
    if logits.ndim < 1 or targets.shape != logits.shape[:-1]:
        raise ValueError(
            f"targets must have the shape of logits without its last axis, got logits "
            f"{logits.shape} and targets {targets.shape}"
        )
    if not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"targets must be integer class indices, got dtype {targets.dtype}")
    V = logits.shape[-1]
    z = logits.reshape(-1, V)  # (N, V)
    y = targets.reshape(-1)  # (N,)
    if y.size and (y.min() < 0 or y.max() >= V):
        raise ValueError(f"targets must lie in [0, {V}), got values in [{y.min()}, {y.max()}]")
    # Subtract the row maximum so exp never overflows (log-sum-exp trick).
    shifted = z - z.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    sum_exp = exp.sum(axis=1, keepdims=True)
    rows = np.arange(y.size)
    log_p_y = shifted[rows, y] - np.log(sum_exp[:, 0])
    scale = 1.0 / max(y.size, 1) if reduction == "mean" else 1.0
    loss = -float(log_p_y.sum()) * scale
    d = exp / sum_exp  # softmax probabilities p
    d[rows, y] -= 1.0
    d *= scale
    return loss, d.reshape(logits.shape)  # (N, V) -> (..., V)


def mse(
    prediction: np.ndarray, target: np.ndarray, reduction: str = "mean"
) -> tuple[float, np.ndarray]:
    """Mean squared error and its gradient (``torch.nn.functional.mse_loss``).

    .. math::
        L = \\frac{1}{N} \\sum (\\hat y - y)^2, \\qquad
        \\frac{\\partial L}{\\partial \\hat y} = \\frac{2}{N} (\\hat y - y)

    with N the number of elements (``"mean"``) or 1 (``"sum"``).

    Returns:
        ``(loss, d_prediction)``, ``d_prediction`` shaped like ``prediction``.
    """
    _check_reduction(reduction)
    prediction = np.asarray(prediction)
    target = np.asarray(target)
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction and target must have the same shape, got {prediction.shape} and "
            f"{target.shape}"
        )
    diff = prediction - target.astype(prediction.dtype, copy=False)
    scale = 1.0 / max(diff.size, 1) if reduction == "mean" else 1.0
    loss = float(np.sum(diff * diff)) * scale
    return loss, (2.0 * scale) * diff
