"""Speech recognition helpers: CTC decoders and a character n-gram language model."""

from __future__ import annotations

from rnnkit.speech.decode import (
    CharNgramLM,
    Decoded,
    Word,
    greedy_decode,
    prefix_beam_search,
    word_times,
)

__all__ = [
    "CharNgramLM",
    "Decoded",
    "Word",
    "greedy_decode",
    "prefix_beam_search",
    "word_times",
]
