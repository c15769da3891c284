"""Neural machine translation: a bidirectional-RNN encoder, an attentional RNN decoder.

The estimator is :class:`Translator` (also ``from rnnkit import Translator``);
its options are the keys of :class:`TranslateConfig` (sections
:class:`TranslateDataConfig`, :class:`Seq2SeqConfig`, ``train`` and
:class:`DecodeConfig`), read from a preset with :func:`load_config`.
"""

from __future__ import annotations

from rnnkit.translate.config import (
    DecodeConfig,
    Seq2SeqConfig,
    TranslateConfig,
    TranslateDataConfig,
    load_config,
)
from rnnkit.translate.estimator import Translator

__all__ = [
    "DecodeConfig",
    "Seq2SeqConfig",
    "TranslateConfig",
    "TranslateDataConfig",
    "Translator",
    "load_config",
]
