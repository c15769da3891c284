"""Character-level text generation: :class:`TextGenerator` and its config.

Inside, imports run one way: ``config`` (the config tree) <- ``data`` (text,
vocabulary, batching) <- ``model`` (the CharLM, its loss and evaluation) <-
``estimator`` (:class:`TextGenerator`) <- ``cli`` (``rnnkit textgen ...``).
"""

from __future__ import annotations

from rnnkit.textgen.config import CharLMConfig, TextDataConfig, TextgenConfig, load_config
from rnnkit.textgen.estimator import TextGenerator

__all__ = ["CharLMConfig", "TextDataConfig", "TextGenerator", "TextgenConfig", "load_config"]
