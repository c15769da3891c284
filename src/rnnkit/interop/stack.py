"""The torch modules a Keras model becomes: blocks that run as Keras layers do.

Each block maps ``(x, lengths) -> (x, lengths)`` so that padding information
flows along the chain as a Keras mask does; :class:`KerasStack` runs them in
order. Shape letters: B batch, T time, D features, H hidden features.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.errors import UserError

__all__ = ["ACTIVATIONS", "Dense", "Dropout", "KerasStack", "Masking", "Recurrent"]

# Keras' activation names and what they compute (softmax over the last axis, as Keras).
ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": F.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "softmax": lambda x: torch.softmax(x, dim=-1),
}


def _top_state(state: Tensor | tuple[Tensor, ...], dirs: int) -> Tensor:
    """The top layer's final h of every direction, (B, dirs*H): Keras' last output."""
    h = state[0] if isinstance(state, tuple) else state  # (L*dirs, B, H); LSTM: (h, c)
    return h[-dirs:].transpose(0, 1).reshape(h.size(1), -1)  # (B, dirs*H), forward first


class Recurrent(nn.Module):
    """A recurrent module (``rnnkit.nn`` or ``torch.nn`` RNN/LSTM/GRU) as a Keras layer runs
    it: the whole output sequence (B, T, dirs*H) with ``return_sequences``, else the
    last valid output (B, dirs*H)."""

    def __init__(self, rnn: nn.Module, return_sequences: bool = False) -> None:
        super().__init__()
        self.rnn = rnn
        self.return_sequences = return_sequences

    def forward(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        # torch.nn's modules take no lengths: pass them only when there are some
        out, state = self.rnn(x) if lengths is None else self.rnn(x, lengths=lengths)
        if self.return_sequences:
            return out, lengths
        return _top_state(state, 2 if self.rnn.bidirectional else 1), None


class Dense(nn.Module):
    """``torch.nn.Linear`` on the last axis, then a Keras activation by name."""

    def __init__(self, linear: nn.Linear, activation: str = "linear") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise UserError(
                f"Dense activation {activation!r} has no rnnkit counterpart; "
                f"use one of {', '.join(ACTIVATIONS)}"
            )
        self.linear = linear
        self.activation = activation

    def forward(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return ACTIVATIONS[self.activation](self.linear(x)), lengths


class Dropout(nn.Module):
    """Keras' ``Dropout(rate)``: active in training mode only."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(rate)

    def forward(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return self.dropout(x), lengths


class Masking(nn.Module):
    """Keras' ``Masking(mask_value)``: a step whose features all equal ``mask_value`` is
    padding. Padding must trail (rnnkit's ``lengths``); given ``lengths`` win."""

    def __init__(self, mask_value: float = 0.0) -> None:
        super().__init__()
        self.mask_value = float(mask_value)

    def forward(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if lengths is not None:
            return x, lengths
        keep = (x != self.mask_value).any(dim=-1)  # (B, T): True at real steps, as Keras
        lengths = keep.sum(dim=1)  # (B,)
        t = torch.arange(x.size(1), device=x.device)
        if not bool((keep == (t < lengths[:, None])).all()):
            raise UserError(
                f"a row has a masked step (all features == {self.mask_value}) before a real "
                "one; rnnkit takes trailing padding only: pass lengths= or fill the gap"
            )
        if bool((lengths == 0).any()):
            row = int((lengths == 0).nonzero()[0])
            raise UserError(f"row {row} is masked at every step; drop it or give it real steps")
        return x * keep[..., None].to(x.dtype), lengths  # (B, T, D), zeros at padding


class KerasStack(nn.Module):
    """A Keras model's layers as torch modules, run in order.

    ``stack(x, lengths=None)`` with ``x`` (B, T, D) (a tensor or an array)
    returns what the Keras model returns. ``stack.layers`` holds the blocks
    (``Recurrent``, ``Dense``, ``Dropout``, ``Masking``); ``stack.layers[i].rnn``
    is the ``rnnkit.nn`` module, ready for ``step()``, ``lengths=`` and training.
    """

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor | np.ndarray, lengths: Tensor | None = None) -> Tensor:
        if not isinstance(x, Tensor):
            x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        for layer in self.layers:
            x, lengths = layer(x, lengths)
        return x
