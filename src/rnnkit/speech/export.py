"""ONNX export of a fitted SpeechRecognizer's network (``SpeechRecognizer.export_onnx``).

The :class:`~rnnkit.speech.model.CTCASR` network (conv front end, recurrent
stack as its export twin, linear head, log-softmax), in two forms:

- whole utterance: ``features`` (B, T, M) float32 and ``lengths`` (B,) int64
  (valid frames) -> ``log_probs`` (B, T', V) and ``out_lengths`` (B,), with
  T' = T // subsample (the front end groups ``subsample`` frames);
- streaming chunks (``streaming=True``, unidirectional models only):
  ``features`` (B, T, M) with T a multiple of ``subsample``, ``h`` [, ``c``]
  -> ``log_probs`` (B, T / subsample, V), ``h_n`` [, ``c_n``]. Chunk by
  chunk, feeding ``h_n`` back as ``h`` from a zero state, this gives the
  whole utterance's log-probabilities.

Not in the graphs: feature extraction (audio -> normalised log-mel frames,
:class:`rnnkit.speech.features.LogMel` with the saved ``features.json``) and
CTC decoding (greedy: argmax per frame, merge repeats, drop the blank, label
0; prefix beam search with the character LM stays in Python,
:mod:`rnnkit.speech.decode`). The labels are in the sidecar JSON (``labels``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
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
from rnnkit.speech.model import CTCASR

__all__ = ["export_onnx"]


class _Acoustic(nn.Module):
    """CTCASR.forward without its Python-side checks (which read data, so cannot trace)."""

    def __init__(self, model: CTCASR, chunk: bool) -> None:
        super().__init__()
        self.model, self.chunk = model, chunk

    def _frames(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.model.frontend(x, lengths)  # (B, T, M) -> (B, T', C)

    def forward(self, features: Tensor, second: Tensor, c: Tensor | None = None):
        """Whole: ``(features, lengths)``; chunk: ``(features, h[, c])``."""
        m = self.model
        z = self._frames(features, None if self.chunk else second)  # (B, T', C)
        if self.chunk:
            h, state = m.rnn(z, state_of(second, c))  # (B, T', H)
            return (F.log_softmax(m.head(h), dim=-1), *state_tuple(state))
        out_lens = torch.div(second, m.subsample, rounding_mode="floor")  # (B,)
        h, _ = m.rnn(z, None, out_lens)  # (B, T', dirs*H), zero past each length
        return F.log_softmax(m.head(h), dim=-1), out_lens


def export_onnx(est: Any, path: str | os.PathLike[str], *, streaming: bool | str = False) -> Path:
    """Write the network of the fitted SpeechRecognizer ``est`` to ``path``."""
    mode = streaming_mode(streaming)
    model = export_copy(est.model_, "rnn")
    c = model.config
    if mode is not None and c.bidirectional:
        raise UserError(
            "a streaming export needs a unidirectional model (model.bidirectional=false); "
            "export this one without --streaming"
        )
    s, M, V = model.subsample, c.input_size, c.vocab_size
    inputs: dict[str, Shape] = {"features": ("batch", "time", M)}
    outputs: dict[str, Shape] = {"log_probs": ("batch", "frames", V)}
    example: list[Tensor] = [torch.randn(2, 4 * s, M)]
    states = state_shapes(model.rnn.module)
    if mode is None:
        inputs["lengths"] = ("batch",)
        outputs["out_lengths"] = ("batch",)
        example.append(torch.tensor([4 * s, 3 * s]))
        what = "acoustic model: features and lengths -> CTC log-probabilities per frame"
    else:
        inputs.update(states)
        outputs.update({f"{n}_n": sh for n, sh in states.items()})
        example += [torch.zeros(sh[0], 2, sh[2]) for sh in states.values()]
        what = f"acoustic model, streaming: a chunk of frames (a multiple of {s}) and the state"
    wrapper = _Acoustic(model, chunk=mode is not None)
    target = export_graph(wrapper, example, path, inputs=inputs, outputs=outputs, doc=what)
    f = est.config.features
    feed = ", ".join(f"{n}_n back as {n}" for n in states)
    write_sidecar(
        target,
        {
            "app": "speech",
            "what": what,
            "graphs": [describe(target)],
            "labels": ["<blank>", *est.vocab_.chars_],  # index = label id; 0 is the CTC blank
            "subsample": s,
            "features": {
                "sample_rate": f.sample_rate,
                "n_mels": f.n_mels,
                "win_length": f.win_length,
                "hop_length": f.hop_length,
                "norm": f.norm,
            },
            "frame_seconds": f.hop_length * s / f.sample_rate,
            "bidirectional": bool(c.bidirectional),
            "state": {n: list(sh) for n, sh in states.items()} if mode else {},
            "usage": (
                "features are normalised log-mel frames (B, T, n_mels); out frames = T // "
                "subsample; greedy CTC: argmax per frame, merge repeats, drop the blank (id 0)"
                + ("" if mode is None else f"; chunks from zero state, feed {feed}")
            ),
            "not_in_graph": [
                "feature extraction: audio -> normalised log-mel frames "
                "(rnnkit.speech.features.LogMel with the saved features.json)",
                "CTC decoding: greedy (a few lines) or prefix beam search with the character "
                "LM (rnnkit.speech.decode, in Python)",
            ],
        },
    )
    return target
