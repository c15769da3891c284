"""The sentiment config tree: data, model and train sections, plus the run's own keys.

Values come from these defaults <- a preset (``rnnkit/sentiment/presets/NAME.toml``)
<- dotted overrides (``model.cell=gru``; :func:`load_config`). The model's
config, :class:`TextClassifierConfig`, lives here rather than in
:mod:`rnnkit.sentiment.model`, so that the config tree imports nothing of the
application (imports run config <- data <- model <- estimator <- cli).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rnnkit import config as config_lib
from rnnkit.errors import UserError
from rnnkit.training import TrainConfig

__all__ = [
    "POOLINGS",
    "SentimentConfig",
    "SentimentDataConfig",
    "TextClassifierConfig",
    "load_config",
]

POOLINGS = ("last", "mean", "max", "maxmean", "attention")


@dataclass(kw_only=True)
class SentimentDataConfig:
    source: str = "sst2"  # sst2 | imdb | a .csv/.tsv/.jsonl file
    val_source: str = ""  # "": the dataset's dev split (sst2) or val_fraction of source
    val_fraction: float = 0.1  # held out of source when there is no dev split (seeded)
    text_column: str = "text"
    label_column: str = "label"
    tokenizer: str = "word"  # word | subword (byte-level BPE, Hugging Face tokenizers)
    lowercase: bool = True
    min_freq: int = 1  # words seen fewer times in training map to <unk>
    max_vocab: int = 30000  # 0 = no limit (word level)
    subword_vocab_size: int = 8000
    # word tokenizer: split words outside the vocabulary into pieces of a WordPiece
    # model of about this many pieces instead of mapping them to <unk> (0 = off)
    oov_pieces: int = 0
    max_len: int = 400  # tokens kept per text: the first and last max_len/2 of longer ones
    batch_size: int = 32
    class_weights: str = "none"  # none | balanced: weight_c = N / (C * N_c) in the loss
    vectors: str = ""  # pretrained word vectors, GloVe/word2vec text file (word level)


@dataclass(kw_only=True)
class TextClassifierConfig:
    """Shape of a :class:`~rnnkit.sentiment.model.TextClassifier`; ``vocab_size`` and
    ``num_classes`` come from the data."""

    vocab_size: int = field(default=0, metadata={"derived": True})
    num_classes: int = field(default=0, metadata={"derived": True})
    cell: str = "lstm"  # rnn | lstm | gru (any name in rnnkit.nn.registry.RECURRENT)
    embed_dim: int = 128
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = True
    pooling: str = "maxmean"  # last | mean | max | maxmean | attention
    dropout: float = 0.5  # between recurrent layers and before the head
    embed_dropout: float = 0.25  # drops whole embedding rows (word vectors)
    word_dropout: float = 0.0  # replaces tokens by <unk> (id 1) in training
    head_hidden: int = 0  # 0: a single linear head; > 0: Linear -> ReLU -> Linear

    def validate(self) -> None:
        from rnnkit.nn.registry import RECURRENT

        if self.cell not in RECURRENT:
            raise UserError(f"model.cell must be one of {', '.join(RECURRENT)}, got {self.cell!r}")
        if self.pooling not in POOLINGS:
            raise UserError(
                f"model.pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}"
            )
        for name in ("vocab_size", "embed_dim", "hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise UserError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_classes < 2:
            raise UserError(f"a classifier needs at least 2 classes, got {self.num_classes}")
        if self.head_hidden < 0:
            raise UserError(f"model.head_hidden must be >= 0, got {self.head_hidden}")
        for name in ("dropout", "embed_dropout", "word_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise UserError(f"model.{name} must be in [0, 1), got {getattr(self, name)}")

    @property
    def pooled_size(self) -> int:
        K = self.hidden_size * (2 if self.bidirectional else 1)
        return 2 * K if self.pooling == "maxmean" else K


def _default_train() -> TrainConfig:
    return TrainConfig(
        max_steps=2000,  # used only when epochs = 0
        lr=2e-3,
        min_lr=1e-4,
        warmup_steps=50,
        weight_decay=1e-4,
        grad_clip=5.0,
        carry_state=False,
        eval_interval=200,  # used only when epochs = 0
        eval_metric="val_score",  # dev accuracy, ties broken by dev loss
        eval_mode="max",
        early_stopping_patience=4,
        checkpoint_interval=0,
        log_interval=50,
    )


@dataclass(kw_only=True)
class SentimentConfig:
    data: SentimentDataConfig = field(default_factory=SentimentDataConfig)
    model: TextClassifierConfig = field(default_factory=TextClassifierConfig)
    train: TrainConfig = field(default_factory=_default_train)
    epochs: int = 10  # > 0: train.max_steps = epochs x batches per epoch
    evals_per_epoch: int = 1  # with epochs > 0: evaluations (and early-stopping checks) per epoch
    adversarial_eps: float = 0.0  # > 0: adversarial training on the embeddings (Miyato 2017)
    # > 1: train this many models (seeds train.seed, +1, ...) and average their
    # probabilities; each member is a run in RUN_DIR/member<k> (rnnkit.sentiment.ensemble)
    ensemble: int = 1
    run_dir: str = "runs/sentiment"  # the command line's default --run-dir


def load_config(
    *, preset: str | None = None, overrides: Iterable[str] | Mapping[str, Any] = ()
) -> SentimentConfig:
    """Defaults <- ``rnnkit/sentiment/presets/<preset>.toml`` <- overrides
    (``["model.cell=gru"]`` or ``{"model.cell": "gru"}``)."""
    return config_lib.load_config(
        SentimentConfig, app="sentiment", preset=preset, overrides=overrides
    )
