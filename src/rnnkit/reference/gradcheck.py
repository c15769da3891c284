"""Check hand-written gradients against central finite differences (float64).

.. math::
    \\frac{\\partial f}{\\partial x_k} \\approx \\frac{f(x + \\epsilon e_k) - f(x - \\epsilon e_k)}
    {2 \\epsilon}

whose error is O(eps^2) plus rounding O(machine_eps / eps); eps = 1e-6 in
float64 gives about 1e-9 relative error on well-scaled functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np

from rnnkit.reference.bptt import KINDS, State, backward, forward

__all__ = ["relative_error", "numerical_gradient", "check_gradient", "GradcheckResult", "gradcheck"]


def relative_error(a: np.ndarray, b: np.ndarray, floor: float = 1e-8) -> float:
    """Largest elementwise ``|a - b| / max(|a| + |b|, floor)`` (cs231n's measure).

    The floor keeps entries where both values are ~0 from dividing by zero.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare arrays of shapes {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), floor)))


def numerical_gradient(
    f: Callable[[], float],
    x: np.ndarray,
    eps: float = 1e-6,
    indices: np.ndarray | None = None,
) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to ``x``, perturbed in place.

    Args:
        f: evaluates the loss, reading ``x`` (which this function perturbs and restores).
        x: a float64 array that ``f`` uses.
        indices: flat indices to check; all of them if None. Others stay 0.

    Returns:
        An array shaped like ``x``.
    """
    if x.dtype != np.float64:
        raise ValueError(f"numerical gradients need float64 (rounding), got dtype {x.dtype}")
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)  # views: perturb x through them
    for k in range(x.size) if indices is None else indices:
        old = flat[k]
        flat[k] = old + eps
        f_plus = f()
        flat[k] = old - eps
        f_minus = f()
        flat[k] = old
        gflat[k] = (f_plus - f_minus) / (2 * eps)
    return grad


def check_gradient(
    f: Callable[[], float], x: np.ndarray, analytic: np.ndarray, eps: float = 1e-6
) -> float:
    """Max relative error between ``analytic`` and the central-difference gradient of f."""
    return relative_error(analytic, numerical_gradient(f, x, eps))


class GradcheckResult(NamedTuple):
    """The outcome of :func:`gradcheck`.

    Attributes:
        max_rel_error: the largest relative error over every array checked.
        errors: the max relative error per array: "x", each parameter name, "h0" (and
            "c0" for lstm).
    """

    max_rel_error: float
    errors: dict[str, float]


def gradcheck(
    kind: str,
    x: np.ndarray,
    params: Mapping[str, np.ndarray],
    state: State | None = None,
    *,
    nonlinearity: str = "tanh",
    eps: float = 1e-6,
    max_checks: int | None = None,
    seed: int = 0,
) -> GradcheckResult:
    """Check :func:`~rnnkit.reference.backward` against central differences.

    The loss is a fixed random linear function of the outputs and the final state,
    ``L = sum(R * outputs) + sum(R_h * h_T) (+ sum(R_c * c_T))``, so every path
    through the sequence is exercised. Everything is copied to float64.

    Args:
        state: the initial state; zeros if None (its gradient is still checked).
        max_checks: check at most this many random entries per array (all if None).
        seed: seeds the loss weights and the sampled entries.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}")
    rng = np.random.default_rng(seed)
    x = np.array(x, dtype=np.float64)
    p = {k: np.array(v, dtype=np.float64) for k, v in params.items() if v is not None}
    B, H = x.shape[0], p["weight_hh"].shape[-1]
    if state is None:
        state = (np.zeros((B, H)), np.zeros((B, H))) if kind == "lstm" else np.zeros((B, H))
    if kind == "lstm":
        st: dict[str, np.ndarray] = {
            "h0": np.array(state[0], dtype=np.float64),
            "c0": np.array(state[1], dtype=np.float64),
        }
    else:
        st = {"h0": np.array(state, dtype=np.float64)}

    def _state() -> State:
        return (st["h0"], st["c0"]) if kind == "lstm" else st["h0"]

    outputs, final, cache = forward(kind, x, p, _state(), nonlinearity=nonlinearity)
    r_out = rng.standard_normal(outputs.shape)
    r_fin = [rng.standard_normal((B, H)) for _ in range(2 if kind == "lstm" else 1)]

    def loss() -> float:
        out, fin, _ = forward(kind, x, p, _state(), nonlinearity=nonlinearity)
        fins = fin if kind == "lstm" else (fin,)
        return float(
            np.sum(r_out * out) + sum(np.sum(r * f) for r, f in zip(r_fin, fins, strict=True))
        )

    d_final = tuple(r_fin) if kind == "lstm" else r_fin[0]
    dx, dparams, d_state0 = backward(kind, r_out, cache, d_final)
    analytic = {"x": dx, **dparams}
    analytic.update({"h0": d_state0[0], "c0": d_state0[1]} if kind == "lstm" else {"h0": d_state0})
    arrays = {"x": x, **p, **st}
    errors: dict[str, float] = {}
    for name, arr in arrays.items():
        idx = None
        if max_checks is not None and arr.size > max_checks:
            idx = rng.choice(arr.size, size=max_checks, replace=False)
        numeric = numerical_gradient(loss, arr, eps, idx)
        a = analytic[name]
        if idx is not None:
            a, numeric = a.reshape(-1)[idx], numeric.reshape(-1)[idx]
        errors[name] = relative_error(a, numeric)
    return GradcheckResult(max(errors.values()), errors)
