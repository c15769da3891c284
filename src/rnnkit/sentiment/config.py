"""The sentiment config tree: data, model and train sections, plus the run's own keys.

Values come from these defaults <- a preset (``rnnkit/sentiment/presets/NAME.toml``)
<- dotted overrides (``model.cell=gru``; :func:`load_config`). The model's
config, :class:`TextClassifierConfig`, lives here rather than in
:mod:`rnnkit.sentiment.model`, so that the config tree imports nothing of the
application (imports run config <- data <- model <- estimator <- cli).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from rnnkit import config as config_lib
from rnnkit.errors import UserError
from rnnkit.training import TrainConfig

__all__ = [
    "POOLINGS",
    "SentimentConfig",
    "SentimentDataConfig",
    "RESUME_KEYS",
    "SELECT_ON",
    "TextClassifierConfig",
    "check_config",
    "load_config",
]

POOLINGS = ("last", "mean", "max", "maxmean", "attention")
# What model selection (best evaluation, early stopping) reads on sst2 and sst2-phrases:
# "dev", SST-2's dev sentences; "train", a seeded data.val_fraction of SST-2's training
# sentences held out of training with every phrase inside them (rnnkit.sentiment.selection).
SELECT_ON = ("dev", "train")


@dataclass(kw_only=True)
class SentimentDataConfig:
    source: str = "sst2"  # sst2 | imdb | a .csv/.tsv/.jsonl file
    val_source: str = ""  # "": the dataset's dev split (sst2) or val_fraction of source
    # sst2 / sst2-phrases: validate on "dev" (sst2:dev) or "train" (a seeded val_fraction of
    # the training sentences, held out with every phrase inside them; dev is left for the
    # reported figure). Sources without a dev split always hold out val_fraction.
    select_on: str = "dev"
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
    max_len: int = 400  # tokens kept: the first and last max_len/2 of longer texts; 0 = all
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
        # > 0: at most this many steps (with epochs > 0 the run ends at whichever comes
        # first); 0: no cap, epochs decide. See check_config.
        max_steps=0,
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
        checkpoint_interval=200,  # kill -9 loses at most this many steps
        log_interval=50,
    )


@dataclass(kw_only=True)
class SentimentConfig:
    data: SentimentDataConfig = field(default_factory=SentimentDataConfig)
    model: TextClassifierConfig = field(default_factory=TextClassifierConfig)
    train: TrainConfig = field(default_factory=_default_train)
    # > 0: train for epochs x batches per epoch steps (train.max_steps > 0 caps it);
    # 0: train.max_steps alone sets the length
    epochs: int = 10
    evals_per_epoch: int = 1  # with epochs > 0: evaluations (and early-stopping checks) per epoch
    adversarial_eps: float = 0.0  # > 0: adversarial training on the embeddings (Miyato 2017)
    # > 1: train this many models (seeds train.seed, +1, ...) and average their
    # probabilities; each member is a run in RUN_DIR/member<k> (rnnkit.sentiment.ensemble)
    ensemble: int = 1
    run_dir: str = "runs/sentiment"  # the command line's default --run-dir


# Keys a resumed run must share with the run it continues: the model's shape and what
# the tokenizer and labels are fitted on (rnnkit.training.resume.check_resume_config).
RESUME_KEYS = (
    "model.",
    "data.source",
    "data.val_source",
    "data.select_on",
    "data.val_fraction",
    "data.text_column",
    "data.label_column",
    "data.tokenizer",
    "data.lowercase",
    "data.min_freq",
    "data.max_vocab",
    "data.subword_vocab_size",
    "data.oov_pieces",
    "data.vectors",
)


def load_config(
    *, preset: str | None = None, overrides: Iterable[str] | Mapping[str, Any] = ()
) -> SentimentConfig:
    """Defaults <- ``rnnkit/sentiment/presets/<preset>.toml`` <- overrides
    (``["model.cell=gru"]`` or ``{"model.cell": "gru"}``)."""
    return config_lib.load_config(
        SentimentConfig, app="sentiment", preset=preset, overrides=overrides
    )


def check_config(cfg: SentimentConfig) -> None:
    """Every check that needs no data, so a bad value fails before anything is read.

    The run length: ``epochs`` > 0 trains for that many passes over the data,
    ended early by ``train.max_steps`` (when > 0) or ``train.max_seconds``
    (when > 0), whichever comes first; ``epochs = 0`` needs ``train.max_steps``.
    """
    for key, tp, _ in config_lib.config_fields(type(cfg)):
        value: Any = cfg
        for part in key.split("."):
            value = getattr(value, part)
        if tp is float and not math.isfinite(value):
            raise UserError(f"{key} must be a finite number, got {value}")
    if cfg.epochs < 0 or cfg.train.max_steps < 0:
        raise UserError(
            f"epochs and train.max_steps must be >= 0, got {cfg.epochs} and {cfg.train.max_steps}"
        )
    if cfg.epochs == 0 and cfg.train.max_steps == 0:
        raise UserError("the run has no length: set epochs > 0 or train.max_steps > 0")
    if cfg.epochs > 0 and cfg.evals_per_epoch < 1:
        raise UserError(f"evals_per_epoch must be >= 1, got {cfg.evals_per_epoch}")
    if cfg.ensemble < 1:
        raise UserError(f"ensemble must be >= 1, got {cfg.ensemble}")
    if cfg.adversarial_eps < 0:
        raise UserError(f"adversarial_eps must be >= 0, got {cfg.adversarial_eps}")
    # max_steps 0 (no cap) is the app's own convention; the loop gets the real length.
    replace(cfg.train, max_steps=max(1, cfg.train.max_steps)).validate()
    replace(cfg.model, vocab_size=max(1, cfg.model.vocab_size), num_classes=2).validate()
    d = cfg.data
    if d.tokenizer not in ("word", "subword"):
        raise UserError(f"data.tokenizer must be word or subword, got {d.tokenizer!r}")
    if d.class_weights not in ("none", "balanced"):
        raise UserError(f"data.class_weights must be none or balanced, got {d.class_weights!r}")
    if d.tokenizer == "subword" and d.subword_vocab_size < 260:
        raise UserError(
            f"data.subword_vocab_size must be >= 260 (256 bytes + specials), got "
            f"{d.subword_vocab_size}"
        )
    if d.vectors and d.tokenizer != "word":
        raise UserError("data.vectors needs data.tokenizer=word (vectors are per word)")
    if d.batch_size < 1:
        raise UserError(f"data.batch_size must be >= 1, got {d.batch_size}")
    for name in ("max_len", "min_freq", "max_vocab", "subword_vocab_size", "oov_pieces"):
        if getattr(d, name) < 0:
            raise UserError(f"data.{name} must be >= 0, got {getattr(d, name)}")
    if d.select_on not in SELECT_ON:
        raise UserError(f"data.select_on must be dev or train, got {d.select_on!r}")
    if d.select_on == "train" and d.val_source:
        raise UserError(
            "data.select_on=train holds validation out of the training data, data.val_source "
            "names other validation data; set one of the two"
        )
    # sst2 and sst2-phrases have a dev split (rnnkit.sentiment.readers.SST2_DEV_SETS)
    has_dev = d.source.partition(":")[0] in ("sst2", "sst2-phrases")
    held_out = not d.val_source and (not has_dev or d.select_on == "train")
    if held_out and not 0.0 < d.val_fraction < 1.0:
        raise UserError(
            f"data.val_fraction must be in (0, 1) when there is no data.val_source, got "
            f"{d.val_fraction}"
        )
