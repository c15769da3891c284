"""Decoding for sequence-to-sequence models: greedy and batched beam search."""

from __future__ import annotations

from rnnkit.translation.search import beam_search, greedy_search, max_lengths

__all__ = ["beam_search", "greedy_search", "max_lengths"]
