"""The NumPy reference engine: hand-written BPTT, the teaching engine and test oracle.

This package never imports torch. Parameters use torch.nn's names and layouts
(``weight_ih`` (G*H, D), ``weight_hh`` (G*H, H), ``bias_ih``, ``bias_hh``; LSTM gates
i, f, g, o; GRU r, z, n), so weights copy between the two without conversion.

- :func:`forward` / :func:`backward`: a whole sequence and its BPTT.
- :func:`truncated_bptt`, :func:`clip_grad_norm`, :class:`SGD`, :class:`Adam`: training.
- :func:`softmax_cross_entropy`, :func:`mse`: losses that return their gradient.
- :func:`gradcheck`: the max relative error against central differences.
- ``*_step_forward`` / ``*_step_backward``: one step of each cell, equations in docstrings.
"""

from __future__ import annotations

from rnnkit.reference.bptt import (
    KINDS,
    SequenceCache,
    TBPTTChunk,
    backward,
    clip_grad_norm,
    forward,
    hidden_gradients,
    truncated_bptt,
)
from rnnkit.reference.functional import (
    gru_step_backward,
    gru_step_forward,
    lstm_step_backward,
    lstm_step_forward,
    rnn_step_backward,
    rnn_step_forward,
    sigmoid,
)
from rnnkit.reference.gradcheck import (
    GradcheckResult,
    check_gradient,
    gradcheck,
    numerical_gradient,
    relative_error,
)
from rnnkit.reference.losses import mse, softmax_cross_entropy
from rnnkit.reference.optim import SGD, Adam

__all__ = [
    "KINDS",
    "forward",
    "backward",
    "hidden_gradients",
    "SequenceCache",
    "truncated_bptt",
    "TBPTTChunk",
    "clip_grad_norm",
    "softmax_cross_entropy",
    "mse",
    "SGD",
    "Adam",
    "gradcheck",
    "GradcheckResult",
    "check_gradient",
    "numerical_gradient",
    "relative_error",
    "sigmoid",
    "rnn_step_forward",
    "rnn_step_backward",
    "lstm_step_forward",
    "lstm_step_backward",
    "gru_step_forward",
    "gru_step_backward",
]
