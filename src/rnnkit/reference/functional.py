"""One time step of each cell, forward paired with its hand-written backward.

The cs231n style: ``*_step_forward(x_t, h_prev[, c_prev], params) -> (out, cache)``,
``out`` being h (rnn, gru) or (h, c) (lstm), and ``*_step_backward(dout, cache) ->
(dx_t, d_prev, dparams)``, ``dout`` being dh or (dh, dc) and ``d_prev`` dh_prev or
(dh_prev, dc_prev). The equations in each docstring are the code, line for line.
Parameters use torch.nn's names and layouts (one layer, one direction):

- ``weight_ih`` (G*H, D), ``weight_hh`` (G*H, H), ``bias_ih`` (G*H,), ``bias_hh`` (G*H,),
  with G = 1 (rnn), 4 (lstm, gates i, f, g, o) or 3 (gru, gates r, z, n).
- A missing bias (or ``None``) means no bias, like ``bias=False`` in torch.nn;
  its gradient is then absent from ``dparams``.

These step functions are the readable definition and the naive twin of the
whole-sequence engine in :mod:`rnnkit.reference.bptt`, which computes the same
thing with the input projection hoisted out of the time loop.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "sigmoid",
    "rnn_step_forward",
    "rnn_step_backward",
    "lstm_step_forward",
    "lstm_step_backward",
    "gru_step_forward",
    "gru_step_backward",
]

Params = dict[str, np.ndarray]


def sigmoid(a: np.ndarray) -> np.ndarray:
    """Logistic sigmoid, ``1 / (1 + exp(-a))``, computed as ``(1 + tanh(a/2)) / 2``.

    The tanh form is exact and never overflows (``exp(-a)`` does for a < -88 in
    float32), and it keeps the dtype.
    """
    out = np.tanh(a * 0.5)
    out += 1.0
    out *= 0.5
    return out


def _affine(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """``x @ weight.T + bias``: (B, in) -> (B, out)."""
    out = x @ weight.T
    if bias is not None:
        out += bias
    return out


def _bias_grads(params: Params, d_ih: np.ndarray, d_hh: np.ndarray) -> Params:
    """Gradients of the biases that exist: sums over the batch axis."""
    grads: Params = {}
    if params.get("bias_ih") is not None:
        grads["bias_ih"] = d_ih.sum(axis=0)
    if params.get("bias_hh") is not None:
        grads["bias_hh"] = d_hh.sum(axis=0)
    return grads


# --------------------------------------------------------------------------- rnn


def rnn_step_forward(
    x_t: np.ndarray, h_prev: np.ndarray, params: Params, nonlinearity: str = "tanh"
) -> tuple[np.ndarray, dict[str, Any]]:
    """One step of the Elman RNN (torch.nn.RNNCell).

    .. math::
        a = W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}, \\qquad h_t = \\phi(a)

    with :math:`\\phi` = tanh or relu.

    Shapes: x_t (B, D), h_prev (B, H) -> h (B, H).
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    a = _affine(x_t, params["weight_ih"], params.get("bias_ih")) + _affine(
        h_prev, params["weight_hh"], params.get("bias_hh")
    )
    h = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)
    cache = {"x": x_t, "h_prev": h_prev, "h": h, "params": params, "nonlinearity": nonlinearity}
    return h, cache


def rnn_step_backward(
    dh: np.ndarray, cache: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, Params]:
    """Backward of :func:`rnn_step_forward`.

    .. math::
        d a = d h_t \\odot \\phi'(a), \\quad \\phi'(a) = 1 - h_t^2 \\text{ (tanh) or }
        [a > 0] \\text{ (relu)}

        d x_t = d a\\, W_{ih}, \\quad d h_{t-1} = d a\\, W_{hh}, \\quad
        d W_{ih} = d a^\\top x_t, \\quad d W_{hh} = d a^\\top h_{t-1}, \\quad
        d b_{ih} = d b_{hh} = \\textstyle\\sum_B d a

    Returns ``(dx_t (B, D), dh_prev (B, H), dparams)``.
    """
    p, h = cache["params"], cache["h"]
    da = dh * (1 - h * h) if cache["nonlinearity"] == "tanh" else dh * (h > 0)
    dparams = {"weight_ih": da.T @ cache["x"], "weight_hh": da.T @ cache["h_prev"]}
    dparams.update(_bias_grads(p, da, da))
    return da @ p["weight_ih"], da @ p["weight_hh"], dparams


# -------------------------------------------------------------------------- lstm


def lstm_step_forward(
    x_t: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray, params: Params
) -> tuple[tuple[np.ndarray, np.ndarray], dict[str, Any]]:
    """One step of the LSTM (torch.nn.LSTMCell; gate order i, f, g, o).

    .. math::
        [a_i, a_f, a_g, a_o] = W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}

        i = \\sigma(a_i), \\; f = \\sigma(a_f), \\; g = \\tanh(a_g), \\; o = \\sigma(a_o)

        c_t = f \\odot c_{t-1} + i \\odot g, \\qquad h_t = o \\odot \\tanh(c_t)

    Shapes: x_t (B, D), h_prev (B, H), c_prev (B, H) -> (h (B, H), c (B, H)).
    """
    a = _affine(x_t, params["weight_ih"], params.get("bias_ih")) + _affine(
        h_prev, params["weight_hh"], params.get("bias_hh")
    )
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)  # 4 x (B, H)
    i, f, g, o = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g), sigmoid(a_o)
    c = f * c_prev + i * g
    tanh_c = np.tanh(c)
    h = o * tanh_c
    cache = {
        "x": x_t,
        "h_prev": h_prev,
        "c_prev": c_prev,
        "gates": (i, f, g, o),
        "tanh_c": tanh_c,
        "params": params,
    }
    return (h, c), cache


def lstm_step_backward(
    d_state: tuple[np.ndarray, np.ndarray], cache: dict[str, Any]
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], Params]:
    """Backward of :func:`lstm_step_forward`, given ``(dh_t, dc_t)``.

    .. math::
        d o = d h_t \\odot \\tanh(c_t), \\quad
        d c = d c_t + d h_t \\odot o \\odot (1 - \\tanh^2 c_t)

        d i = d c \\odot g, \\; d f = d c \\odot c_{t-1}, \\; d g = d c \\odot i, \\;
        d c_{t-1} = d c \\odot f

        d a_{i,f,o} = d(i,f,o) \\odot \\sigma (1 - \\sigma), \\quad d a_g = d g \\odot (1 - g^2)

        d x_t = d a\\, W_{ih}, \\quad d h_{t-1} = d a\\, W_{hh}, \\quad
        d W_{ih} = d a^\\top x_t, \\quad d W_{hh} = d a^\\top h_{t-1}

    Returns ``(dx_t (B, D), (dh_prev, dc_prev) (B, H) each, dparams)``.
    """
    dh, dc_next = d_state
    p = cache["params"]
    i, f, g, o = cache["gates"]
    tanh_c = cache["tanh_c"]
    do = dh * tanh_c
    dc = dc_next + dh * o * (1 - tanh_c * tanh_c)
    di, df, dg = dc * g, dc * cache["c_prev"], dc * i
    dc_prev = dc * f
    da = np.concatenate(  # (B, 4H), gate order i, f, g, o
        [di * i * (1 - i), df * f * (1 - f), dg * (1 - g * g), do * o * (1 - o)], axis=1
    )
    dparams = {"weight_ih": da.T @ cache["x"], "weight_hh": da.T @ cache["h_prev"]}
    dparams.update(_bias_grads(p, da, da))
    return da @ p["weight_ih"], (da @ p["weight_hh"], dc_prev), dparams


# --------------------------------------------------------------------------- gru


def gru_step_forward(
    x_t: np.ndarray, h_prev: np.ndarray, params: Params
) -> tuple[np.ndarray, dict[str, Any]]:
    """One step of the GRU (torch.nn.GRUCell; gate order r, z, n).

    The reset gate multiplies the hidden projection *after* the matmul
    (torch.nn and cuDNN's variant, not the original paper's ``W (r * h)``):

    .. math::
        [x_r, x_z, x_n] = W_{ih} x_t + b_{ih}, \\qquad
        [h_r, h_z, h_n] = W_{hh} h_{t-1} + b_{hh}

        r = \\sigma(x_r + h_r), \\quad z = \\sigma(x_z + h_z), \\quad
        n = \\tanh(x_n + r \\odot h_n)

        h_t = (1 - z) \\odot n + z \\odot h_{t-1}

    Shapes: x_t (B, D), h_prev (B, H) -> h (B, H).
    """
    gx = _affine(x_t, params["weight_ih"], params.get("bias_ih"))
    gh = _affine(h_prev, params["weight_hh"], params.get("bias_hh"))
    x_r, x_z, x_n = np.split(gx, 3, axis=1)  # 3 x (B, H)
    h_r, h_z, h_n = np.split(gh, 3, axis=1)  # 3 x (B, H)
    r = sigmoid(x_r + h_r)
    z = sigmoid(x_z + h_z)
    n = np.tanh(x_n + r * h_n)
    h = (1 - z) * n + z * h_prev
    cache = {"x": x_t, "h_prev": h_prev, "r": r, "z": z, "n": n, "h_n": h_n, "params": params}
    return h, cache


def gru_step_backward(
    dh: np.ndarray, cache: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, Params]:
    """Backward of :func:`gru_step_forward`.

    .. math::
        d n = d h_t \\odot (1 - z), \\quad d z = d h_t \\odot (h_{t-1} - n)

        d a_n = d n \\odot (1 - n^2), \\quad d r = d a_n \\odot h_n, \\quad
        d h_n = d a_n \\odot r

        d a_r = d r \\odot r (1 - r), \\quad d a_z = d z \\odot z (1 - z)

        d x_t = [d a_r, d a_z, d a_n] W_{ih}, \\quad
        d h_{t-1} = d h_t \\odot z + [d a_r, d a_z, d h_n] W_{hh}

    Returns ``(dx_t (B, D), dh_prev (B, H), dparams)``.
    """
    p = cache["params"]
    r, z, n, h_n, h_prev = cache["r"], cache["z"], cache["n"], cache["h_n"], cache["h_prev"]
    dn = dh * (1 - z)
    dz = dh * (h_prev - n)
    da_n = dn * (1 - n * n)
    dr = da_n * h_n
    dh_n = da_n * r
    da_r = dr * r * (1 - r)
    da_z = dz * z * (1 - z)
    d_ih = np.concatenate([da_r, da_z, da_n], axis=1)  # (B, 3H): grads of W_ih x + b_ih
    d_hh = np.concatenate([da_r, da_z, dh_n], axis=1)  # (B, 3H): grads of W_hh h + b_hh
    dparams = {"weight_ih": d_ih.T @ cache["x"], "weight_hh": d_hh.T @ h_prev}
    dparams.update(_bias_grads(p, d_ih, d_hh))
    return d_ih @ p["weight_ih"], dh * z + d_hh @ p["weight_hh"], dparams
