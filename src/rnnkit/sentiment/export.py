"""ONNX export of a fitted SentimentClassifier's network (``SentimentClassifier.export_onnx``).

One graph, the :class:`~rnnkit.sentiment.model.TextClassifier` itself (its own
``forward``: embedding, recurrent stack with lengths, pooling, head):
``ids`` (B, T) int64 padded with 0 and ``lengths`` (B,) int64 -> ``logits``
(B, C) and ``probs`` (B, C) (softmax), columns in the order of ``classes``.

Not in the graph: tokenisation (the fitted tokenizer, ``tokenizer.json`` of
the saved model, read with :func:`rnnkit.data.tokenizers.tokenizer_from_dict`;
long texts keep their first and last ``max_len / 2`` tokens) and the label
names (in the sidecar JSON as ``classes``). A text is classified whole, so
there is no streaming graph; an ensemble is exported member by member.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.errors import UserError
from rnnkit.export.onnx import Shape, describe, export_copy, export_graph, write_sidecar
from rnnkit.sentiment.model import TextClassifier

__all__ = ["export_onnx"]


class _Classify(nn.Module):
    def __init__(self, model: TextClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        logits = self.model(ids, lengths).logits  # (B, C)
        return logits, logits.softmax(-1)


def export_onnx(est: Any, path: str | os.PathLike[str], *, streaming: bool | str = False) -> Path:
    """Write the network of the fitted SentimentClassifier ``est`` to ``path``."""
    if streaming:
        raise UserError(
            "sentiment models classify a whole text: there is no streaming graph; "
            "export without --streaming"
        )
    if getattr(est, "members_", None):
        raise UserError(
            f"this is an ensemble of {len(est.members_)} models; export each member "
            "(est.members_[k].export_onnx(path)) and average their probs"
        )
    C = len(est.classes_)
    inputs: dict[str, Shape] = {"ids": ("batch", "time"), "lengths": ("batch",)}
    outputs: dict[str, Shape] = {"logits": ("batch", C), "probs": ("batch", C)}
    example = [torch.ones(2, 3, dtype=torch.long), torch.tensor([3, 2])]
    what = "text classifier: token ids and lengths -> class logits and probabilities"
    model = export_copy(est.model_, "rnn")
    target = export_graph(_Classify(model), example, path, inputs=inputs, outputs=outputs, doc=what)
    write_sidecar(
        target,
        {
            "app": "sentiment",
            "what": what,
            "graphs": [describe(target)],
            "classes": list(est.classes_),
            "max_len": est.config.data.max_len,
            "usage": (
                "ids from the saved tokenizer (tokenizer.json), padded with 0 to the longest "
                "text of the batch; lengths = tokens per text (>= 1)"
            ),
            "not_in_graph": [
                "tokenisation (tokenizer.json of the saved model; texts longer than max_len "
                "keep their first and last max_len/2 tokens)",
                "the label names (here: classes, in the order of the probs columns)",
            ],
        },
    )
    return target
