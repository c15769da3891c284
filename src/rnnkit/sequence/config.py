"""The config tree of the sequence estimators: what ``config.json`` of a saved model holds.

``SequenceRegressor`` and ``SequenceClassifier`` take their hyper-parameters
as explicit constructor arguments (scikit-learn style); this tree is the same
values grouped as every rnnkit application saves them (``model`` and
``train`` sections), so a saved folder is read back with the one config
mechanism of :mod:`rnnkit.config`. The runtime options ``device``,
``threads`` and ``verbose`` are not saved: they belong to the machine, and
``load(directory, device=..., threads=..., verbose=...)`` takes them anew.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rnnkit import config as config_lib

__all__ = [
    "CLASSIFIER_LOSSES",
    "OPTIMIZERS",
    "REGRESSOR_LOSSES",
    "SequenceConfig",
    "SequenceModelConfig",
    "SequenceTrainConfig",
    "load_config",
]

REGRESSOR_LOSSES = ("mse", "mae", "huber")
CLASSIFIER_LOSSES = ("cross_entropy",)
OPTIMIZERS = ("adam", "adamw", "sgd")


@dataclass(kw_only=True)
class SequenceModelConfig:
    """The network: a recurrent module of the registry, then a linear head."""

    cell: str = "rnn"  # rnn | lstm | gru | mingru | minlstm (rnnkit.nn.CELL_NAMES)
    hidden_size: int = 50
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0  # between stacked layers and on the last hidden state


@dataclass(kw_only=True)
class SequenceTrainConfig:
    """The training run (Keras' ``compile`` + ``fit`` arguments)."""

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | adamw | sgd (plain, no momentum)
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # max global gradient norm; 0 = no clipping
    validation_split: float = 0.0  # the last fraction of the rows, as Keras
    early_stopping_patience: int = 0  # epochs without a better val_loss; 0 = off
    loss: str = "mse"  # regressor: mse | mae | huber; classifier: cross_entropy
    seed: int | None = None  # None: a fresh random seed at every fit
    warm_start: bool = False  # fit continues from the fitted weights (scikit-learn's meaning)


@dataclass(kw_only=True)
class SequenceConfig:
    model: SequenceModelConfig = field(default_factory=SequenceModelConfig)
    train: SequenceTrainConfig = field(default_factory=SequenceTrainConfig)


def load_config(
    *, preset: str | None = None, overrides: Iterable[str] | Mapping[str, Any] = ()
) -> SequenceConfig:
    """Defaults <- a preset ``.toml`` file (there are no built-in presets) <- overrides."""
    return config_lib.load_config(
        SequenceConfig, app="sequence", preset=preset, overrides=overrides
    )
