"""The network of the sequence estimators: a recurrent module, then a linear head.

Shape letters: B batch, T time, D input features, H hidden features, K outputs
(regression targets or class logits), L layers.

The head reads the **last valid hidden state** of the top layer: the state at
each row's own last step (``lengths``), so padding never reaches it. With
``bidirectional=True`` it reads the forward direction's state after the last
valid step and the backward direction's state after step 0, concatenated
(B, 2H), as Keras' ``Bidirectional(SimpleRNN(...))`` without
``return_sequences``. The cells of ``rnnkit.nn`` that have no
``bidirectional`` option (minGRU, minLSTM) get a second module run over each
row reversed within its length.
"""

from __future__ import annotations

import inspect

import torch
from torch import Tensor, nn

from rnnkit.nn import RECURRENT, build_recurrent
from rnnkit.sequence.config import SequenceModelConfig

__all__ = ["SequenceNet", "reverse_padded"]


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Each row of ``x`` (B, T, D) reversed within its length; the padding stays in place."""
    if lengths is None:
        return x.flip(1)
    T = x.size(1)
    t = torch.arange(T, device=x.device)
    n = lengths.to(x.device)[:, None]  # (B, 1)
    idx = torch.where(t < n, n - 1 - t, t)  # (B, T): source step of each output step
    return x.gather(1, idx.unsqueeze(-1).expand_as(x))


class SequenceNet(nn.Module):
    """``x`` (B, T, D) and optional ``lengths`` (B,) -> outputs (B, K).

    Args:
        cfg: the model section (cell, hidden_size, num_layers, bidirectional, dropout).
        input_size: D, features per time step.
        output_size: K, regression targets or classes.
    """

    def __init__(self, cfg: SequenceModelConfig, input_size: int, output_size: int) -> None:
        super().__init__()
        self.cell = cfg.cell
        self.num_layers = cfg.num_layers
        self.bidirectional = cfg.bidirectional
        self.num_directions = 2 if cfg.bidirectional else 1
        kwargs = {"num_layers": cfg.num_layers}
        if cfg.num_layers > 1:  # dropout acts between layers: with one layer it only warns
            kwargs["dropout"] = cfg.dropout
        native = "bidirectional" in inspect.signature(RECURRENT[cfg.cell]).parameters
        if cfg.bidirectional and native:
            kwargs["bidirectional"] = True
        self.rnn = build_recurrent(cfg.cell, input_size, cfg.hidden_size, **kwargs)
        # A second module reads the reversed rows for cells without a bidirectional option.
        self.rnn_reverse = (
            build_recurrent(cfg.cell, input_size, cfg.hidden_size, **kwargs)
            if cfg.bidirectional and not native
            else None
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(self.num_directions * cfg.hidden_size, output_size)

    @staticmethod
    def _top_layer(state: Tensor | tuple[Tensor, ...], directions: int) -> Tensor:
        """The top layer's final h of every direction, (B, directions * H)."""
        h = state[0] if isinstance(state, tuple) else state  # (L*dirs, B, H); LSTM: (h, c)
        top = h[-directions:]  # (dirs, B, H): layer-major, direction-minor (torch.nn order)
        return top.transpose(0, 1).reshape(h.size(1), -1)  # (B, dirs*H)

    def encode(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The last valid hidden state of every row, (B, dirs * H)."""
        native_dirs = self.num_directions if self.rnn_reverse is None else 1
        _, state = self.rnn(x, lengths=lengths)
        h = self._top_layer(state, native_dirs)  # (B, H) or (B, 2H)
        if self.rnn_reverse is not None:
            _, back = self.rnn_reverse(reverse_padded(x, lengths), lengths=lengths)
            h = torch.cat([h, self._top_layer(back, 1)], dim=-1)  # (B, 2H)
        return h

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.head(self.dropout(self.encode(x, lengths)))  # (B, K)
