"""The export twin of an ``rnnkit.nn`` sequence module: the same function, written for ONNX.

``rnnkit.nn`` modules run a sequence either through torch's fused kernels
(``torch._VF.lstm`` & co.) or through a Python loop over time. Neither
exports with a dynamic time axis: ``torch.export`` decomposes the fused
kernels into a loop of fixed length (it specialises T to the example's), and
a Python loop is unrolled. :class:`ExportRecurrent` computes the same
function with torch's ``scan`` higher-order operator, which ``torch.onnx``
turns into one ONNX ``Scan`` node per layer, so batch and time stay dynamic.

It reuses the wrapped module's own equations and parameters (``_project``,
``cell``, ``coefficients``, ``layer_params``): nothing is copied, and a cell
a subclass overrides is exported as written. It covers every layer, both
directions, LSTM ``proj_size``, and ``lengths`` (a sequence's state is frozen
past its length, the reverse direction starts at each sequence's own last
step, the outputs there are zero), exactly as ``forward`` does. MinGRU and
MinLSTM run their plain sequential equations (``h_t = a_t * h_{t-1} + b_t``)
rather than the log-space parallel scan: the same numbers to float32
rounding, with no ``logcumsumexp`` (which ONNX lacks).

Inputs are always batch-first, (B, T, D). Shape letters: B batch, T time,
D input features, H hidden features, P output features per direction (LSTM
``proj_size`` or H), L layers, G = gates * H.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils._pytree import tree_map

from rnnkit.errors import UserError
from rnnkit.nn.mingru import MinGRU, MinLSTM
from rnnkit.nn.recurrent import GRU, LSTM, RNN

__all__ = ["EXPORTABLE", "ExportRecurrent", "state_names", "state_shapes"]

EXPORTABLE: tuple[type[nn.Module], ...] = (RNN, LSTM, GRU, MinGRU, MinLSTM)


def check_exportable(module: object) -> nn.Module:
    """``module`` if it is an rnnkit.nn sequence module, else a one-line UserError."""
    if not isinstance(module, EXPORTABLE):
        hint = ""
        if isinstance(module, nn.RNNBase):
            hint = (
                f" (load its state dict into rnnkit.nn.{type(module).__name__}: "
                "the parameter names are the same)"
            )
        raise UserError(
            "export_module takes an rnnkit.nn RNN, LSTM, GRU, MinGRU or MinLSTM, "
            f"got {type(module).__module__}.{type(module).__name__}{hint}"
        )
    return module


def state_names(module: nn.Module) -> tuple[str, ...]:
    """The state tensors of ``module``: ``("h", "c")`` for LSTM, else ``("h",)``."""
    return ("h", "c") if isinstance(module, LSTM) else ("h",)


def state_shapes(module: nn.Module) -> dict[str, tuple[int | str, ...]]:
    """Shapes of the state tensors, (L*dirs, "batch", features) each."""
    if isinstance(module, (MinGRU, MinLSTM)):
        return {"h": (module.num_layers, "batch", module.hidden_size)}
    LD = module.num_layers * module.num_directions
    sizes = module._state_sizes()
    return {n: (LD, "batch", s) for n, s in zip(state_names(module), sizes, strict=True)}


def _scan(body: Any, init: tuple[Tensor, ...], xs: tuple[Tensor, ...]) -> tuple[Any, Any]:
    """``(final carry, stacked outputs)`` of ``body`` over dim 0 of ``xs``.

    Under ``torch.export`` this is torch's ``scan`` operator (a prototype API,
    imported here only), which becomes one ONNX ``Scan``; run eagerly it is the
    same loop in Python (torch's eager scan would compile the body first).
    """
    if not torch.compiler.is_exporting():
        carry, outs = init, []
        for t in range(xs[0].size(0)):
            carry, y = body(carry, tuple(x[t] for x in xs))
            outs.append(y)
        return carry, tree_map(lambda *ys: torch.stack(ys), *outs)
    from torch._higher_order_ops.scan import scan

    # scan refuses inputs that alias each other (e.g. two layers' rows of one state
    # tensor): give it its own copies.
    return scan(body, tuple(t.clone() for t in init), tuple(t.clone() for t in xs))


def _reverse(x: Tensor, rev: Tensor | None) -> Tensor:
    """(B, T, ·) reversed in time, each row within its own length when ``rev`` is given."""
    if rev is None:
        return x.flip(1)
    return x.gather(1, rev.unsqueeze(-1).expand_as(x))


class ExportRecurrent(nn.Module):
    """``forward(x, state=None, lengths=None) -> (output, state)`` and ``step`` of ``module``,
    in a form ``torch.onnx.export`` turns into ONNX ``Scan`` nodes (see the module doc).

    The state has the wrapped module's structure: a tensor (L*dirs, B, P), or
    ``(h, c)`` for LSTM. ``module`` is shared, not copied.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = check_exportable(module)
        self.minimal = isinstance(module, (MinGRU, MinLSTM))

    @property
    def bidirectional(self) -> bool:
        return bool(getattr(self.module, "bidirectional", False))

    def forward(
        self, x: Tensor, state: Any = None, lengths: Tensor | None = None
    ) -> tuple[Tensor, Any]:
        """x (B, T, D), state as the module's (None: zeros), lengths (B,) int64 or None.

        Returns ``(output (B, T, dirs*P), final state)``, as the module's ``forward``.
        """
        m = self.module
        T = x.size(1)
        valid = rev = None
        if lengths is not None:
            t = torch.arange(T, device=x.device)
            valid = t[None, :] < lengths[:, None]  # (B, T): True at real steps
            if self.bidirectional:
                # Reverse each row within its length, padding left in place (an involution).
                rev = torch.where(valid, lengths[:, None] - 1 - t, t)  # (B, T)
        hx = self._initial(x, state, m.num_layers * (2 if self.bidirectional else 1))
        if self.bidirectional:
            y, final = self._bidirectional(x, hx, valid, rev)
        else:
            y, final = self._unidirectional(x, hx, valid)
        if valid is not None:
            y = y * valid.unsqueeze(-1).to(y.dtype)  # zero the padding
        return y, self._public(final)

    def step(self, x_t: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """One time step, x_t (B, D) -> (y_t (B, P), state): every layer's equations once.

        The module's own ``cell`` (or ``coefficients``) per layer, as its explicit
        ``step`` runs them; not its fast step, whose cached weight layouts are for
        eager torch and mean nothing to a graph.
        """
        if self.bidirectional:
            raise UserError(
                "step() needs a unidirectional module: the reverse direction reads the "
                "sequence from its end"
            )
        hx = self._initial(x_t, state, self.module.num_layers)
        parts = len(hx)
        x, finals = x_t, []
        for layer in range(self.module.num_layers):
            s = self._layer_step(layer, 0, x, tuple(h[layer] for h in hx))
            finals.append(s)
            x = s[0]  # (B, P): the next layer's input
        final = tuple(torch.stack([f[k] for f in finals]) for k in range(parts))  # (L, B, ·)
        return x, self._public(final)

    # -- pieces -----------------------------------------------------------------

    def _initial(self, x: Tensor, state: Any, LD: int) -> tuple[Tensor, ...]:
        """The state as a tuple of (L*dirs, B, ·) tensors; zeros when None."""
        if state is not None:
            return tuple(state) if isinstance(state, (tuple, list)) else (state,)
        m = self.module
        sizes = (m.hidden_size,) if self.minimal else m._state_sizes()
        return tuple(x.new_zeros(LD, x.size(0), n) for n in sizes)

    @staticmethod
    def _public(parts: tuple[Tensor, ...]) -> Any:
        return parts if len(parts) > 1 else parts[0]  # LSTM: (h, c)

    def _project(self, layer: int, d: int, x: Tensor) -> tuple[Tensor, Any]:
        """The input projection (..., in) -> (..., G), and the parameters ``cell`` takes."""
        m = self.module
        if self.minimal:
            w, b = m.layer_params(layer)
            return F.linear(x, w, b), None
        return m._project(x, m.layer_params(layer, d))

    def _layer_step(
        self,
        layer: int,
        d: int,
        x: Tensor | None,
        old: tuple[Tensor, ...],
        proj: Tensor | None = None,
        p: Any = None,
    ) -> tuple[Tensor, ...]:
        """One step of one layer and direction: the new state parts from the input ``x``
        (B, in), or from its projection ``proj`` (B, G) made with parameters ``p``."""
        if proj is None:
            proj, p = self._project(layer, d, x)
        if self.minimal:
            a, b = self.module.coefficients(proj)  # (B, H) each
            return (a * old[0] + b,)  # h_t = a_t * h_{t-1} + b_t
        s = self.module.cell(proj, old if len(old) > 1 else old[0], p)
        return tuple(s) if isinstance(s, tuple) else (s,)

    def _unidirectional(
        self, x: Tensor, hx: tuple[Tensor, ...], valid: Tensor | None
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Every layer in one scan over time; layer 0's projection made for all steps at once."""
        L, n = self.module.num_layers, len(hx)
        proj, p = self._project(0, 0, x)  # (B, T, G)
        xs = (proj.transpose(0, 1),)  # (T, B, G)
        if valid is not None:
            xs += (valid.transpose(0, 1).unsqueeze(-1),)  # (T, B, 1)
        init = tuple(h[layer] for layer in range(L) for h in hx)  # layer-major

        def body(
            carry: tuple[Tensor, ...], inp: tuple[Tensor, ...]
        ) -> tuple[tuple[Tensor, ...], Tensor]:
            new: list[Tensor] = []
            x_t = None
            for layer in range(L):
                old = carry[layer * n : (layer + 1) * n]
                if layer == 0:
                    s = self._layer_step(0, 0, None, old, proj=inp[0], p=p)
                else:
                    s = self._layer_step(layer, 0, x_t, old)
                if len(inp) > 1:  # past a sequence's length its state stays frozen
                    s = tuple(torch.where(inp[1], a, b) for a, b in zip(s, old, strict=True))
                new.extend(s)
                x_t = s[0]
            return tuple(new), x_t.clone()  # scan's outputs must not alias its carry

        last, ys = _scan(body, init, xs)
        final = tuple(torch.stack(last[k::n]) for k in range(n))  # (L, B, ·) each
        return ys.transpose(0, 1), final  # (B, T, P)

    def _bidirectional(
        self, x: Tensor, hx: tuple[Tensor, ...], valid: Tensor | None, rev: Tensor | None
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One scan per layer, both directions in it (the reverse one on reversed input)."""
        n = len(hx)
        finals: list[list[Tensor]] = [[] for _ in range(n)]
        layer_in = x
        for layer in range(self.module.num_layers):
            projs, params, init = [], [], []
            for d in range(2):
                proj, p = self._project(layer, d, layer_in)  # (B, T, G)
                proj = proj if d == 0 else _reverse(proj, rev)
                projs.append(proj.transpose(0, 1))  # (T, B, G)
                params.append(p)
                init.extend(h[2 * layer + d] for h in hx)
            xs = tuple(projs)
            if valid is not None:
                xs += (valid.transpose(0, 1).unsqueeze(-1),)  # (T, B, 1), the same both ways

            def body(
                carry: tuple[Tensor, ...],
                inp: tuple[Tensor, ...],
                layer: int = layer,
                params: list[Any] = params,
            ) -> tuple[tuple[Tensor, ...], tuple[Tensor, Tensor]]:
                new: list[Tensor] = []
                outs = []
                for d in range(2):
                    old = carry[d * n : (d + 1) * n]
                    s = self._layer_step(layer, d, None, old, proj=inp[d], p=params[d])
                    if len(inp) > 2:
                        s = tuple(torch.where(inp[2], a, b) for a, b in zip(s, old, strict=True))
                    new.extend(s)
                    outs.append(s[0].clone())
                return tuple(new), (outs[0], outs[1])

            last, (y_f, y_b) = _scan(body, tuple(init), xs)
            y_b = _reverse(y_b.transpose(0, 1), rev)  # back to time order
            layer_in = torch.cat([y_f.transpose(0, 1), y_b], dim=-1)  # (B, T, 2P)
            for d in range(2):
                for k in range(n):
                    finals[k].append(last[d * n + k])
        return layer_in, tuple(torch.stack(f) for f in finals)  # (2L, B, ·) each
