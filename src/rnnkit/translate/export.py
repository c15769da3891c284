"""ONNX export of a fitted Translator's network (``Translator.export_onnx``).

Two graphs, the :class:`~rnnkit.translate.model.Seq2Seq` itself (its own
``encode`` and ``step``, the recurrent stacks as their export twins):

- the encoder, at ``path``: ``src`` (B, S) int64 padded with 0 and
  ``src_len`` (B,) int64 -> ``memory`` (B, S, 2H), ``keys`` (B, S, A),
  ``mask`` (B, S) bool, the decoder's initial ``h`` (L, B, H) [, ``c``] and
  ``feed`` (B, H) (the input-feeding vector, zeros);
- one decoder step, at ``<name>.decoder.onnx``: ``y_prev`` (B,) int64,
  ``memory``, ``keys``, ``mask``, ``h`` [, ``c``], ``feed`` -> ``logits``
  (B, V), ``h_n`` [, ``c_n``], ``feed_n``, ``attention`` (B, S). Start with
  ``y_prev = bos_id`` and the encoder's state; feed ``h_n``, ``c_n``,
  ``feed_n`` back.

Not in the graphs: the subword tokenisers (``tokenizer.json`` of the saved
model), and the search. Greedy decoding is a short loop over the step graph
(docs/export.md); beam search stays in Python (:mod:`rnnkit.translate.search`
runs on the torch model): it reorders the decoder state between steps, which
is host code around the step graph, not part of it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.export.onnx import (
    Shape,
    describe,
    export_copy,
    export_graph,
    state_of,
    state_shapes,
    state_tuple,
    write_sidecar,
)
from rnnkit.translate.model import DecoderState, Memory, Seq2Seq

__all__ = ["decoder_path", "export_onnx"]


def decoder_path(path: str | os.PathLike[str]) -> Path:
    """``model.onnx`` -> ``model.decoder.onnx``: where the decoder step graph goes."""
    p = Path(path)
    return p.with_name(f"{p.stem}.decoder{p.suffix or '.onnx'}")


class _Encoder(nn.Module):
    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model

    def forward(self, src: Tensor, src_len: Tensor) -> tuple[Tensor, ...]:
        memory, state = self.model.encode(src, src_len)
        return (*memory, *state_tuple(state.rnn), state.feed)


class _DecoderStep(nn.Module):
    def __init__(self, model: Seq2Seq, lstm: bool) -> None:
        super().__init__()
        self.model, self.lstm = model, lstm

    def forward(
        self,
        y_prev: Tensor,
        memory: Tensor,
        keys: Tensor,
        mask: Tensor,
        h: Tensor,
        c_or_feed: Tensor,
        feed: Tensor | None = None,
    ) -> tuple[Tensor, ...]:
        """Inputs ``..., h, c, feed`` for LSTM, ``..., h, feed`` otherwise."""
        c, feed = (c_or_feed, feed) if self.lstm else (None, c_or_feed)
        state = DecoderState(state_of(h, c), feed)
        logits, state, attention = self.model.step(y_prev, state, Memory(memory, keys, mask))
        return (logits, *state_tuple(state.rnn), state.feed, attention)


def export_onnx(est: Any, path: str | os.PathLike[str], *, streaming: bool | str = False) -> Path:
    """Write the encoder graph to ``path`` and the decoder step graph beside it
    (``<name>.decoder.onnx``); the decoder is always a step graph, so ``streaming``
    changes nothing. Returns ``path``."""
    model = export_copy(est.model_, "encoder", "decoder")
    c = model.config
    H, V = c.hidden_size, c.tgt_vocab_size
    states = state_shapes(model.decoder.module)  # (L, batch, H) each
    src, src_len = torch.ones(2, 3, dtype=torch.long), torch.tensor([3, 2])
    with torch.no_grad():
        memory, init = model.encode(src, src_len)
    A = memory.keys.size(-1)
    mem_shapes: dict[str, Shape] = {
        "memory": ("batch", "source", 2 * H),
        "keys": ("batch", "source", A),
        "mask": ("batch", "source"),
    }
    enc_out: dict[str, Shape] = {**mem_shapes, **states, "feed": ("batch", H)}
    enc_what = "encoder: source ids and lengths -> memory and the decoder's initial state"
    target = export_graph(
        _Encoder(model),
        [src, src_len],
        path,
        inputs={"src": ("batch", "source"), "src_len": ("batch",)},
        outputs=enc_out,
        doc=enc_what,
    )
    dec_in: dict[str, Shape] = {"y_prev": ("batch",), **mem_shapes, **states, "feed": ("batch", H)}
    dec_out: dict[str, Shape] = {
        "logits": ("batch", V),
        **{f"{n}_n": s for n, s in states.items()},
        "feed_n": ("batch", H),
        "attention": ("batch", "source"),
    }
    example = [torch.full((2,), model.bos_id), *memory, *state_tuple(init.rnn), init.feed]
    dec_what = "one decoder step: previous token, memory, state -> logits, next state, attention"
    decoder = export_graph(
        _DecoderStep(model, "c" in states),
        example,
        decoder_path(target),
        inputs=dec_in,
        outputs=dec_out,
        doc=dec_what,
    )
    write_sidecar(
        target,
        {
            "app": "translate",
            "what": f"{enc_what}; {decoder.name}: {dec_what}",
            "graphs": [describe(target), describe(decoder)],
            "bos_id": model.bos_id,
            "eos_id": model.eos_id,
            "pad_id": 0,
            "max_len_ratio": est.config.decode.max_len_ratio,
            "usage": (
                "encode once; then y_prev = bos_id and, each step, y_prev = argmax(logits) "
                "with h_n, c_n, feed_n fed back as h, c, feed, until eos_id or "
                "max(10, ceil(max_len_ratio * source length)) steps (then eos_id)"
            ),
            "not_in_graph": [
                "the subword tokenisers (tokenizer.json of the saved model: src and tgt)",
                "the search: greedy is a loop over the decoder step graph; beam search stays "
                "in Python (rnnkit.translate.search, on the torch model)",
            ],
        },
    )
    return target
