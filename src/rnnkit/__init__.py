"""rnnkit: recurrent neural networks you can read, verify and use.

The public API is what this module exports (``__all__``) plus the packages
``rnnkit.nn`` (torch building blocks) and ``rnnkit.reference`` (the NumPy
engine with hand-written BPTT). Everything else is internal::

    from rnnkit import (Forecaster, SentimentClassifier, TextGenerator, Translator,
                        SpeechRecognizer, SequenceRegressor, SequenceClassifier)

All seven follow one estimator contract (:mod:`rnnkit.estimator`): keyword or
preset construction, ``fit(...) -> self``, ``predict``/``evaluate``,
``save(dir)``/``Cls.load(dir)``, :class:`NotFittedError`, and the same
``device=``/``threads=``/``seed=``/``verbose=`` options. They are imported on
first use, so ``import rnnkit`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from rnnkit.errors import NotFittedError, UserError

__version__ = "0.2.0"

# public name -> module that defines it (imported on first access, PEP 562)
_LAZY = {
    "Forecaster": "rnnkit.forecast.estimator",
    "SentimentClassifier": "rnnkit.sentiment.estimator",
    "TextGenerator": "rnnkit.textgen.estimator",
    "Translator": "rnnkit.translate.estimator",
    "SpeechRecognizer": "rnnkit.speech.estimator",
    "SequenceRegressor": "rnnkit.sequence.estimator",
    "SequenceClassifier": "rnnkit.sequence.estimator",
    "nn": "rnnkit.nn",
    "reference": "rnnkit.reference",
}

__all__ = ["NotFittedError", "UserError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")
    value = importlib.import_module(module)
    if name not in ("nn", "reference"):
        value = getattr(value, name)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
