"""Sequence modules: a cell run over time, with layers, both directions and lengths.

Longer than 400 lines: the fast (fused) and explicit paths of one module stay side by
side, as in transformers' modeling_mamba.py.

``RNN``, ``LSTM`` and ``GRU`` take the arguments of torch.nn.RNN & co. (but
``batch_first=True``), own their parameters under torch.nn's names
(``weight_ih_l0``, ``weight_hh_l1_reverse``, ...), and compute the same
function by one of two paths:

- the **fast path** hands this module's parameters to torch's own fused
  kernel (``torch._VF.lstm`` etc.: cuDNN on CUDA, oneDNN or ATen's loop on
  CPU), exactly as torch.nn.LSTM does (``rnnkit.nn.fused``);
- the **explicit path** runs the cell equations of ``rnnkit.nn.cells`` step
  by step. It is what a subclass with its own ``cell()`` runs, and what
  ``fast_path=False`` forces, to read, to teach and to check the fast path.

``explain_fast_path()`` says which path a module takes and why. ``step()``
runs one time step of a unidirectional module for streaming inference; without
autograd it also has a fast path (``rnnkit.nn.step``) beside its explicit twin.

Shape letters: B batch, T time, D input features, H hidden features, P
projected features (LSTM ``proj_size``), L layers, G = gates * H.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.nn.cells import (
    check_dropout,
    check_input,
    check_lengths,
    check_nonlinearity,
    check_size,
    check_state_shape,
    gru_cell,
    lstm_cell,
    rnn_cell,
)
from rnnkit.nn.fused import describe_kernel, flatten_for_cudnn, fused_forward
from rnnkit.nn.step import fast_step

__all__ = ["GRU", "LSTM", "RNN", "CellParams"]

# A cell's state: a tensor (RNN, GRU) or a tuple of tensors ((h, c) for LSTM).
CellState = Any


class CellParams(NamedTuple):
    """The parameters of one layer in one direction, torch.nn layout."""

    weight_ih: Tensor  # (G, D) or (G, dirs * H) above the first layer
    weight_hh: Tensor  # (G, H) or (G, P)
    bias_ih: Tensor | None  # (G,)
    bias_hh: Tensor | None  # (G,)
    weight_hr: Tensor | None  # (P, H), LSTM with proj_size > 0 only


class _Recurrent(nn.Module):
    """What RNN, LSTM and GRU share: parameters, checks, both paths, ``step``."""

    gates: ClassVar[int]
    _mode: ClassVar[str]  # torch's name for the kernel: torch._VF.<mode>
    fold_bias_hh: ClassVar[bool] = False  # see cell()

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        batch_first: bool = True,
        *,
        proj_size: int = 0,
        fast_path: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.input_size = check_size("input_size", input_size)
        self.hidden_size = check_size("hidden_size", hidden_size)
        self.num_layers = check_size("num_layers", num_layers)
        check_dropout(dropout, num_layers)
        if isinstance(proj_size, bool) or not isinstance(proj_size, int) or proj_size < 0:
            raise ValueError(f"proj_size must be an integer >= 0, got {proj_size!r}")
        if proj_size >= hidden_size:
            raise ValueError(
                f"proj_size must be smaller than hidden_size ({hidden_size}), got {proj_size}"
            )
        for name, flag in (
            ("bias", bias),
            ("bidirectional", bidirectional),
            ("batch_first", batch_first),
            ("fast_path", fast_path),
        ):
            if not isinstance(flag, bool):
                raise ValueError(f"{name} must be True or False, got {flag!r}")
        self.bias = bias
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.batch_first = batch_first
        self.proj_size = proj_size
        self.fast_path = fast_path

        kw = {"device": device, "dtype": dtype}
        G = self.gates * hidden_size
        P = self.output_size
        # Per (layer, direction): the parameter names in CellParams' field order, which
        # is also torch's flat order; None where a parameter is absent.
        self._names: list[tuple[str | None, ...]] = []
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else P * self.num_directions
            for direction in range(self.num_directions):
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = {"weight_ih": (G, layer_in), "weight_hh": (G, P)}
                if bias:
                    shapes |= {"bias_ih": (G,), "bias_hh": (G,)}
                if proj_size:
                    shapes["weight_hr"] = (proj_size, hidden_size)
                for name, shape in shapes.items():
                    self.register_parameter(name + sfx, nn.Parameter(torch.empty(shape, **kw)))
                self._names.append(
                    tuple(f + sfx if f in shapes else None for f in CellParams._fields)
                )
        self.reset_parameters()

    # ----------------------------------------------------------------- basics

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """Features of h per direction: ``proj_size`` if set, else ``hidden_size``."""
        return self.proj_size or self.hidden_size

    def reset_parameters(self) -> None:
        """U(-1/sqrt(H), 1/sqrt(H)) for every parameter, as torch.nn."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def layer_params(self, layer: int, direction: int = 0) -> CellParams:
        """The parameters of one layer and direction (0 forward, 1 reverse)."""
        names = self._names[layer * self.num_directions + direction]
        return CellParams(*(getattr(self, n) if n else None for n in names))

    def _flat_weights(self) -> list[Tensor]:
        """Every parameter in torch.nn's order (what torch's fused kernels take)."""
        return [getattr(self, n) for names in self._names for n in names if n]

    def _state_sizes(self) -> tuple[int, ...]:
        """Features of each state tensor: (H,) or, for LSTM, (P or H, H)."""
        return (self.hidden_size,)

    def _project(self, x: Tensor, p: CellParams) -> tuple[Tensor, CellParams]:
        """The input projection ``x W_ih^T + b_ih`` (..., G) and the parameters for ``cell``.

        With ``fold_bias_hh`` the projection also adds ``b_hh`` and ``cell`` gets
        ``bias_hh=None``: one add per sequence instead of one per step.
        """
        if not (self.fold_bias_hh and p.bias_ih is not None):
            return F.linear(x, p.weight_ih, p.bias_ih), p
        return F.linear(x, p.weight_ih, p.bias_ih + p.bias_hh), p._replace(bias_hh=None)

    def cell(self, x_proj: Tensor, state: CellState, p: CellParams) -> CellState:
        """One step given the input projection ``x W_ih^T + b_ih``; override for a custom cell.

        ``x_proj`` (B, G) already includes ``b_hh`` when the class sets
        ``fold_bias_hh`` (then ``p.bias_hh`` is None): right for cells where
        ``b_hh`` is only added to the pre-activation (RNN, LSTM), not for GRU.
        A subclass that overrides ``cell`` (keeping the state's structure and
        the parameters) runs on the explicit path.
        """
        raise TypeError(f"{type(self).__name__} has no cell(); subclass RNN, LSTM or GRU")

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        defaults = {
            "num_layers": 1,
            "bias": True,
            "dropout": 0.0,
            "bidirectional": False,
            "batch_first": True,
            "proj_size": 0,
            "fast_path": True,
        }
        for name, default in defaults.items():
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)!r}"
        return s

    def flatten_parameters(self) -> None:
        """Lay the parameters out in one buffer as cuDNN wants (a no-op off CUDA).

        The same call torch.nn.LSTM makes; ``.cuda()`` and ``.to()`` call it.
        """
        flatten_for_cudnn(
            self._vf_name(),
            self._flat_weights(),
            bias=self.bias,
            input_size=self.input_size,
            hidden_size=self.hidden_size,
            proj_size=self.proj_size,
            num_layers=self.num_layers,
            batch_first=self.batch_first,
            bidirectional=self.bidirectional,
        )

    def _apply(self, fn: Any, recurse: bool = True) -> _Recurrent:
        module = super()._apply(fn, recurse)
        self.flatten_parameters()
        return module

    # ------------------------------------------------------- which path, why

    def _fast_path_blocker(self) -> str | None:
        """Why the fused kernel cannot run this module (None when it can)."""
        if not self.fast_path:
            return "fast_path=False was passed to the constructor"
        base = next(k for k in type(self).__mro__ if k in (RNN, LSTM, GRU))
        if type(self).cell is not base.cell:
            return (
                f"{type(self).__name__} overrides cell(), and torch's fused kernel "
                f"only computes the built-in {base.__name__} cell"
            )
        return None

    def explain_fast_path(self) -> str:
        """Say in words which path ``forward()`` takes and why."""
        blocker = self._fast_path_blocker()
        name = type(self).__name__
        if blocker is not None:
            return (
                f"{name}.forward() takes the explicit path: {blocker}. It computes the "
                f"input projection x W_ih^T + b_ih for all steps in one matrix product "
                f"per layer and direction, then calls cell() once per time step."
            )
        kernel = describe_kernel(self._vf_name(), self.weight_ih_l0)
        return (
            f"{name}.forward() takes the fast path: torch's fused kernel "
            f"(torch._VF.{self._vf_name()}; here {kernel}) computes the same function "
            f"with this module's own parameters; lengths are handled by packing the "
            f"batch with pack_padded_sequence. step() takes a fast step without autograd "
            f"(rnnkit.nn.step) under torch.no_grad() or inference_mode(), else cell()."
        )

    def _vf_name(self) -> str:
        return self._mode

    # ---------------------------------------------------------------- forward

    def forward(
        self,
        x: Tensor,
        state: CellState | None = None,
        lengths: Tensor | list[int] | None = None,
    ) -> tuple[Tensor, CellState]:
        """Run the sequence; return ``(output, final_state)``.

        Args:
            x: (B, T, D), or (T, B, D) with ``batch_first=False``, or unbatched (T, D).
            state: initial state, (L*dirs, B, H) (LSTM: ``(h, c)``, h with P
                features when projected); zeros when None.
            lengths: (B,) integers in [1, T], on the CPU or x's device. Steps at
                and past a sequence's length are padding: their outputs are zero
                and the final state is taken at each sequence's own last step,
                in both directions.

        Returns:
            output: (B, T, dirs*H) (or as x's layout), the last layer's h at every step.
            state: like ``state``, the final state of every layer and direction.
        """
        check_input("input", x, (2, 3), self.input_size, self.weight_ih_l0)
        batched = x.dim() == 3
        if not batched:
            if lengths is not None:
                raise ValueError(
                    "lengths needs a batched input (B, T, D); an unbatched "
                    "input (T, D) is one sequence: slice it to its length"
                )
            x = x.unsqueeze(0 if self.batch_first else 1)
        B, T = (x.size(0), x.size(1)) if self.batch_first else (x.size(1), x.size(0))
        if T == 0:
            raise ValueError(f"input has no time steps (shape {tuple(x.shape)})")
        hx = self._check_state(state, B, batched, x)
        if lengths is not None:
            lengths = check_lengths(lengths, B, T, x.device)
            if bool((lengths == T).all()):
                lengths = None  # nothing is padded

        if self._fast_path_blocker() is None:
            output, final = fused_forward(
                self._vf_name(),
                x,
                hx,
                self._flat_weights(),
                bias=self.bias,
                num_layers=self.num_layers,
                dropout=self.dropout,
                training=self.training,
                bidirectional=self.bidirectional,
                batch_first=self.batch_first,
                lengths=lengths,
            )
        else:
            x_bf = x if self.batch_first else x.transpose(0, 1)  # (B, T, D)
            states = [tuple(s) for s in zip(*(t.unbind(0) for t in hx), strict=True)]
            output, finals = self._forward_explicit(x_bf, states, lengths)
            final = tuple(torch.stack(f) for f in zip(*finals, strict=True))
            output = output if self.batch_first else output.transpose(0, 1)
        if not batched:
            output = output.squeeze(0 if self.batch_first else 1)
            final = tuple(t.squeeze(1) for t in final)
        return output, self._public_state(final)

    def _public_state(self, parts: tuple[Tensor, ...]) -> CellState:
        return parts[0]  # LSTM returns the pair

    def _check_state(
        self, state: CellState | None, B: int, batched: bool, x: Tensor
    ) -> tuple[Tensor, ...]:
        """The initial state as a tuple of (L*dirs, B, ·) tensors."""
        LD = self.num_layers * self.num_directions
        sizes = self._state_sizes()
        if state is None:
            return tuple(x.new_zeros(LD, B, n) for n in sizes)
        parts = (state,) if len(sizes) == 1 else state
        names = ("state",) if len(sizes) == 1 else ("state h", "state c")
        if len(sizes) > 1 and (not isinstance(state, tuple | list) or len(state) != len(sizes)):
            raise ValueError(
                f"{type(self).__name__} state must be a pair (h, c), got {type(state).__name__}"
            )
        out = []
        for name, t, n in zip(names, parts, sizes, strict=True):
            check_state_shape(name, t, (LD, B, n) if batched else (LD, n))
            if t.dtype != x.dtype:
                raise ValueError(f"{name} dtype {t.dtype} does not match the input's {x.dtype}")
            out.append(t if batched else t.unsqueeze(1))
        return tuple(out)

    def _forward_explicit(
        self, x: Tensor, states: list[CellState], lengths: Tensor | None
    ) -> tuple[Tensor, list[tuple[Tensor, ...]]]:
        """Every layer and direction step by step. x (B, T, D); states per (layer, direction)."""
        T = x.size(1)
        keep = rev = valid = None
        if lengths is not None:
            t = torch.arange(T, device=x.device)
            valid = t < lengths[:, None]  # (B, T): True at real steps
            keep = valid.unsqueeze(-1).unbind(1)  # T x (B, 1)
            # Reverse each sequence within its own length, padding left in place, so the
            # reverse direction starts at the sequence's last real step. An involution.
            rev = torch.where(valid, lengths[:, None] - 1 - t, t)  # (B, T)
        finals: list[tuple[Tensor, ...]] = []
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                p = self.layer_params(layer, d)
                k = layer * self.num_directions + d
                xs = layer_in if d == 0 else _reverse_time(layer_in, rev)
                y, final = self._run_direction(xs, states[k], p, keep)
                outs.append(y if d == 0 else _reverse_time(y, rev))
                finals.append(final)
            layer_in = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)  # (B, T, dirs*P)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, training=True)
        if valid is not None:
            layer_in = layer_in * valid.unsqueeze(-1).to(layer_in.dtype)  # zero the padding
        return layer_in, finals

    def _run_direction(
        self, x: Tensor, state: tuple[Tensor, ...], p: CellParams, keep: tuple[Tensor, ...] | None
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One layer, one direction: x (B, T, D) -> outputs (B, T, P), final state."""
        s: CellState = state if len(state) > 1 else state[0]
        x_proj, p = self._project(x, p)  # (B, T, G): all steps in one matrix product
        outs = []
        # unbind, not x_proj[:, t]: indexing makes every step's backward touch all of
        # x_proj (measured here: 3.7x torch.nn.LSTM at B64 T100, vs 1.34x with unbind).
        for t, x_t in enumerate(x_proj.unbind(1)):
            new = self.cell(x_t, s, p)
            if keep is not None:  # past a sequence's length its state stays frozen
                new = _select(keep[t], new, s)
            s = new
            outs.append(s[0] if isinstance(s, tuple) else s)
        return torch.stack(outs, dim=1), (s if isinstance(s, tuple) else (s,))

    # ------------------------------------------------------------------ step

    def step(self, x_t: Tensor, state: CellState | None = None) -> tuple[Tensor, CellState]:
        """One time step for streaming inference: ``(y_t, state)``, O(1) per step.

        ``x_t`` is (B, D) or unbatched (D,); ``state`` is what ``forward`` and
        ``step`` return ((L, B, H), LSTM ``(h, c)``), or None for zeros. Running
        ``step`` over a sequence gives ``forward``'s outputs and final state.
        Unidirectional modules only. Under ``torch.no_grad()`` or
        ``torch.inference_mode()`` it takes the fast step (``rnnkit.nn.step``:
        the same equations with cached weight layouts and in-place activations);
        with gradients recorded, it calls ``cell()`` per layer (``_step_explicit``).
        """
        if self.bidirectional:
            raise ValueError(
                "step() needs bidirectional=False: the reverse direction "
                "reads the sequence from its end; call forward() instead"
            )
        check_input("x_t", x_t, (1, 2), self.input_size, self._parameters["weight_ih_l0"])
        batched = x_t.dim() == 2
        x = x_t if batched else x_t.unsqueeze(0)  # (B, D)
        hx = self._check_state(state, x.size(0), batched, x)
        if self._step_blocker() is None:
            y, final = fast_step(self, x, hx)
        else:
            y, final = self._step_explicit(x, hx)
        if not batched:
            y = y.squeeze(0)
            final = tuple(t.squeeze(1) for t in final)
        return y, self._public_state(final)

    def _step_blocker(self) -> str | None:
        """Why ``step()`` takes the explicit step rather than the fast one (None: it does not)."""
        if torch.is_grad_enabled():
            return "gradients are recorded (call it under torch.no_grad() or inference_mode())"
        if self.dropout and self.training and self.num_layers > 1:
            return "dropout between layers is active (training mode)"
        if self._parameters["weight_ih_l0"].is_inference():
            # Made under inference_mode: no version counter, so cached weights could go stale.
            return "the parameters are inference tensors (the module was built in inference_mode)"
        return self._fast_path_blocker()

    def _step_explicit(
        self, x: Tensor, hx: tuple[Tensor, ...]
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """``cell()`` once per layer: x (B, D), hx (L, B, ·) tensors -> (y, new hx)."""
        states = list(zip(*(t.unbind(0) for t in hx), strict=True))
        finals = []
        for layer in range(self.num_layers):
            x_proj, p = self._project(x, self.layer_params(layer))
            s = self.cell(x_proj, _unwrap(states[layer]), p)
            finals.append(s if isinstance(s, tuple) else (s,))
            x = s[0] if isinstance(s, tuple) else s  # (B, P)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        return x, tuple(torch.stack(f) for f in zip(*finals, strict=True))  # (L, B, ·)


def _unwrap(state: tuple[Tensor, ...]) -> CellState:
    return state if len(state) > 1 else state[0]


def _select(keep: Tensor, new: CellState, old: CellState) -> CellState:
    """``new`` where ``keep`` (B, 1) is True, else ``old``; for a tensor or a tuple."""
    if isinstance(new, tuple):
        return tuple(torch.where(keep, n, o) for n, o in zip(new, old, strict=True))
    return torch.where(keep, new, old)


def _reverse_time(x: Tensor, rev: Tensor | None) -> Tensor:
    """Reverse (B, T, ·) along time, each sequence within its length when ``rev`` is given."""
    if rev is None:
        return x.flip(1)
    return x.gather(1, rev.unsqueeze(-1).expand_as(x))


class RNN(_Recurrent):
    r"""A multi-layer Elman RNN; each layer runs ``rnnkit.nn.cells.rnn_cell`` over time.

    :math:`h_t = \phi(x_t W_{ih}^T + b_{ih} + h_{t-1} W_{hh}^T + b_{hh})`, :math:`\phi`
    tanh or relu.

    Arguments as torch.nn.RNN (but ``batch_first=True``), plus ``nonlinearity``
    (``"tanh"`` or ``"relu"``) and ``fast_path``. ``forward(x, state=None, lengths=None)``
    returns ``(output, h_n)``; ``step(x_t, state)`` runs one step.
    Parameters ``weight_ih_l{k}[_reverse]`` (H, D or dirs*H), ``weight_hh_l{k}`` (H, H),
    ``bias_ih_l{k}``, ``bias_hh_l{k}`` (H,).
    """

    gates = 1
    _mode = "rnn_tanh"  # or rnn_relu, see _vf_name
    fold_bias_hh = True

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        batch_first: bool = True,
        *,
        nonlinearity: str = "tanh",
        fast_path: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        self.nonlinearity = check_nonlinearity(nonlinearity)
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            dropout,
            bidirectional,
            batch_first,
            fast_path=fast_path,
            device=device,
            dtype=dtype,
        )

    def _vf_name(self) -> str:
        return f"rnn_{self.nonlinearity}"

    def cell(self, x_proj: Tensor, state: Tensor, p: CellParams) -> Tensor:
        return rnn_cell(x_proj, state, p.weight_hh, p.bias_hh, self.nonlinearity)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s if self.nonlinearity == "tanh" else s + ", nonlinearity='relu'"


class LSTM(_Recurrent):
    r"""A multi-layer LSTM; each layer runs ``rnnkit.nn.cells.lstm_cell`` over time.

    Arguments as torch.nn.LSTM (but ``batch_first=True``), including
    ``proj_size`` (LSTMP: h is projected to P features by ``weight_hr_l{k}``).
    The state is ``(h, c)``: h (L*dirs, B, P or H), c (L*dirs, B, H).

    Example::

        lstm = LSTM(input_size=32, hidden_size=64, num_layers=2, bidirectional=True)
        out, (h, c) = lstm(x, lengths=lengths)  # x (B, T, 32) -> out (B, T, 128)
        lstm.load_state_dict(torch.nn.LSTM(32, 64, 2, bidirectional=True).state_dict())

    Parameters ``weight_ih_l{k}[_reverse]`` (4H, ·), ``weight_hh_l{k}`` (4H, P or H),
    ``bias_ih_l{k}``, ``bias_hh_l{k}`` (4H,), gate order i, f, g, o.
    """

    gates = 4
    _mode = "lstm"
    fold_bias_hh = True

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        batch_first: bool = True,
        *,
        proj_size: int = 0,
        fast_path: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            dropout,
            bidirectional,
            batch_first,
            proj_size=proj_size,
            fast_path=fast_path,
            device=device,
            dtype=dtype,
        )

    def _state_sizes(self) -> tuple[int, ...]:
        return (self.output_size, self.hidden_size)

    def _public_state(self, parts: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:
        return parts[0], parts[1]

    def cell(
        self, x_proj: Tensor, state: tuple[Tensor, Tensor], p: CellParams
    ) -> tuple[Tensor, Tensor]:
        return lstm_cell(x_proj, state, p.weight_hh, p.bias_hh, p.weight_hr)


class GRU(_Recurrent):
    r"""A multi-layer GRU; each layer runs ``rnnkit.nn.cells.gru_cell`` over time.

    Arguments as torch.nn.GRU (but ``batch_first=True``). Parameters
    ``weight_ih_l{k}[_reverse]`` (3H, ·), ``weight_hh_l{k}`` (3H, H), ``bias_ih_l{k}``,
    ``bias_hh_l{k}`` (3H,), gate order r, z, n, reset gate applied after the hidden
    product as torch does.
    """

    gates = 3
    _mode = "gru"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        batch_first: bool = True,
        *,
        fast_path: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            dropout,
            bidirectional,
            batch_first,
            fast_path=fast_path,
            device=device,
            dtype=dtype,
        )

    def cell(self, x_proj: Tensor, state: Tensor, p: CellParams) -> Tensor:
        return gru_cell(x_proj, state, p.weight_hh, p.bias_hh)
