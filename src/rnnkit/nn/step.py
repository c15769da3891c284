"""The fast path of ``step()``: one streaming time step without autograd.

``RNN``, ``LSTM`` and ``GRU`` (``rnnkit.nn.recurrent``) run ``step()`` by one of
two paths, as ``forward()`` does:

- the **explicit step** calls the module's ``cell()`` per layer: the equations of
  ``rnnkit.nn.cells``, readable, differentiable, the twin this path is checked against;
- the **fast step** (this module) runs when no gradient is recorded
  (``torch.no_grad()`` or ``torch.inference_mode()``), the cell is the built-in one
  and ``fast_path`` is on. It computes the same equations with less work per step.

At B=1 a step is a matrix-vector product plus a dozen tiny element-wise kernels, so
the fixed cost of each torch call (a few microseconds) matters as much as the
arithmetic. What the fast step does differently, and why:

- the weights are laid out once, then reused: ``W_ih^T`` and ``W_hh^T`` transposed
  and contiguous (the row-major ``x @ W`` product was the faster matrix-vector
  product in torch here), LSTM gate columns reordered i, f, o, g so the three
  sigmoids are one kernel, and LSTM/RNN biases folded (``b_ih + b_hh``) once
  instead of once per step. The cached copy is keyed by each parameter's identity,
  storage address and version counter (which every in-place change bumps:
  optimizer steps, ``load_state_dict``), so a change to the parameters is seen at
  the next step; ``.to()`` and ``.data =`` change the address;
- two ``addmm`` calls per layer (``b + x W_ih^T``, then ``+= h W_hh^T``) rather than
  one product of the concatenation ``[x, h]``: the concatenation costs a copy per
  step and measured no faster at D=256, H=512 (the product reads the same weights);
- gate buffers allocated once (per thread and batch size) with their slices made
  once, activations in place on them, results written with ``out=`` straight into
  the fresh state tensors (L, B, ·): no allocation of temporaries and no
  ``torch.stack`` per step;
- no per-step ``getattr`` of the module's parameters (``nn.Module.__getattr__`` is
  slow next to a dict lookup).

The results equal the explicit step's up to float rounding (the products are
summed in another order), checked in ``tests/nn/test_step.py``. The returned state
tensors and the output are new every step (a caller may keep earlier states, as
beam search does); the cached weights are only read and the gate buffers belong
to one thread, so concurrent calls from several threads are safe.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor

if TYPE_CHECKING:  # rnnkit.nn.recurrent imports this module
    from rnnkit.nn.recurrent import _Recurrent

__all__ = ["StepWeights", "fast_step", "step_weights"]


class LayerWeights(NamedTuple):
    """One layer's weights laid out for the fast step (see the module docstring)."""

    w_ih: Tensor  # (D_l, G) = W_ih^T, contiguous; LSTM gate columns i, f, o, g
    w_hh: Tensor  # (P or H, G) = W_hh^T
    b: Tensor  # (G,): b_ih + b_hh (RNN, LSTM) or b_ih (GRU); zeros without bias
    b_hh: Tensor | None  # (G,) GRU only: b_hh, added to h W_hh^T before the reset gate
    w_hr: Tensor | None  # (H, P) = W_hr^T, LSTM with proj_size only


class StepWeights:
    """All layers' weights for the fast step, what they were built from, and scratch buffers."""

    __slots__ = ("layers", "local", "source")

    def __init__(
        self,
        layers: tuple[LayerWeights, ...],
        source: tuple[tuple[str, Tensor, int, int, Tensor], ...],
    ) -> None:
        self.layers = layers
        # (name, parameter, storage address, version, alias) per parameter: to detect changes.
        self.source = source
        # Gate buffers per thread (one batch size at a time): concurrent steps never share.
        self.local = threading.local()

    def buffers(self, mode: str, B: int) -> tuple[Tensor, ...]:
        """This thread's gate buffers for batch size B, and their views (made once)."""
        buf = getattr(self.local, "buf", None)
        if buf is not None and buf[0].size(0) == B:
            return buf
        w = self.layers[0].w_ih
        G = w.size(1)
        H = G // 4 if mode == "lstm" else G // 3
        with torch.inference_mode(False), torch.no_grad():
            if mode == "lstm":  # (RNN needs none: it writes into the new state)
                gates = w.new_empty(B, G)  # (B, 4H), gate columns i, f, o, g
                ifo, g = gates.split([3 * H, H], 1)
                buf = (gates, ifo, g, *ifo.chunk(3, 1), w.new_empty(B, H))
            else:
                gx, gh = w.new_empty(B, G), w.new_empty(B, G)  # (B, 3H) each, r, z, n
                rz, x_n = gx.split([2 * H, H], 1)
                gh_rz, h_n = gh.split([2 * H, H], 1)
                buf = (gx, gh, rz, gh_rz, *rz.chunk(2, 1), x_n, h_n)
        self.local.buf = buf
        return buf


# Built weights per module, held weakly: a module that goes away takes its copy along,
# and pickling or deep-copying a module does not carry the copy.
_CACHE: weakref.WeakKeyDictionary[_Recurrent, StepWeights] = weakref.WeakKeyDictionary()


def _lstm_columns(H: int, device: torch.device) -> Tensor:
    """Gate rows i, f, g, o (torch.nn's order) reordered to i, f, o, g: (4H,) indices."""
    i_f = torch.arange(0, 2 * H, device=device)
    return torch.cat([i_f, torch.arange(3 * H, 4 * H, device=device), i_f[:H] + 2 * H])


def _build(module: _Recurrent) -> StepWeights:
    params = module._parameters
    layers = []
    source = []
    lstm = module._mode == "lstm"
    gru = module._mode == "gru"
    for layer in range(module.num_layers):
        names = module._names[layer]  # CellParams' order: w_ih, w_hh, b_ih, b_hh, w_hr
        w_ih, w_hh, b_ih, b_hh, w_hr = (params[n] if n else None for n in names)
        for n in names:
            if n:
                p = params[n]
                # p.detach() keeps this storage alive, so its address cannot be reused by
                # a later ``p.data = ...`` while these weights are cached.
                source.append((n, p, p.data_ptr(), p._version, p.detach()))
        assert w_ih is not None and w_hh is not None
        G = w_ih.size(0)
        cols = _lstm_columns(module.hidden_size, w_ih.device) if lstm else None

        def cols_t(w: Tensor, cols: Tensor | None = cols) -> Tensor:
            w = w if cols is None else w.index_select(0, cols)
            return w.t().contiguous()  # (in, G)

        if b_ih is None or b_hh is None:
            b = w_ih.new_zeros(G)
            layer_b_hh = w_ih.new_zeros(G) if gru else None
        elif gru:
            b, layer_b_hh = b_ih.clone(), b_hh.clone()
        else:
            b = b_ih + b_hh
            b = b if cols is None else b.index_select(0, cols)
            layer_b_hh = None
        layers.append(
            LayerWeights(
                w_ih=cols_t(w_ih),
                w_hh=cols_t(w_hh),
                b=b,
                b_hh=layer_b_hh,
                w_hr=None if w_hr is None else w_hr.t().contiguous(),
            )
        )
    return StepWeights(tuple(layers), tuple(source))


def _current(weights: StepWeights, params: dict[str, Tensor | None]) -> bool:
    """Whether ``weights`` were built from the parameters as they are now."""
    for name, p, ptr, version, _ in weights.source:
        q = params[name]
        if q is not p or q._version != version or q.data_ptr() != ptr:
            return False
    return True


def step_weights(module: _Recurrent) -> StepWeights:
    """The module's weights laid out for the fast step; rebuilt when a parameter changed."""
    weights = _CACHE.get(module)
    if weights is None or not _current(weights, module._parameters):
        # Plain tensors, whatever mode the caller is in: a cache built under
        # inference_mode must still be usable under no_grad, and never records a graph.
        with torch.inference_mode(False), torch.no_grad():
            weights = _build(module)
        _CACHE[module] = weights
    return weights


def fast_step(
    module: _Recurrent, x: Tensor, hx: tuple[Tensor, ...]
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """One step of every layer without autograd: ``x`` (B, D), ``hx`` (L, B, ·) tensors.

    Returns ``(y, final)``: y (B, P or H), the last layer's new h; ``final`` the new
    state tensors (L, B, ·), freshly allocated. Call it under ``torch.no_grad()``
    or ``torch.inference_mode()``, with a built-in cell (``step()`` checks both).
    """
    weights = step_weights(module)
    mode = module._vf_name()  # lstm, gru, rnn_tanh or rnn_relu
    h_in = hx[0].unbind(0)  # L x (B, P or H)
    h_new = x.new_empty(*hx[0].shape)  # (L, B, P or H), new every step (ints: faster)
    h_out = h_new.unbind(0)
    if mode == "lstm":
        # Views of one (B, 4H) buffer (columns i, f, o, g) and a (B, H) one.
        gates, ifo, g, i, f, o, tanh_c = weights.buffers(mode, x.size(0))
        c_in = hx[1].unbind(0)  # L x (B, H)
        c_new = x.new_empty(*hx[1].shape)
        c_out = c_new.unbind(0)
        for layer, w in enumerate(weights.layers):
            torch.addmm(w.b, x, w.w_ih, out=gates)  # x W_ih^T + b_ih + b_hh
            gates.addmm_(h_in[layer], w.w_hh)  # + h W_hh^T
            ifo.sigmoid_()  # i, f, o in one kernel
            g.tanh_()
            c = torch.mul(f, c_in[layer], out=c_out[layer])  # c' = f c + i g
            c.addcmul_(i, g)
            if w.w_hr is None:
                torch.mul(o, torch.tanh(c, out=tanh_c), out=h_out[layer])  # h' = o tanh(c')
            else:
                torch.mul(o, torch.tanh(c, out=tanh_c), out=tanh_c)
                torch.mm(tanh_c, w.w_hr, out=h_out[layer])  # (B, P): h' W_hr^T
            x = h_out[layer]
        return x.clone(), (h_new, c_new)  # y must not alias the state a caller may keep
    if mode == "gru":
        # Views of two (B, 3H) buffers: x W_ih^T + b_ih and h W_hh^T + b_hh, columns r, z, n.
        gx, gh, rz, gh_rz, r, z, x_n, h_n = weights.buffers(mode, x.size(0))
        for layer, w in enumerate(weights.layers):
            h = h_in[layer]
            torch.addmm(w.b, x, w.w_ih, out=gx)  # x W_ih^T + b_ih
            torch.addmm(w.b_hh, h, w.w_hh, out=gh)  # h W_hh^T + b_hh
            rz.add_(gh_rz).sigmoid_()  # r, z in one kernel
            h_n.mul_(r).add_(x_n).tanh_()  # n = tanh(x_n + r h_n)
            x = torch.lerp(h_n, h, z, out=h_out[layer])  # (1 - z) n + z h
        return x.clone(), (h_new,)
    relu = mode == "rnn_relu"
    for layer, w in enumerate(weights.layers):
        pre = torch.addmm(w.b, x, w.w_ih, out=h_out[layer])  # x W_ih^T + b_ih + b_hh
        pre.addmm_(h_in[layer], w.w_hh)  # + h W_hh^T
        x = pre.relu_() if relu else pre.tanh_()
    return x.clone(), (h_new,)
