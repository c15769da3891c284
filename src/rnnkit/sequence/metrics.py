"""Scores of the sequence estimators, computed as scikit-learn computes them (NumPy only)."""

from __future__ import annotations

import numpy as np

__all__ = ["accuracy", "classification_metrics", "r2", "regression_metrics"]


def r2(y: np.ndarray, pred: np.ndarray) -> float:
    """R^2 of ``pred`` for ``y`` (N, K), averaged over the K outputs.

    As ``sklearn.metrics.r2_score`` (``multioutput="uniform_average"``): an
    output whose y is constant scores 1.0 if predicted exactly, else 0.0.
    """
    y = y.reshape(len(y), -1).astype(np.float64)
    pred = pred.reshape(len(pred), -1).astype(np.float64)
    ss_res = ((y - pred) ** 2).sum(axis=0)  # (K,)
    ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)  # (K,)
    scores = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), 0.0)
    scores = np.where((ss_tot == 0) & (ss_res == 0), 1.0, scores)
    return float(scores.mean())


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float | int]:
    """mse, rmse, mae (over all N*K values) and r2 (averaged over outputs)."""
    err = pred.reshape(len(pred), -1).astype(np.float64) - y.reshape(len(y), -1)
    mse = float((err**2).mean())
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.abs(err).mean()),
        "r2": r2(y, pred),
        "n": len(y),
    }


def accuracy(labels: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(labels)))


def classification_metrics(codes: np.ndarray, proba: np.ndarray) -> dict[str, float | int]:
    """accuracy and log_loss (mean cross-entropy, natural log) of class indices ``codes``."""
    p = np.clip(proba[np.arange(len(codes)), codes], np.finfo(np.float64).tiny, 1.0)
    return {
        "accuracy": float(np.mean(proba.argmax(axis=1) == codes)),
        "log_loss": float(-np.log(p).mean()),
        "n": len(codes),
    }
