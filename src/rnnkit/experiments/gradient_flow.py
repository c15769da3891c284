"""Watch the gradient of a loss flow back through time (``rnnkit gradients``).

For each cell (a plain RNN, an LSTM, a GRU) on one random sequence, the loss
is taken on the last step only, ``L = mse(h_T, y)``, and the NumPy engine's
backpropagation through time gives dL/dh_t for every step t. Its norm
against t shows how far back a training signal reaches:

- plain RNN: dL/dh_{t-1} = dL/dh_t diag(phi'(a_t)) W_hh, a product of T Jacobians
  that shrinks geometrically when the spectral radius of W_hh (times phi') is
  below 1 and can grow geometrically when it is above (Bengio et al. 1994;
  Pascanu et al. 2013, section 2);
- LSTM / GRU: the state is carried additively, c_t = f c_{t-1} + ..., or
  h_t = z h_{t-1} + ..., so the gradient is multiplied by the gate f (or z)
  at each step, and it survives when that gate is near 1 (open). At torch's
  default init the gates sit near 0.5 and the gradient vanishes too; with
  chrono initialisation (Tallec & Ollivier 2018) the forget/update gates start
  open, the way a trained gated cell keeps them, and the gradient is kept.

Everything runs in float64 (the norms span tens of orders of magnitude), and
the gradients are cross-checked against torch.nn.{RNN,LSTM,GRU}Cell run
step by step under torch.autograd with the same weights.

In Python (a notebook shows the returned Figure inline)::

    from rnnkit.experiments.gradients import GradientsConfig, cell_gradients, plot_gradients

    cfg = GradientsConfig(length=100)
    results = [cell_gradients(kind, cfg) for kind in cfg.cells]
    fig = plot_gradients(results, cfg)  # or plot_gradients(results, cfg, "gradients.png")

This module needs NumPy only; torch is imported for the cross-check and
matplotlib for the plot, when they are used.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from rnnkit.errors import UserError
from rnnkit.reference import KINDS, forward, hidden_gradients, mse

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "GradientsConfig",
    "CellGradients",
    "init_params",
    "make_sequence",
    "cell_gradients",
    "torch_hidden_gradients",
    "step_difference",
    "summarize",
    "describe",
    "format_table",
    "plot_gradients",
    "results_json",
]

_GATES = {"rnn": 1, "lstm": 4, "gru": 3}
# Ratio |dL/dh_1| / |dL/dh_T| below which we call the gradient vanished, above which exploded.
_VANISHED, _EXPLODED = 1e-6, 1e2


@dataclass(kw_only=True)
class GradientsConfig:
    """Settings of one ``rnnkit gradients`` run.

    Attributes:
        cells: cell kinds, a subset of ("rnn", "lstm", "gru").
        length: T, steps in the sequence (>= 2).
        hidden_size, input_size, batch: H, D, B.
        seed: seeds the sequence, the target and the weights.
        scale: multiplies the recurrent weights W_hh after torch's default init.
        nonlinearity: "tanh" or "relu" for the plain RNN.
        gate_init: "chrono" (forget/update gate biases log U(1, T-1)) or "torch".
    """

    cells: tuple[str, ...] = KINDS
    length: int = 100
    hidden_size: int = 64
    input_size: int = 32
    batch: int = 8
    seed: int = 0
    scale: float = 1.0
    nonlinearity: str = "tanh"
    gate_init: str = "chrono"

    def __post_init__(self) -> None:
        bad = [c for c in self.cells if c not in KINDS]
        if bad or not self.cells:
            raise UserError(
                f"--cell must be a comma list of {', '.join(KINDS)}, got {','.join(self.cells)!r}"
            )
        for name, flag in (
            ("hidden_size", "hidden-size"),
            ("input_size", "input-size"),
            ("batch", "batch-size"),
        ):
            if getattr(self, name) < 1:
                raise UserError(f"--{flag} must be >= 1, got {getattr(self, name)}")
        if self.length < 2:
            raise UserError(
                f"--length must be >= 2 (a gradient needs a step to flow back), got {self.length}"
            )
        if not (self.scale > 0 and math.isfinite(self.scale)):
            raise UserError(f"--scale must be a positive number, got {self.scale}")
        if self.nonlinearity not in ("tanh", "relu"):
            raise UserError(f"--nonlinearity must be tanh or relu, got {self.nonlinearity!r}")
        if self.gate_init not in ("chrono", "torch"):
            raise UserError(f"--gate-init must be chrono or torch, got {self.gate_init!r}")


def init_params(kind: str, cfg: GradientsConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random float64 weights in torch.nn layout.

    torch's default init, U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias, then
    W_hh *= scale. With ``gate_init="chrono"`` (Tallec & Ollivier 2018) the
    gate that keeps the state gets bias b = log U(1, T-1) per unit: the LSTM forget
    gate (and its input gate -b), the GRU update gate z (h_t = (1-z) n + z h_{t-1}).
    """
    G, H, D = _GATES[kind], cfg.hidden_size, cfg.input_size
    k = 1.0 / math.sqrt(H)
    p = {
        "weight_ih": rng.uniform(-k, k, (G * H, D)),
        "weight_hh": rng.uniform(-k, k, (G * H, H)) * cfg.scale,
        "bias_ih": rng.uniform(-k, k, G * H),
        "bias_hh": rng.uniform(-k, k, G * H),
    }
    if cfg.gate_init == "chrono" and kind != "rnn":
        b = np.log(rng.uniform(1.0, max(cfg.length - 1, 2), H))  # (H,) one timescale per unit
        gate = slice(H, 2 * H)  # lstm f (order i, f, g, o); gru z (order r, z, n)
        p["bias_ih"][gate], p["bias_hh"][gate] = b, 0.0
        if kind == "lstm":
            p["bias_ih"][:H], p["bias_hh"][:H] = -b, 0.0  # input gate i
    return p


def make_sequence(cfg: GradientsConfig) -> tuple[np.ndarray, np.ndarray]:
    """The shared random input x (B, T, D) ~ N(0, 1) and last-step target y (B, H) ~ N(0, 1)."""
    rng = np.random.default_rng(cfg.seed)
    x = rng.standard_normal((cfg.batch, cfg.length, cfg.input_size))
    y = rng.standard_normal((cfg.batch, cfg.hidden_size))
    return x, y


class CellGradients(NamedTuple):
    """dL/dh_t of one cell (loss on the last step), from the NumPy engine.

    Attributes:
        kind: the cell.
        params: its weights (torch.nn layout, float64).
        grads: dL/dh_t, (B, T, H).
        norms: the Frobenius norm of dL/dh_t over batch and units, (T,).
    """

    kind: str
    params: dict[str, np.ndarray]
    grads: np.ndarray
    norms: np.ndarray


def cell_gradients(kind: str, cfg: GradientsConfig) -> CellGradients:
    """Run ``kind`` over the shared sequence, L = mse(h_T, y), and backpropagate."""
    x, y = make_sequence(cfg)
    # One weight stream per cell, independent of which other cells are run.
    rng = np.random.default_rng([cfg.seed, KINDS.index(kind) + 1])
    params = init_params(kind, cfg, rng)
    outputs, _, cache = forward(kind, x, params, nonlinearity=cfg.nonlinearity)
    _, d_last = mse(outputs[:, -1], y)  # the loss sees the last step only
    d_outputs = np.zeros_like(outputs)
    d_outputs[:, -1] = d_last
    grads = hidden_gradients(kind, d_outputs, cache)  # (B, T, H)
    return CellGradients(kind, params, grads, np.linalg.norm(grads, axis=(0, 2)))


def torch_hidden_gradients(
    kind: str, params: dict[str, np.ndarray], cfg: GradientsConfig
) -> np.ndarray:
    """The same dL/dh_t from torch: torch.nn.*Cell step by step under autograd (float64)."""
    import torch  # experiments may import torch; rnnkit.reference never does

    x, y = make_sequence(cfg)
    B, T, _ = x.shape
    H = cfg.hidden_size
    cell_cls = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[kind]
    extra = {"nonlinearity": cfg.nonlinearity} if kind == "rnn" else {}
    cell = cell_cls(cfg.input_size, H, **extra).double()
    with torch.no_grad():
        for name, value in params.items():
            getattr(cell, name).copy_(torch.from_numpy(value))
    xt = torch.from_numpy(x)
    h = torch.zeros(B, H, dtype=torch.float64)
    c = torch.zeros(B, H, dtype=torch.float64)
    hs = []
    # Tiny per-step ops: one thread is ~20x faster than several spinning on a busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for t in range(T):
            if kind == "lstm":
                h, c = cell(xt[:, t], (h, c))
            else:
                h = cell(xt[:, t], h)
            h.retain_grad()  # keep dL/dh_t of this non-leaf tensor
            hs.append(h)
        loss = torch.nn.functional.mse_loss(h, torch.from_numpy(y))
        loss.backward()
    finally:
        torch.set_num_threads(threads)
    return torch.stack([h.grad for h in hs], dim=1).numpy()  # T x (B, H) -> (B, T, H)


def step_difference(a: np.ndarray, b: np.ndarray) -> float:
    """max over t of ||a_t - b_t|| / ||b_t||: scale-free even where norms are 1e-30."""
    num = np.linalg.norm(a - b, axis=(0, 2))
    den = np.maximum(np.linalg.norm(b, axis=(0, 2)), np.finfo(np.float64).tiny)
    return float(np.max(num / den))


_VERDICTS = {
    "vanishes": "a loss at the last step barely reaches the first",
    "explodes": "early steps get huge updates (clip the gradient norm)",
    "survives": "the first step still gets a usable signal",
}


def summarize(norms: np.ndarray) -> dict[str, Any]:
    """``ratio`` |dL/dh_1| / |dL/dh_T|, ``per_step`` (its (T-1)-th root) and ``verdict``.

    The verdict is "vanishes" below a ratio of 1e-6, "explodes" above 1e2,
    else "survives".
    """
    T = len(norms)
    ratio = float(norms[0] / norms[-1])
    per_step = ratio ** (1.0 / (T - 1)) if ratio > 0 else 0.0
    if ratio < _VANISHED:
        verdict = "vanishes"
    elif ratio > _EXPLODED:
        verdict = "explodes"
    else:
        verdict = "survives"
    return {"ratio": ratio, "per_step": per_step, "verdict": verdict}


def describe(kind: str, norms: np.ndarray) -> str:
    """One line: the ratio |dL/dh_1| / |dL/dh_T|, the mean factor per step, and a verdict."""
    s = summarize(norms)
    return (
        f"{kind:<5} |dL/dh_1| / |dL/dh_{len(norms)}| = {s['ratio']:.1e} "
        f"(x{s['per_step']:.3f} per step): {s['verdict']}: {_VERDICTS[s['verdict']]}"
    )


def format_table(results: list[CellGradients], every: int) -> str:
    """Every ``every``-th step (and the first and last) with |dL/dh_t| per cell."""
    T = len(results[0].norms)
    steps = sorted({1, T, *range(every, T + 1, every)})
    header = f"{'step t':>7} " + " ".join(f"{r.kind:>11}" for r in results)
    lines = [header, "-" * len(header)]
    for t in steps:
        lines.append(f"{t:>7} " + " ".join(f"{r.norms[t - 1]:>11.3e}" for r in results))
    return "\n".join(lines)


def plot_gradients(
    results: list[CellGradients],
    cfg: GradientsConfig,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """One line per cell, |dL/dh_t| against t on a log scale.

    Returns the Figure (a notebook shows it inline); saves it as a PNG when
    ``path`` is given.
    """
    from matplotlib.figure import Figure  # object API: no pyplot state, no backend change

    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    t = np.arange(1, cfg.length + 1)
    for r in results:
        ax.semilogy(t, np.maximum(r.norms, np.finfo(np.float64).tiny), label=r.kind, lw=1.8)
    ax.set_xlabel("time step t")
    ax.set_ylabel(r"$\|\partial L / \partial h_t\|$ (loss on the last step)")
    ax.set_title(
        f"Gradient flowing back through time (H={cfg.hidden_size}, scale={cfg.scale:g}, "
        f"gates: {cfg.gate_init})",
        fontsize=10,
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def results_json(
    results: list[CellGradients], cfg: GradientsConfig, check: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What ``--json`` writes: the config, per cell the summary and |dL/dh_t| for t = 1..T."""
    return {
        "config": dataclasses.asdict(cfg),
        "cells": [
            {"cell": r.kind, **summarize(r.norms), "norms": [float(v) for v in r.norms]}
            for r in results
        ],
        "torch_check": check,
    }
