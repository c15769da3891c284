"""The translation config tree: data, model, train and decode sections.

Values come from these defaults <- a preset (``rnnkit/translate/presets/NAME.toml``)
<- dotted overrides (``model.hidden_size=512``; :func:`load_config`). The
model's config, :class:`Seq2SeqConfig`, lives here too rather than in
:mod:`rnnkit.translate.model`, so that the config tree imports nothing of the
application (imports run config <- data <- model <- estimator <- cli).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from rnnkit import config as config_lib
from rnnkit.errors import UserError
from rnnkit.nn.attention import ATTENTION_TYPES
from rnnkit.training import TrainConfig

__all__ = [
    "MAX_LEN_RATIO",
    "RESUME_KEYS",
    "DecodeConfig",
    "Seq2SeqConfig",
    "TranslateConfig",
    "TranslateDataConfig",
    "check_config",
    "check_decode",
    "load_config",
    "plan_steps",
]


@dataclass(kw_only=True)
class TranslateDataConfig:
    source: str = "multi30k"  # multi30k | SRC_FILE,TGT_FILE | FILE.tsv (gzip accepted)
    src_lang: str = "en"  # multi30k only: en or de
    tgt_lang: str = "de"
    val_source: str = ""  # "": multi30k -> its validation split, else the last val_fraction
    val_fraction: float = 0.05
    vocab_size: int = 8000  # byte-level BPE vocabulary per language (>= 260)
    max_tokens: int = 100  # training pairs with a longer side (subword tokens) are dropped
    batch_size: int = 64
    bleu_sentences: int = 0  # validation sentences decoded for BLEU at each evaluation; 0 = all
    # BPE-dropout (Provilkov et al. 2020) of the training pairs, both sides, drawn again every
    # epoch (seeded); validation and translation always segment deterministically. 0 = off
    bpe_dropout: float = 0.0


@dataclass(kw_only=True)
class Seq2SeqConfig:
    """The encoder-decoder's shape (:class:`rnnkit.translate.model.Seq2Seq`)."""

    src_vocab_size: int = field(default=0, metadata={"derived": True})  # from the tokenizer
    tgt_vocab_size: int = field(default=0, metadata={"derived": True})  # incl. BOS and EOS
    cell: str = "gru"  # gru | lstm
    embed_dim: int = 256
    hidden_size: int = 256  # decoder state; the encoder has hidden_size per direction
    num_layers: int = 1  # decoder layers, and encoder layers unless encoder_layers is set
    encoder_layers: int = 0  # bidirectional encoder layers; 0 = num_layers
    attention: str = "multiplicative"  # multiplicative (Luong general) | additive (Bahdanau)
    input_feeding: bool = True
    dropout: float = 0.2
    tie_embeddings: bool = False  # output matrix = target embeddings (needs embed_dim == hidden)

    def validate(self) -> None:
        if self.cell not in ("gru", "lstm"):
            raise UserError(f"model.cell must be gru or lstm, got {self.cell!r}")
        if self.attention not in ATTENTION_TYPES:
            raise UserError(
                f"model.attention must be one of {', '.join(ATTENTION_TYPES)}, "
                f"got {self.attention!r}"
            )
        for name in ("embed_dim", "hidden_size", "num_layers"):
            if getattr(self, name) <= 0:
                raise UserError(f"model.{name} must be > 0, got {getattr(self, name)}")
        if self.encoder_layers < 0:
            raise UserError(
                f"model.encoder_layers must be >= 0 (0 = model.num_layers), got "
                f"{self.encoder_layers}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.tie_embeddings and self.embed_dim != self.hidden_size:
            raise UserError(
                f"model.tie_embeddings needs model.embed_dim == model.hidden_size, got "
                f"{self.embed_dim} and {self.hidden_size}; set them equal or turn tying off"
            )
        if self.src_vocab_size < 3 or self.tgt_vocab_size < 4:
            raise ValueError(
                f"vocabulary sizes must come from fitted tokenizers, got src "
                f"{self.src_vocab_size}, tgt {self.tgt_vocab_size}"
            )


@dataclass(kw_only=True)
class DecodeConfig:
    beam: int = 5  # 1 = greedy
    alpha: float = 1.0  # length normalisation: score / length ** alpha
    max_len_ratio: float = 2.0  # at most max(10, ceil(ratio * source tokens)) output tokens; <= 10
    batch_size: int = 64


def _default_train() -> TrainConfig:
    return TrainConfig(
        max_steps=5000,
        lr=2e-3,
        min_lr=1e-4,
        warmup_steps=200,
        eval_interval=500,
        checkpoint_interval=500,
        eval_metric="bleu",
        eval_mode="max",
        carry_state=False,
    )


@dataclass(kw_only=True)
class TranslateConfig:
    data: TranslateDataConfig = field(default_factory=TranslateDataConfig)
    model: Seq2SeqConfig = field(default_factory=Seq2SeqConfig)
    train: TrainConfig = field(default_factory=_default_train)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    label_smoothing: float = 0.1
    sampling_ratio: float = 0.0  # scheduled sampling: feed own predictions with this probability
    # > 0: epochs x batches per epoch steps, BLEU evaluated every epoch (train.max_steps > 0
    # ends the run earlier if it comes first); 0: train.max_steps alone sets the length
    epochs: int = 0
    # K > 1: at the end of fit, average the weights of the last K evaluation points and keep
    # the average if it scores better on validation (train.eval_metric) than the kept model
    average_last: int = 0
    run_dir: str = "runs/translate"


def load_config(
    *, preset: str | None = None, overrides: Iterable[str] | Mapping[str, Any] = ()
) -> TranslateConfig:
    """Defaults <- ``rnnkit/translate/presets/<preset>.toml`` <- overrides."""
    return config_lib.load_config(
        TranslateConfig, app="translate", preset=preset, overrides=overrides
    )


# Keys a resumed run must share with the run it continues: the model's shape and what
# the tokenisers are fitted on (rnnkit.training.resume.check_resume_config).
RESUME_KEYS = (
    "model.",
    "data.source",
    "data.src_lang",
    "data.tgt_lang",
    "data.val_source",
    "data.val_fraction",
    "data.vocab_size",
)

# Output limit: at most MAX_LEN_RATIO x the source tokens (subword pieces of both sides
# rarely differ by more than 3x); a larger ratio only lets an untrained model babble.
MAX_LEN_RATIO = 10.0


def check_config(cfg: TranslateConfig) -> None:
    """Every check that needs no data (one-line UserErrors), run before anything is read.

    The run length: ``epochs`` > 0 trains for that many passes over the data,
    ended early by ``train.max_steps`` (when > 0) or ``train.max_seconds``
    (when > 0), whichever comes first; ``epochs = 0`` trains ``train.max_steps``.
    """
    for key, tp, _ in config_lib.config_fields(type(cfg)):
        value: Any = cfg
        for part in key.split("."):
            value = getattr(value, part)
        if tp is float and not math.isfinite(value):
            raise UserError(f"{key} must be a finite number, got {value}")
    if not 0.0 <= cfg.label_smoothing < 1.0:
        raise UserError(f"label_smoothing must be in [0, 1), got {cfg.label_smoothing}")
    if not 0.0 <= cfg.sampling_ratio <= 1.0:
        raise UserError(f"sampling_ratio must be in [0, 1], got {cfg.sampling_ratio}")
    if cfg.epochs < 0 or cfg.train.max_steps < 0:
        raise UserError(
            f"epochs and train.max_steps must be >= 0, got {cfg.epochs} and {cfg.train.max_steps}"
        )
    if cfg.epochs == 0 and cfg.train.max_steps == 0:
        raise UserError("the run has no length: set epochs > 0 or train.max_steps > 0")
    if cfg.average_last < 0 or cfg.average_last == 1:
        raise UserError(
            f"average_last must be 0 (off) or the number of evaluation points to average "
            f"(>= 2), got {cfg.average_last}"
        )
    # max_steps 0 (no cap, epochs decide) is the app's convention; the loop gets the length.
    replace(cfg.train, max_steps=max(1, cfg.train.max_steps)).validate()
    replace(cfg.model, src_vocab_size=260, tgt_vocab_size=262).validate()
    d = cfg.data
    for name in ("max_tokens", "batch_size"):
        if getattr(d, name) < 1:
            raise UserError(f"data.{name} must be >= 1, got {getattr(d, name)}")
    if d.vocab_size < 260:
        raise UserError(
            f"data.vocab_size must be >= 260 (256 bytes + specials), got {d.vocab_size}"
        )
    if d.bleu_sentences < 0:
        raise UserError(f"data.bleu_sentences must be >= 0 (0 = all), got {d.bleu_sentences}")
    if not 0.0 < d.val_fraction < 1.0:
        raise UserError(f"data.val_fraction must be in (0, 1), got {d.val_fraction}")
    if not 0.0 <= d.bpe_dropout < 1.0:
        raise UserError(f"data.bpe_dropout must be in [0, 1) (0 = off), got {d.bpe_dropout}")
    check_decode(cfg.decode.beam, cfg.decode.alpha, cfg.decode.max_len_ratio)
    if cfg.decode.batch_size < 1:
        raise UserError(f"decode.batch_size must be >= 1, got {cfg.decode.batch_size}")


def plan_steps(cfg: TranslateConfig, per_epoch: int) -> tuple[int, int, str]:
    """``(max_steps, eval_interval, the length in words)`` with ``per_epoch`` batches.

    ``epochs`` > 0: epochs x batches, BLEU every epoch; ``train.max_steps`` > 0 ends
    the run earlier when it comes first (``train.max_seconds`` always does).
    ``epochs = 0``: ``train.max_steps`` and ``train.eval_interval``.
    """
    cap = cfg.train.max_steps
    if cfg.epochs <= 0:
        return cap, cfg.train.eval_interval, f"{cap} steps (train.max_steps)"
    planned = cfg.epochs * per_epoch
    if 0 < cap < planned:
        return cap, per_epoch, f"{cap} steps (train.max_steps, before epochs={cfg.epochs} ends)"
    return planned, per_epoch, f"{planned} steps ({cfg.epochs} epochs)"


def check_decode(beam: int, alpha: float, ratio: float) -> None:
    """Decoding options in range (one-line UserErrors naming the value)."""
    if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
        raise UserError(f"beam must be >= 1 (an integer; 1 = greedy), got {beam!r}")
    if not math.isfinite(alpha) or alpha < 0:
        raise UserError(f"alpha (length normalisation) must be a finite number >= 0, got {alpha}")
    if not (math.isfinite(ratio) and 0 < ratio <= MAX_LEN_RATIO):
        raise UserError(
            f"max_len_ratio must be in (0, {MAX_LEN_RATIO:g}] (output tokens per source token), "
            f"got {ratio}"
        )
