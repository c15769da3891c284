"""One time step of a plain RNN, an LSTM and a GRU.

Each cell is written twice, once as a function and once as a module, and the
module calls the function, so the equations live in one place:

- ``rnn_cell``, ``lstm_cell``, ``gru_cell`` take the *input projection*
  ``x_proj = x W_ih^T + b_ih`` rather than ``x``. The sequence modules in
  ``rnnkit.nn.recurrent`` compute that projection for all T steps in one
  matrix product and then call the same functions once per step.
- ``RNNCell``, ``LSTMCell``, ``GRUCell`` own the parameters, with the names,
  shapes, gate order and initialisation of ``torch.nn.RNNCell`` & co., so a
  torch state dict loads without conversion.

Shape letters: B batch, D input features, H hidden features, G = gates * H.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "GRUCell",
    "LSTMCell",
    "NONLINEARITIES",
    "RNNCell",
    "gru_cell",
    "lstm_cell",
    "rnn_cell",
]

NONLINEARITIES: tuple[str, ...] = ("tanh", "relu")


# --------------------------------------------------------------------------
# The equations, as functions of the input projection
# --------------------------------------------------------------------------


def rnn_cell(
    x_proj: Tensor,
    h: Tensor,
    weight_hh: Tensor,
    bias_hh: Tensor | None = None,
    nonlinearity: str = "tanh",
) -> Tensor:
    r"""One step of an Elman RNN, given ``x_proj = x W_ih^T + b_ih``.

    .. math::
        h' = \phi(x W_{ih}^T + b_{ih} + h W_{hh}^T + b_{hh}),
        \quad \phi \in \{\tanh, \mathrm{relu}\}

    Shapes: x_proj (B, H), h (B, H), weight_hh (H, H), bias_hh (H,) -> h' (B, H).
    ``bias_hh=None`` means no bias or one already added to ``x_proj``.
    """
    if bias_hh is not None:  # (the sequence modules fold b_hh into x_proj up front)
        x_proj = x_proj + bias_hh
    pre = torch.addmm(x_proj, h, weight_hh.t())  # (B, H): x W_ih^T + b_ih + b_hh + h W_hh^T
    return torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)


def lstm_cell(
    x_proj: Tensor,
    state: tuple[Tensor, Tensor],
    weight_hh: Tensor,
    bias_hh: Tensor | None = None,
    weight_hr: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    r"""One step of an LSTM, given ``x_proj = x W_ih^T + b_ih``; returns ``(h', c')``.

    .. math::
        \begin{aligned}
        i &= \sigma(W_{ii} x + b_{ii} + W_{hi} h + b_{hi}) \\
        f &= \sigma(W_{if} x + b_{if} + W_{hf} h + b_{hf}) \\
        g &= \tanh(W_{ig} x + b_{ig} + W_{hg} h + b_{hg}) \\
        o &= \sigma(W_{io} x + b_{io} + W_{ho} h + b_{ho}) \\
        c' &= f \odot c + i \odot g \\
        h' &= o \odot \tanh(c') \quad (\text{then } h' = W_{hr} h' \text{ if projected})
        \end{aligned}

    Gate order in the stacked weights is i, f, g, o (torch.nn's). With a
    projection (Sak et al. 2014, "LSTMP"), ``weight_hr`` (P, H) maps h' to P
    features and the recurrence uses the projected h.

    Shapes: x_proj (B, 4H), h (B, H or P), c (B, H), weight_hh (4H, H or P).
    """
    h, c = state
    if bias_hh is not None:  # (the sequence modules fold b_hh into x_proj up front)
        x_proj = x_proj + bias_hh
    gates = torch.addmm(x_proj, h, weight_hh.t())  # (B, 4H): W_i* x + b_i* + W_h* h + b_h*
    i, f, g, o = gates.chunk(4, dim=-1)  # 4 x (B, H)
    i = torch.sigmoid(i)
    f = torch.sigmoid(f)
    g = torch.tanh(g)
    o = torch.sigmoid(o)
    c = f * c + i * g
    h = o * torch.tanh(c)
    if weight_hr is not None:
        h = F.linear(h, weight_hr)  # (B, P)
    return h, c


def gru_cell(
    x_proj: Tensor,
    h: Tensor,
    weight_hh: Tensor,
    bias_hh: Tensor | None = None,
) -> Tensor:
    r"""One step of a GRU, given ``x_proj = x W_ih^T + b_ih``.

    .. math::
        \begin{aligned}
        r &= \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}) \\
        z &= \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}) \\
        n &= \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})) \\
        h' &= (1 - z) \odot n + z \odot h
        \end{aligned}

    Gate order is r, z, n, and the reset gate multiplies ``W_hn h + b_hn``
    *after* the matrix product (torch.nn's and cuDNN's form; Cho et al. 2014
    apply it before).

    Shapes: x_proj (B, 3H), h (B, H), weight_hh (3H, H) -> h' (B, H).
    """
    h_proj = F.linear(h, weight_hh, bias_hh)  # (B, 3H)
    x_r, x_z, x_n = x_proj.chunk(3, dim=-1)  # 3 x (B, H)
    h_r, h_z, h_n = h_proj.chunk(3, dim=-1)  # 3 x (B, H)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return torch.lerp(n, h, z)  # (1 - z) * n + z * h, in one kernel


# --------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------


def check_size(name: str, value: object, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``, or a ValueError that names it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_dropout(dropout: object, num_layers: int) -> float:
    """``dropout`` as a float in [0, 1), or a ValueError that names it.

    Dropout acts between layers (as in torch.nn), so with one layer it is
    accepted but has no effect: warn, as torch does.
    """
    if isinstance(dropout, bool) or not isinstance(dropout, int | float):
        raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    if dropout > 0 and num_layers == 1:
        warnings.warn(
            f"dropout={dropout} has no effect with num_layers=1: it applies between layers",
            UserWarning,
            stacklevel=4,  # the user's constructor call
        )
    return float(dropout)


def check_nonlinearity(nonlinearity: object) -> str:
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(
            f"nonlinearity must be one of {', '.join(map(repr, NONLINEARITIES))}, "
            f"got {nonlinearity!r}"
        )
    return nonlinearity  # type: ignore[return-value]


def check_input(name: str, x: object, ranks: tuple[int, ...], size: int, weight: Tensor) -> Tensor:
    """Check rank, feature size and dtype of an input against the module's weight."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in ranks:
        shapes = " or ".join(f"{r}-D" for r in ranks)
        raise ValueError(f"{name} must be {shapes}, got shape {tuple(x.shape)}")
    if x.size(-1) != size:
        raise ValueError(
            f"{name} has {x.size(-1)} features in its last dimension but input_size is {size} "
            f"(shape {tuple(x.shape)})"
        )
    if x.dtype != weight.dtype:
        raise ValueError(
            f"{name} dtype {x.dtype} does not match the weights' dtype {weight.dtype}; "
            f"convert one with .to({weight.dtype}) or module.to({x.dtype})"
        )
    return x


def check_state_shape(name: str, t: object, shape: tuple[int, ...]) -> Tensor:
    if not isinstance(t, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if tuple(t.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
    return t


class _CellBase(nn.Module):
    """Parameters and input checks shared by the three cells (torch.nn.RNNCellBase)."""

    gates: int = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.input_size = check_size("input_size", input_size)
        self.hidden_size = check_size("hidden_size", hidden_size)
        self.bias = bool(bias)
        kw = {"device": device, "dtype": dtype}
        G = self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(G, input_size, **kw))  # (G, D)
        self.weight_hh = nn.Parameter(torch.empty(G, hidden_size, **kw))  # (G, H)
        if self.bias:
            self.bias_ih = nn.Parameter(torch.empty(G, **kw))
            self.bias_hh = nn.Parameter(torch.empty(G, **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(-1/sqrt(H), 1/sqrt(H)) for every parameter, as torch.nn."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _prepare(
        self, x: Tensor, state: Tensor | None, name: str = "state"
    ) -> tuple[Tensor, Tensor]:
        """Batch an unbatched input and check (or create) one state tensor."""
        check_input("input", x, (1, 2), self.input_size, self.weight_ih)
        x2 = x if x.dim() == 2 else x.unsqueeze(0)  # (B, D)
        shape = (x2.size(0), self.hidden_size)
        if state is None:
            return x2, x2.new_zeros(shape)
        want = shape if x.dim() == 2 else shape[1:]
        check_state_shape(name, state, want)
        return x2, state if x.dim() == 2 else state.unsqueeze(0)

    def project(self, x: Tensor) -> Tensor:
        """The input projection ``x W_ih^T + b_ih`` (B, G)."""
        return F.linear(x, self.weight_ih, self.bias_ih)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        return s if self.bias else s + ", bias=False"


class RNNCell(_CellBase):
    r"""An Elman RNN cell: :math:`h' = \phi(x W_{ih}^T + b_{ih} + h W_{hh}^T + b_{hh})`.

    Args:
        input_size: D, features of ``x``.
        hidden_size: H, features of ``h``.
        bias: learn ``bias_ih`` and ``bias_hh`` (H,).
        nonlinearity: ``"tanh"`` or ``"relu"``.

    Shape: ``forward(x (B, D) or (D,), h (B, H) or (H,) or None) -> h' (B, H) or (H,)``.

    Attributes: ``weight_ih`` (H, D), ``weight_hh`` (H, H), ``bias_ih``, ``bias_hh`` (H,),
    initialised U(-1/sqrt(H), 1/sqrt(H)) like torch.nn.RNNCell.
    """

    gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        self.nonlinearity = check_nonlinearity(nonlinearity)
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype)

    def forward(self, x: Tensor, state: Tensor | None = None) -> Tensor:
        x2, h = self._prepare(x, state)
        h = rnn_cell(self.project(x2), h, self.weight_hh, self.bias_hh, self.nonlinearity)
        return h if x.dim() == 2 else h.squeeze(0)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s if self.nonlinearity == "tanh" else s + ", nonlinearity='relu'"


class LSTMCell(_CellBase):
    r"""A long short-term memory cell (Hochreiter & Schmidhuber 1997, with a forget gate).

    .. math::
        \begin{aligned}
        i &= \sigma(W_{ii} x + b_{ii} + W_{hi} h + b_{hi}) \\
        f &= \sigma(W_{if} x + b_{if} + W_{hf} h + b_{hf}) \\
        g &= \tanh(W_{ig} x + b_{ig} + W_{hg} h + b_{hg}) \\
        o &= \sigma(W_{io} x + b_{io} + W_{ho} h + b_{ho}) \\
        c' &= f \odot c + i \odot g \\
        h' &= o \odot \tanh(c')
        \end{aligned}

    Shape: ``forward(x (B, D) or (D,), (h, c) each (B, H) or (H,), or None) -> (h', c')``.

    Attributes: ``weight_ih`` (4H, D) = [W_ii | W_if | W_ig | W_io], ``weight_hh`` (4H, H),
    ``bias_ih``, ``bias_hh`` (4H,), initialised like torch.nn.LSTMCell.
    """

    gates = 4

    def forward(
        self, x: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        if state is None:
            x2, h = self._prepare(x, None)
            c = torch.zeros_like(h)
        else:
            if not isinstance(state, tuple | list) or len(state) != 2:
                raise ValueError(
                    f"LSTMCell state must be a pair (h, c), got {type(state).__name__}"
                )
            x2, h = self._prepare(x, state[0], "state h")
            _, c = self._prepare(x, state[1], "state c")
        h, c = lstm_cell(self.project(x2), (h, c), self.weight_hh, self.bias_hh)
        return (h, c) if x.dim() == 2 else (h.squeeze(0), c.squeeze(0))


class GRUCell(_CellBase):
    r"""A gated recurrent unit cell (Cho et al. 2014), in torch.nn's form.

    .. math::
        \begin{aligned}
        r &= \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}) \\
        z &= \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}) \\
        n &= \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})) \\
        h' &= (1 - z) \odot n + z \odot h
        \end{aligned}

    Shape: ``forward(x (B, D) or (D,), h (B, H) or (H,) or None) -> h'``.

    Attributes: ``weight_ih`` (3H, D) = [W_ir | W_iz | W_in], ``weight_hh`` (3H, H),
    ``bias_ih``, ``bias_hh`` (3H,), initialised like torch.nn.GRUCell.
    """

    gates = 3

    def forward(self, x: Tensor, state: Tensor | None = None) -> Tensor:
        x2, h = self._prepare(x, state)
        h = gru_cell(self.project(x2), h, self.weight_hh, self.bias_hh)
        return h if x.dim() == 2 else h.squeeze(0)


def check_lengths(lengths: object, B: int, T: int, device: torch.device) -> Tensor:
    """``lengths`` as an int64 tensor on ``device``, or a ValueError naming what is wrong."""
    if isinstance(lengths, Tensor):
        if lengths.device.type != "cpu" and lengths.device != device:
            raise ValueError(
                f"lengths is on {lengths.device} but the input is on {device}; "
                f"put lengths on the CPU or on {device}"
            )
    else:
        try:
            lengths = torch.as_tensor(lengths)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(
                f"lengths must be a 1-D tensor or list of integers, got {type(lengths).__name__}"
            ) from exc
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise ValueError(f"lengths must hold integers, got dtype {lengths.dtype}")
    if lengths.dim() != 1 or lengths.numel() != B:
        raise ValueError(
            f"lengths must have shape ({B},), one length per sequence, "
            f"got shape {tuple(lengths.shape)}"
        )
    bad = ((lengths < 1) | (lengths > T)).nonzero()
    if bad.numel():
        i = int(bad[0, 0])
        raise ValueError(
            f"lengths must be between 1 and T={T} (the input's steps), "
            f"got lengths[{i}]={int(lengths[i])}"
        )
    return lengths.to(device=device, dtype=torch.int64)
