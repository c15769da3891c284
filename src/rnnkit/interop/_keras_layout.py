"""Keras 3 <-> torch.nn weight layouts of one recurrent layer, in NumPy (no Keras import).

Shape letters: I input features, H units (hidden features), G gates (1 RNN, 4 LSTM, 3 GRU).

Keras keeps, per cell::

    kernel            (I, G*H)    used as  x @ kernel
    recurrent_kernel  (H, G*H)    used as  h @ recurrent_kernel
    bias              (G*H,)      one vector; GRU with reset_after=True: (2, G*H),
                                  the input row, then the recurrent row

torch.nn (and rnnkit.nn) keep, per layer and direction::

    weight_ih (G*H, I), weight_hh (G*H, H), bias_ih (G*H,), bias_hh (G*H,)   used as  W x + b

so every matrix is transposed. The gate blocks along G*H:

- LSTM: Keras i, f, c, o and torch i, f, g, o are the same order (Keras' c is
  torch's g, the candidate cell): nothing to reorder.
- GRU: Keras z, r, h and torch r, z, n: the first two blocks swap places.
- SimpleRNN: one block.

Keras adds one bias where torch adds two, and for RNN and LSTM both of torch's
biases only enter the pre-activation (``W_ih x + b_ih + W_hh h + b_hh``), so
Keras -> torch puts Keras' bias in ``bias_ih`` with zeros in ``bias_hh``, and
torch -> Keras adds the two. A GRU's recurrent bias sits inside the reset gate
(``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``) and cannot be folded:
Keras keeps it as the second bias row with ``reset_after=True``, exactly
torch's form (Keras' ``reset_after=False`` applies r before the product and
has no torch counterpart).
"""

from __future__ import annotations

import numpy as np

__all__ = ["GATES", "keras_to_torch", "torch_to_keras"]

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _gate_order(a: np.ndarray, kind: str, H: int) -> np.ndarray:
    """``a`` with its gate blocks (last axis) swapped between the Keras and torch orders.

    Only the GRU differs (z, r, h <-> r, z, n: the first two blocks swap), and
    the swap is its own inverse, so one function converts both ways.
    """
    if kind != "gru":
        return a
    z, r, n = a[..., :H], a[..., H : 2 * H], a[..., 2 * H :]  # (..., H) each
    return np.concatenate([r, z, n], axis=-1)  # (..., 3H)


def keras_to_torch(
    kind: str, weights: list[np.ndarray], *, units: int, use_bias: bool
) -> dict[str, np.ndarray]:
    """One Keras layer's ``get_weights()`` as torch's ``weight_ih``, ``weight_hh``, biases.

    ``kind`` is ``"rnn"``, ``"lstm"`` or ``"gru"`` (a GRU with ``reset_after=True``).
    """
    H, G = units, GATES[kind]
    kernel, recurrent = (np.asarray(w, dtype=np.float32) for w in weights[:2])
    if kernel.ndim != 2 or kernel.shape[1] != G * H or recurrent.shape != (H, G * H):
        raise ValueError(
            f"{kind} weights of shapes {kernel.shape}, {recurrent.shape} do not match "
            f"{units} units (kernel (I, {G * H}), recurrent_kernel ({H}, {G * H}))"
        )
    out = {
        "weight_ih": _gate_order(kernel, kind, H).T.copy(),  # (I, GH) -> (GH, I)
        "weight_hh": _gate_order(recurrent, kind, H).T.copy(),  # (H, GH) -> (GH, H)
    }
    if use_bias:
        bias = np.asarray(weights[2], dtype=np.float32)
        if kind == "gru":
            if bias.shape != (2, G * H):
                raise ValueError(f"a GRU bias must have shape (2, {G * H}), got {bias.shape}")
            out["bias_ih"] = _gate_order(bias[0], kind, H).copy()  # (3H,)
            out["bias_hh"] = _gate_order(bias[1], kind, H).copy()
        else:
            if bias.shape != (G * H,):
                raise ValueError(f"a {kind} bias must have shape ({G * H},), got {bias.shape}")
            out["bias_ih"] = bias.copy()
            out["bias_hh"] = np.zeros_like(bias)  # folded into bias_ih (see the module doc)
    return out


def torch_to_keras(kind: str, params: dict[str, np.ndarray]) -> list[np.ndarray]:
    """torch's ``weight_ih``, ``weight_hh`` (and biases, if present) as Keras' weight list."""
    w_ih = np.asarray(params["weight_ih"], dtype=np.float32)  # (GH, I)
    H = w_ih.shape[0] // GATES[kind]
    out = [
        _gate_order(w_ih.T, kind, H).copy(),  # (I, GH)
        _gate_order(np.asarray(params["weight_hh"], dtype=np.float32).T, kind, H).copy(),
    ]
    if params.get("bias_ih") is not None:
        b_ih = np.asarray(params["bias_ih"], dtype=np.float32)
        b_hh = np.asarray(params["bias_hh"], dtype=np.float32)
        if kind == "gru":
            out.append(_gate_order(np.stack([b_ih, b_hh]), kind, H))  # (2, 3H)
        else:
            out.append(b_ih + b_hh)  # (GH,): torch adds both before the nonlinearity
    return out
