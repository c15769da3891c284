"""ONNX export of a fitted TextGenerator's network (``TextGenerator.export_onnx``).

Two graphs, both the :class:`~rnnkit.textgen.model.CharLM` itself (its own
``forward`` and ``step``, with the recurrent stack as its export twin):

- whole sequence: ``tokens`` (B, T) int64 -> ``logits`` (B, T, V), ``h_n``
  (L, B, H) [, ``c_n`` (L, B, H) for LSTM], from a zero state;
- streaming (``streaming=True``), one step: ``token`` (B,) int64, ``h``
  [, ``c``] -> ``logits`` (B, V), ``h_n`` [, ``c_n``]. Feed ``h_n`` back as
  ``h``; start from zeros. This is the graph generation runs.

Not in the graphs: the character vocabulary (written into the sidecar JSON
as ``vocab``, index = id) and the sampling (temperature, top-k, top-p:
a few lines of NumPy on the logits, see docs/export.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.errors import UserError
from rnnkit.export.onnx import (
    Shape,
    describe,
    export_copy,
    export_graph,
    state_of,
    state_shapes,
    state_tuple,
    streaming_mode,
    write_sidecar,
)
from rnnkit.textgen.model import CharLM

__all__ = ["export_onnx"]


class _Whole(nn.Module):
    """tokens (B, T) -> logits (B, T, V) and the final state."""

    def __init__(self, model: CharLM) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor) -> tuple[Tensor, ...]:
        out = self.model(tokens)
        return (out.logits, *state_tuple(out.state))


class _Step(nn.Module):
    """token (B,), state -> logits (B, V) and the next state."""

    def __init__(self, model: CharLM) -> None:
        super().__init__()
        self.model = model

    def forward(self, token: Tensor, h: Tensor, c: Tensor | None = None) -> tuple[Tensor, ...]:
        out = self.model.step(token, state_of(h, c))
        return (out.logits, *state_tuple(out.state))


def export_onnx(est: Any, path: str | os.PathLike[str], *, streaming: bool | str = False) -> Path:
    """Write the network of the fitted TextGenerator ``est`` to ``path`` (see the module doc)."""
    mode = streaming_mode(streaming)
    if mode == "chunk":
        raise UserError("textgen exports a step graph (streaming=True), not chunks")
    model = export_copy(est.model_, "rnn")
    V = len(est.vocab_)
    states = state_shapes(model.rnn.module)
    outputs: dict[str, Shape]
    if mode is None:
        inputs: dict[str, Shape] = {"tokens": ("batch", "time")}
        example: list[Tensor] = [torch.zeros(2, 3, dtype=torch.long)]
        outputs = {"logits": ("batch", "time", V)}
        wrapper: nn.Module = _Whole(model)
        what = "character LM, whole sequence (zero initial state)"
    else:
        inputs = {"token": ("batch",), **states}
        example = [torch.zeros(2, dtype=torch.long)]
        example += [torch.zeros(s[0], 2, s[2]) for s in states.values()]
        outputs = {"logits": ("batch", V)}
        wrapper = _Step(model)
        what = "character LM, one step (state in, state out)"
    outputs.update({f"{n}_n": s for n, s in states.items()})
    target = export_graph(wrapper, example, path, inputs=inputs, outputs=outputs, doc=what)
    feed = ", ".join(f"{n}_n back as {n}" for n in states)
    write_sidecar(
        target,
        {
            "app": "textgen",
            "what": what,
            "graphs": [describe(target)],
            "state": {n: list(s) for n, s in states.items()},
            "vocab": list(est.vocab_.chars_),
            "usage": (
                "ids are vocab indices; p(next character) = softmax(logits / temperature)"
                + ("" if mode is None else f"; start from zero state, feed {feed}")
            ),
            "not_in_graph": [
                "the character vocabulary (here: vocab, index = id)",
                "sampling: temperature, top-k, top-p (on the logits, in your code)",
            ],
        },
    )
    return target
