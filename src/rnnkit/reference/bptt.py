"""Whole sequences: forward, hand-written backpropagation through time, truncated BPTT.

Longer than 400 lines: each forward pass sits beside its hand-written backward pass,
which must be read together.

:func:`forward` runs a cell over a batch of sequences and :func:`backward`
propagates gradients back through every step. The step equations are those of
:mod:`rnnkit.reference.functional` (read that file for the maths); this file
computes the same thing fast:

- the input projection ``W_ih x_t + b`` of all steps is one (T*B, D) @ (D, G*H)
  matmul before the time loop, and in backward ``dW_ih``, ``dx`` and
  ``dW_hh`` are one matmul each over the stacked per-step gradients, so the
  loop over time holds only the recurrent matmul and elementwise work;
- every per-step tensor lives in one preallocated time-major (T, B, ...) array,
  so the loop writes into views instead of allocating;
- the dtype of ``x`` is kept: float32 stays float32.

Parameters use torch.nn's names and layouts (one layer, one direction):
``weight_ih`` (G*H, D), ``weight_hh`` (G*H, H), ``bias_ih`` and ``bias_hh``
(G*H,), G = 1, 4 (i, f, g, o) or 3 (r, z, n). Missing biases mean none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = [
    "KINDS",
    "SequenceCache",
    "TBPTTChunk",
    "forward",
    "backward",
    "hidden_gradients",
    "truncated_bptt",
    "clip_grad_norm",
]

KINDS: tuple[str, ...] = ("rnn", "lstm", "gru")
_GATES = {"rnn": 1, "lstm": 4, "gru": 3}

Params = dict[str, np.ndarray]
State = np.ndarray | tuple[np.ndarray, np.ndarray]


@dataclass
class SequenceCache:
    """What :func:`backward` needs from :func:`forward`. Time-major arrays.

    Attributes:
        kind: "rnn", "lstm" or "gru".
        nonlinearity: "tanh" or "relu" (rnn only).
        params: the parameters used, cast to the dtype of ``x``.
        x: the input, (T, B, D).
        h: hidden states, (T+1, B, H); ``h[0]`` is the initial state.
        acts: activated gates, (T, B, G*H): lstm [i, f, g, o], gru [r, z, n]; None for rnn.
        c: lstm cell states, (T+1, B, H); ``c[0]`` is the initial cell state.
        tanh_c: lstm ``tanh(c_t)``, (T, B, H).
        h_n: gru hidden projection of the candidate, ``W_hn h_{t-1} + b_hn``, (T, B, H).
    """

    kind: str
    nonlinearity: str
    params: Params
    x: np.ndarray
    h: np.ndarray
    acts: np.ndarray | None = None
    c: np.ndarray | None = None
    tanh_c: np.ndarray | None = None
    h_n: np.ndarray | None = None


# ----------------------------------------------------------------- validation


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, KINDS))}, got {kind!r}")


def _prepare(
    kind: str, x: np.ndarray, params: Mapping[str, np.ndarray], state: State | None
) -> tuple[np.ndarray, Params, np.ndarray, np.ndarray | None]:
    """Validate the inputs; return x, params cast to x's dtype, h0 and c0 (lstm)."""
    _check_kind(kind)
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x must have shape (B, T, D), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"x must be a float array (float32 or float64), got dtype {x.dtype}")
    B, T, D = x.shape
    if T < 1:
        raise ValueError(f"x must have at least one time step, got shape {x.shape}")
    for key in ("weight_ih", "weight_hh"):
        if key not in params:
            raise ValueError(f"params is missing {key!r}; expected keys {sorted(params)}")
    unknown = sorted(set(params) - {"weight_ih", "weight_hh", "bias_ih", "bias_hh"})
    if unknown:
        raise ValueError(
            f"params has unknown keys {unknown}; expected weight_ih, weight_hh, bias_ih, bias_hh"
        )
    p: Params = {k: np.asarray(v, dtype=x.dtype) for k, v in params.items() if v is not None}
    G = _GATES[kind]
    H = p["weight_hh"].shape[-1]
    expected = {"weight_ih": (G * H, D), "weight_hh": (G * H, H)}
    expected.update({"bias_ih": (G * H,), "bias_hh": (G * H,)})
    for key, shape in expected.items():
        if key in p and p[key].shape != shape:
            raise ValueError(
                f"{kind} {key} must have shape {shape} for input size {D} and hidden size "
                f"{H}, got {p[key].shape}"
            )

    def _state(s: np.ndarray, name: str) -> np.ndarray:
        s = np.asarray(s, dtype=x.dtype)
        if s.shape != (B, H):
            raise ValueError(f"{name} must have shape (B, H) = {(B, H)}, got {s.shape}")
        return s

    if state is None:
        h0 = np.zeros((B, H), dtype=x.dtype)
        c0 = np.zeros((B, H), dtype=x.dtype) if kind == "lstm" else None
    elif kind == "lstm":
        if not isinstance(state, tuple | list) or len(state) != 2:
            raise ValueError("lstm state must be a tuple (h0, c0) of (B, H) arrays")
        h0, c0 = _state(state[0], "h0"), _state(state[1], "c0")
    else:
        if isinstance(state, tuple | list):
            raise ValueError(f"{kind} state must be one (B, H) array h0, not a tuple")
        h0, c0 = _state(state, "h0"), None
    return x, p, h0, c0


def _sigmoid_(a: np.ndarray) -> np.ndarray:
    """In place: ``a <- sigmoid(a) = (1 + tanh(a/2)) / 2`` (never overflows)."""
    a *= 0.5
    np.tanh(a, out=a)
    a += 1.0
    a *= 0.5
    return a


# -------------------------------------------------------------------- forward


def forward(
    kind: str,
    x: np.ndarray,
    params: Mapping[str, np.ndarray],
    state: State | None = None,
    *,
    nonlinearity: str = "tanh",
) -> tuple[np.ndarray, State, SequenceCache]:
    """Run one layer of ``kind`` over whole sequences.

    Args:
        kind: "rnn", "lstm" or "gru".
        x: inputs, (B, T, D), float32 or float64; the result keeps this dtype.
        params: ``weight_ih``, ``weight_hh`` (and optionally ``bias_ih``, ``bias_hh``) in
            torch.nn layout.
        state: initial state, h0 (B, H), or (h0, c0) for lstm; zeros if None.
        nonlinearity: "tanh" or "relu" (rnn only, like torch.nn.RNN).

    Returns:
        ``(outputs (B, T, H), final_state, cache)``; ``final_state`` is h_T (B, H) or
        (h_T, c_T) for lstm, and ``cache`` feeds :func:`backward`.
    """
    x, p, h0, c0 = _prepare(kind, x, params, state)
    if kind == "rnn" and nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    B, T, D = x.shape
    H = h0.shape[1]
    xt = np.ascontiguousarray(x.transpose(1, 0, 2))  # (T, B, D): time-major, steps contiguous
    # Hoisted input projection of every step: (T*B, D) @ (D, G*H) -> (T, B, G*H).
    proj = (xt.reshape(T * B, D) @ p["weight_ih"].T).reshape(T, B, -1)
    if "bias_ih" in p:
        proj += p["bias_ih"]
    w_hh_t = p["weight_hh"].T  # (H, G*H)
    b_hh = p.get("bias_hh")
    hs = np.empty((T + 1, B, H), dtype=x.dtype)
    hs[0] = h0
    cache = SequenceCache(kind=kind, nonlinearity=nonlinearity, params=p, x=xt, h=hs)

    if kind == "rnn":
        if b_hh is not None:
            proj += b_hh
        act = np.tanh if nonlinearity == "tanh" else (lambda a, out: np.maximum(a, 0, out=out))
        for t in range(T):
            a = proj[t]  # (B, H) pre-activation, in place
            a += hs[t] @ w_hh_t
            act(a, out=hs[t + 1])
        final: State = hs[T].copy()

    elif kind == "lstm":
        if b_hh is not None:
            proj += b_hh  # both biases enter every gate additively
        cs = np.empty((T + 1, B, H), dtype=x.dtype)
        cs[0] = c0
        tanh_c = np.empty((T, B, H), dtype=x.dtype)
        for t in range(T):
            a = proj[t]  # (B, 4H): becomes the activated gates [i, f, g, o] in place
            a += hs[t] @ w_hh_t
            _sigmoid_(a[:, : 2 * H])  # i, f
            np.tanh(a[:, 2 * H : 3 * H], out=a[:, 2 * H : 3 * H])  # g
            _sigmoid_(a[:, 3 * H :])  # o
            i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
            np.multiply(f, cs[t], out=cs[t + 1])
            cs[t + 1] += i * g  # c_t = f * c_{t-1} + i * g
            np.tanh(cs[t + 1], out=tanh_c[t])
            np.multiply(o, tanh_c[t], out=hs[t + 1])  # h_t = o * tanh(c_t)
        cache.acts, cache.c, cache.tanh_c = proj, cs, tanh_c
        final = (hs[T].copy(), cs[T].copy())

    else:  # gru
        h_n = np.empty((T, B, H), dtype=x.dtype)
        for t in range(T):
            a = proj[t]  # (B, 3H): x-projections [x_r, x_z, x_n], become [r, z, n] in place
            gh = hs[t] @ w_hh_t  # (B, 3H): [h_r, h_z, h_n]
            if b_hh is not None:
                gh += b_hh
            rz = a[:, : 2 * H]
            rz += gh[:, : 2 * H]
            _sigmoid_(rz)  # r, z
            r, z, n = a[:, :H], a[:, H : 2 * H], a[:, 2 * H :]
            h_n[t] = gh[:, 2 * H :]
            n += r * h_n[t]  # reset applied after the hidden matmul (torch.nn / cuDNN)
            np.tanh(n, out=n)
            # h_t = (1 - z) * n + z * h_{t-1} = n + z * (h_{t-1} - n)
            np.subtract(hs[t], n, out=hs[t + 1])
            hs[t + 1] *= z
            hs[t + 1] += n
        cache.acts, cache.h_n = proj, h_n
        final = hs[T].copy()

    outputs = np.ascontiguousarray(hs[1:].transpose(1, 0, 2))  # (T, B, H) -> (B, T, H)
    return outputs, final, cache


# ------------------------------------------------------------------- backward


def _backward(
    d_outputs: np.ndarray | None,
    cache: SequenceCache,
    d_final_state: State | None,
    keep_dh: bool,
) -> tuple[np.ndarray, Params, State, np.ndarray | None]:
    """BPTT; also returns dL/dh_t for every t, (T, B, H), when ``keep_dh``."""
    kind, p, xt, hs = cache.kind, cache.params, cache.x, cache.h
    T, B, D = xt.shape
    H = hs.shape[2]
    dtype = xt.dtype
    if d_outputs is not None:
        d_outputs = np.asarray(d_outputs, dtype=dtype)
        if d_outputs.shape != (B, T, H):
            raise ValueError(
                f"d_outputs must have the outputs' shape (B, T, H) = {(B, T, H)}, "
                f"got {d_outputs.shape}"
            )
        dout = d_outputs.transpose(1, 0, 2)  # (T, B, H) view
    else:
        dout = None

    def _grad(g: np.ndarray | None, name: str) -> np.ndarray:
        if g is None:
            return np.zeros((B, H), dtype=dtype)
        g = np.array(g, dtype=dtype)  # a copy: it is accumulated into in place
        if g.shape != (B, H):
            raise ValueError(f"{name} must have shape (B, H) = {(B, H)}, got {g.shape}")
        return g

    if kind == "lstm":
        if d_final_state is not None and (
            not isinstance(d_final_state, tuple | list) or len(d_final_state) != 2
        ):
            raise ValueError("lstm d_final_state must be a tuple (dh_T, dc_T); entries may be None")
        dh_T, dc_T = d_final_state if d_final_state is not None else (None, None)
        dh, dc = _grad(dh_T, "dh_T"), _grad(dc_T, "dc_T")
    else:
        if isinstance(d_final_state, tuple | list):
            raise ValueError(f"{kind} d_final_state must be one (B, H) array, not a tuple")
        dh = _grad(d_final_state, "d_final_state")
    dh_all = np.empty((T, B, H), dtype=dtype) if keep_dh else None
    w_hh = p["weight_hh"]  # (G*H, H)
    # Gradients of the pre-activations: w.r.t. W_ih x + b_ih (d_ih) and W_hh h + b_hh (d_hh);
    # they differ only for the gru's candidate, where r multiplies the hidden part.
    d_ih = np.empty((T, B, _GATES[kind] * H), dtype=dtype)
    d_hh = d_ih

    if kind == "rnn":
        for t in range(T - 1, -1, -1):
            if dout is not None:
                dh += dout[t]
            if dh_all is not None:
                dh_all[t] = dh
            h = hs[t + 1]
            if cache.nonlinearity == "tanh":
                np.multiply(dh, 1 - h * h, out=d_ih[t])
            else:
                np.multiply(dh, h > 0, out=d_ih[t])
            dh = d_ih[t] @ w_hh
        d_state0: State = dh

    elif kind == "lstm":
        acts, cs, tanh_c = cache.acts, cache.c, cache.tanh_c
        for t in range(T - 1, -1, -1):
            if dout is not None:
                dh += dout[t]
            if dh_all is not None:
                dh_all[t] = dh
            a, da = acts[t], d_ih[t]  # (B, 4H) each
            i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
            tc = tanh_c[t]
            dc += dh * o * (1 - tc * tc)  # through h_t = o * tanh(c_t)
            np.multiply(dh * tc, o * (1 - o), out=da[:, 3 * H :])  # a_o
            np.multiply(dc * g, i * (1 - i), out=da[:, :H])  # a_i
            np.multiply(dc * cs[t], f * (1 - f), out=da[:, H : 2 * H])  # a_f
            np.multiply(dc * i, 1 - g * g, out=da[:, 2 * H : 3 * H])  # a_g
            dc *= f  # dc_{t-1}
            dh = da @ w_hh
        d_state0 = (dh, dc)

    else:  # gru
        acts, h_n = cache.acts, cache.h_n
        d_hh = np.empty_like(d_ih)
        for t in range(T - 1, -1, -1):
            if dout is not None:
                dh += dout[t]
            if dh_all is not None:
                dh_all[t] = dh
            a, dx_, dh_ = acts[t], d_ih[t], d_hh[t]  # (B, 3H) each
            r, z, n = a[:, :H], a[:, H : 2 * H], a[:, 2 * H :]
            da_n = dx_[:, 2 * H :]
            np.multiply(dh * (1 - z), 1 - n * n, out=da_n)  # through n = tanh(...)
            np.multiply(da_n, r, out=dh_[:, 2 * H :])  # d(W_hn h + b_hn)
            np.multiply(da_n * h_n[t], r * (1 - r), out=dx_[:, :H])  # a_r
            np.multiply(dh * (hs[t] - n), z * (1 - z), out=dx_[:, H : 2 * H])  # a_z
            dh_[:, : 2 * H] = dx_[:, : 2 * H]
            dh = dh * z + dh_ @ w_hh
        d_state0 = dh

    # All steps at once: (T*B, G*H)^T @ (T*B, D or H) -> (G*H, D or H).
    d_ih2 = d_ih.reshape(T * B, -1)  # (T*B, G*H)
    d_hh2 = d_hh.reshape(T * B, -1)  # (T*B, G*H)
    dparams: Params = {
        "weight_ih": d_ih2.T @ xt.reshape(T * B, D),
        "weight_hh": d_hh2.T @ hs[:-1].reshape(T * B, H),
    }
    if "bias_ih" in p:
        dparams["bias_ih"] = d_ih2.sum(axis=0)
    if "bias_hh" in p:
        dparams["bias_hh"] = d_hh2.sum(axis=0)
    dx = (d_ih2 @ p["weight_ih"]).reshape(T, B, D)  # (T, B, D)
    dx = np.ascontiguousarray(dx.transpose(1, 0, 2))  # (B, T, D)
    return dx, dparams, d_state0, dh_all


def backward(
    kind: str,
    d_outputs: np.ndarray | None,
    cache: SequenceCache,
    d_final_state: State | None = None,
) -> tuple[np.ndarray, Params, State]:
    """Backpropagation through time for a :func:`forward` call.

    Args:
        kind: the kind given to :func:`forward` (checked against the cache).
        d_outputs: dL/d outputs, (B, T, H), or None for zeros.
        cache: the cache returned by :func:`forward`.
        d_final_state: dL/d final state: dh_T (B, H), or (dh_T, dc_T) for lstm (either
            entry may be None); None when the loss does not use the final state.

    Returns:
        ``(dx (B, T, D), dparams, d_state0)``: ``dparams`` has the keys of the params
        given to :func:`forward`; ``d_state0`` is dL/dh0 (B, H), or (dL/dh0, dL/dc0) for
        lstm (returned even when forward started from zeros).
    """
    _check_kind(kind)
    if kind != cache.kind:
        raise ValueError(f"kind {kind!r} does not match the cache, made by {cache.kind!r}")
    dx, dparams, d_state0, _ = _backward(d_outputs, cache, d_final_state, keep_dh=False)
    return dx, dparams, d_state0


def hidden_gradients(
    kind: str,
    d_outputs: np.ndarray | None,
    cache: SequenceCache,
    d_final_state: State | None = None,
) -> np.ndarray:
    """dL/dh_t for every step t, (B, T, H): the total gradient reaching each hidden state.

    It includes every path from h_t to the loss (for lstm, also through later cell
    states). Its norm over t is how far back a loss signal travels; see
    ``rnnkit gradients``.
    """
    _check_kind(kind)
    if kind != cache.kind:
        raise ValueError(f"kind {kind!r} does not match the cache, made by {cache.kind!r}")
    dh_all = _backward(d_outputs, cache, d_final_state, keep_dh=True)[3]
    return np.ascontiguousarray(dh_all.transpose(1, 0, 2))  # (T, B, H) -> (B, T, H)


# ----------------------------------------------------------- truncated BPTT


class TBPTTChunk(NamedTuple):
    """One chunk of :func:`truncated_bptt`.

    Attributes:
        start, stop: the time steps ``x[:, start:stop]`` of this chunk.
        loss: the value returned by ``loss_fn`` for this chunk.
        grads: gradients of the cell's parameters from this chunk alone.
        outputs: the chunk's outputs, (B, stop - start, H).
        state: the final state, carried (detached) into the next chunk.
    """

    start: int
    stop: int
    loss: float
    grads: Params
    outputs: np.ndarray
    state: State


def truncated_bptt(
    kind: str,
    x: np.ndarray,
    params: Mapping[str, np.ndarray],
    chunk_length: int,
    loss_fn: Callable[[np.ndarray, int, int], tuple[float, np.ndarray]],
    state: State | None = None,
    *,
    nonlinearity: str = "tanh",
) -> Iterator[TBPTTChunk]:
    """Truncated BPTT over a long stream, chunk by chunk, with the state carried.

    For each chunk ``x[:, start:stop]``: run :func:`forward` from the state the
    previous chunk ended in, call ``loss_fn(outputs, start, stop) -> (loss,
    d_outputs)``, and run :func:`backward` with no gradient into the final state.
    The state is carried forward but *detached*: no gradient flows from one chunk
    into the one before (Williams & Peng 1990; what ``state.detach()`` does in torch).

    This is a generator: the parameters are read when each chunk starts, so an
    optimizer step taken on ``params`` between chunks is used by the next chunk.

    Args:
        x: the stream, (B, T_total, D).
        chunk_length: steps per chunk (> 0); the last chunk may be shorter.
        loss_fn: maps the chunk outputs (B, t, H) and the chunk bounds to the loss
            and its gradient with respect to the outputs.
    """
    _check_kind(kind)
    if chunk_length < 1:
        raise ValueError(f"chunk_length must be >= 1, got {chunk_length}")
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x must have shape (B, T, D), got shape {x.shape}")
    for start in range(0, x.shape[1], chunk_length):
        stop = min(start + chunk_length, x.shape[1])
        outputs, final, cache = forward(
            kind, x[:, start:stop], params, state, nonlinearity=nonlinearity
        )
        loss, d_outputs = loss_fn(outputs, start, stop)
        _, grads, _ = backward(kind, d_outputs, cache)  # final state detached: no dL/dh_T
        yield TBPTTChunk(start, stop, float(loss), grads, outputs, final)
        state = final


# ------------------------------------------------------------------ clipping


def clip_grad_norm(
    grads: Mapping[str, np.ndarray] | Sequence[np.ndarray], max_norm: float
) -> float:
    """Scale gradients in place so their global L2 norm is at most ``max_norm``.

    Like ``torch.nn.utils.clip_grad_norm_``: the norm is taken over all arrays
    together, and if it exceeds ``max_norm`` every array is multiplied by
    ``max_norm / (norm + 1e-6)``, which keeps the update's direction.

    Returns:
        The global norm before clipping.
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm}")
    arrays = list(grads.values()) if isinstance(grads, Mapping) else list(grads)
    total = float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in arrays)))
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in arrays:
            g *= coef
    return total
