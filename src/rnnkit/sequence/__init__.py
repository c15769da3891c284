"""Generic sequence estimators for plain arrays: SequenceRegressor and SequenceClassifier.

RNNs of the ``rnnkit.nn`` registry (rnn, lstm, gru, mingru, minlstm) on NumPy
or torch arrays of shape (N, T, D), scikit-learn compatible (see
``docs/sequence.md``). ``SequenceConfig`` is what a saved model's
``config.json`` holds.
"""

from rnnkit.sequence.config import (
    SequenceConfig,
    SequenceModelConfig,
    SequenceTrainConfig,
    load_config,
)
from rnnkit.sequence.estimator import SequenceClassifier, SequenceRegressor

__all__ = [
    "SequenceClassifier",
    "SequenceConfig",
    "SequenceModelConfig",
    "SequenceRegressor",
    "SequenceTrainConfig",
    "load_config",
]
