"""torch building blocks: cells, sequence modules, attention, and a registry of them by name."""

from rnnkit.nn.attention import (
    ATTENTION_TYPES,
    AdditiveAttention,
    MultiplicativeAttention,
    build_attention,
)
from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell, gru_cell, lstm_cell, rnn_cell
from rnnkit.nn.mingru import MinGRU, MinLSTM
from rnnkit.nn.recurrent import GRU, LSTM, RNN, CellParams
from rnnkit.nn.registry import CELL_NAMES, CELLS, RECURRENT, build_recurrent

__all__ = [
    "ATTENTION_TYPES",
    "AdditiveAttention",
    "CELLS",
    "CELL_NAMES",
    "GRU",
    "GRUCell",
    "LSTM",
    "LSTMCell",
    "MinGRU",
    "MinLSTM",
    "MultiplicativeAttention",
    "RECURRENT",
    "RNN",
    "RNNCell",
    "CellParams",
    "build_attention",
    "build_recurrent",
    "gru_cell",
    "lstm_cell",
    "rnn_cell",
]
