"""The fast path: torch's own fused RNN kernels, called with an rnnkit module's parameters.

This is what torch.nn.LSTM.forward does (torch/nn/modules/rnn.py), minus the
module: ``torch._VF.lstm`` (and ``gru``, ``rnn_tanh``, ``rnn_relu``) takes the
input, the initial state and the flat list of parameters in torch's order
(per layer and direction: ``weight_ih, weight_hh[, bias_ih, bias_hh][, weight_hr]``)
and runs cuDNN on CUDA, oneDNN (LSTM, float32, unpacked input) or ATen's loop
on CPU. Variable lengths go through ``pack_padded_sequence``, as torch users
would do by hand.

Shape letters: B batch, T time, L*dirs layers times directions.
"""

from __future__ import annotations

import torch
from torch import _VF, Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

__all__ = ["describe_kernel", "flatten_for_cudnn", "fused_forward"]

MODES = ("lstm", "gru", "rnn_tanh", "rnn_relu")


def fused_forward(
    mode: str,
    x: Tensor,
    hx: tuple[Tensor, ...],
    weights: list[Tensor],
    *,
    bias: bool,
    num_layers: int,
    dropout: float,
    training: bool,
    bidirectional: bool,
    batch_first: bool,
    lengths: Tensor | None = None,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run torch's fused kernel ``mode``; return ``(output, final state parts)``.

    ``x`` is batched, in the layout ``batch_first`` says; ``hx`` holds the
    (L*dirs, B, ·) state tensors (LSTM: h and c); ``lengths`` (B,) int64 or None.
    Padded positions of the output are zero and the final state of each
    sequence is taken at its own last step.
    """
    kernel = getattr(_VF, mode)
    args = (weights, bias, num_layers, dropout, training, bidirectional)
    if lengths is None:
        out, *final = kernel(x, hx if len(hx) > 1 else hx[0], *args, batch_first)
        return out, tuple(final)
    T = x.size(1) if batch_first else x.size(0)
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first, enforce_sorted=False)
    h0 = tuple(h.index_select(1, packed.sorted_indices) for h in hx)  # sorted like the data
    data, *final = kernel(packed.data, packed.batch_sizes, h0 if len(h0) > 1 else h0[0], *args)
    out = PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
    padded, _ = pad_packed_sequence(out, batch_first, total_length=T)  # zeros past lengths
    return padded, tuple(h.index_select(1, packed.unsorted_indices) for h in final)


def flatten_for_cudnn(
    mode: str,
    weights: list[Tensor],
    *,
    bias: bool,
    input_size: int,
    hidden_size: int,
    proj_size: int,
    num_layers: int,
    batch_first: bool,
    bidirectional: bool,
) -> None:
    """Move the parameters into one buffer as cuDNN wants (torch.nn.RNNBase.flatten_parameters).

    A no-op off CUDA. Without it cuDNN copies the weights on every call and warns.
    """
    first = weights[0]
    if not (first.is_cuda and torch.backends.cudnn.is_acceptable(first)):
        return
    if any(not w.is_cuda or w.dtype != first.dtype for w in weights):
        return
    if len({w.data_ptr() for w in weights}) != len(weights):  # aliased: torch gives up too
        return
    import torch.backends.cudnn.rnn as cudnn_rnn

    with torch.cuda.device_of(first), torch.no_grad():
        if torch._use_cudnn_rnn_flatten_weight():
            torch._cudnn_rnn_flatten_weight(
                weights,
                (4 if bias else 2) + (1 if proj_size else 0),
                input_size,
                cudnn_rnn.get_cudnn_mode(mode.upper()),
                hidden_size,
                proj_size,
                num_layers,
                batch_first,
                bidirectional,
            )


def describe_kernel(mode: str, weight: Tensor) -> str:
    """Which implementation torch picks for ``mode`` with parameters like ``weight``."""
    if weight.is_cuda:
        return "cuDNN" if torch.backends.cudnn.enabled else "ATen's CUDA kernels"
    if (
        mode == "lstm"
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
        and weight.dtype in (torch.float32, torch.bfloat16)
    ):
        return "oneDNN for inputs without lengths, ATen's CPU loop with lengths"
    return "ATen's CPU loop"
