"""Speech recognition: log-mel features -> recurrent acoustic model -> CTC -> text.

``from rnnkit import SpeechRecognizer`` is the entry point; this package also
exports its config classes and :func:`load_config`, and the two small records
``fit`` and ``transcribe`` speak in (:class:`Utterance`, :class:`Transcript`).
Modules, each importing only those above it: config (the config tree),
features (audio, log-mels), data (sources, splits), decode (CTC decoders, LM,
error rates), batches (vocabulary, encoding, batches), model (CTCASR), plots,
estimator (SpeechRecognizer), cli. See docs/speech.md.
"""

from __future__ import annotations

from rnnkit.speech.config import (
    CTCASRConfig,
    FeatureConfig,
    SpeechConfig,
    SpeechDataConfig,
    load_config,
)
from rnnkit.speech.data import Utterance
from rnnkit.speech.decode import Transcript
from rnnkit.speech.estimator import SpeechRecognizer

__all__ = [
    "CTCASRConfig",
    "FeatureConfig",
    "SpeechConfig",
    "SpeechDataConfig",
    "SpeechRecognizer",
    "Transcript",
    "Utterance",
    "load_config",
]
