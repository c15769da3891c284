"""Recurrent modules by name, so a config or a CLI flag can say ``--cell lstm``."""

from __future__ import annotations

from typing import Any

from torch import nn

from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnkit.nn.mingru import MinGRU, MinLSTM
from rnnkit.nn.recurrent import GRU, LSTM, RNN

__all__ = ["CELLS", "CELL_NAMES", "RECURRENT", "build_recurrent"]

# Every sequence module shares the contract forward(x, state=None, lengths=None)
# -> (output, state) and step(x_t, state) -> (y_t, state); a new cell is one line here.
RECURRENT: dict[str, type[nn.Module]] = {
    "rnn": RNN,
    "lstm": LSTM,
    "gru": GRU,
    "mingru": MinGRU,  # Feng et al. 2024, trained with a log-space parallel scan
    "minlstm": MinLSTM,
}
CELLS: dict[str, type[nn.Module]] = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}
CELL_NAMES: tuple[str, ...] = tuple(RECURRENT)


def build_recurrent(cell: str, input_size: int, hidden_size: int, **kwargs: Any) -> nn.Module:
    """The sequence module named ``cell`` (one of ``CELL_NAMES``), e.g.
    ``build_recurrent("gru", 32, 64, num_layers=2)``; keyword arguments go to its constructor.
    """
    if cell not in RECURRENT:
        raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(map(repr, CELL_NAMES))}")
    return RECURRENT[cell](input_size, hidden_size, **kwargs)
