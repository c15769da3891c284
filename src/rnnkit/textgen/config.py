"""The textgen config tree: ``data`` / ``model`` / ``train`` sections and ``load_config``.

Values come from these defaults <- a preset (``rnnkit/textgen/presets/NAME.toml``)
<- dotted overrides (``model.hidden_size=512``). The model section
(:class:`CharLMConfig`) lives here rather than in :mod:`rnnkit.textgen.model`
because imports run one way inside the application (config <- data <- model);
``model.py`` imports it from here. Field names are those of the config.json
files written by earlier versions, so old runs and saved models still load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from rnnkit import config as config_lib
from rnnkit.errors import UserError
from rnnkit.training import TrainConfig

__all__ = [
    "RESUME_KEYS",
    "CharLMConfig",
    "TextDataConfig",
    "TextgenConfig",
    "check_config",
    "load_config",
]


@dataclass(kw_only=True)
class TextDataConfig:
    source: str = "tinyshakespeare"  # built-in dataset name or a UTF-8 text file
    val_fraction: float = 0.1  # the last 10% of the text is validation
    batch_size: int = 64
    seq_len: int = 100  # characters per chunk (the BPTT truncation length)
    mode: str = "tbptt"  # tbptt: contiguous streams, state carried | random: random windows
    batches_per_epoch: int = 1000  # random mode only


@dataclass(kw_only=True)
class CharLMConfig:
    """Shape of a :class:`~rnnkit.textgen.model.CharLM`. ``vocab_size`` comes from the
    fitted vocabulary."""

    vocab_size: int = field(default=0, metadata={"derived": True})  # from the vocabulary
    cell: str = "lstm"  # any name in rnnkit.nn.registry.RECURRENT
    num_layers: int = 2
    hidden_size: int = 256
    embed_dim: int = 64  # D; must equal hidden_size when tie_embeddings
    dropout: float = 0.0  # between recurrent layers and before the head
    tie_embeddings: bool = False

    def validate(self) -> None:
        from rnnkit.nn.registry import RECURRENT

        if self.cell not in RECURRENT:
            raise UserError(f"model.cell must be one of {', '.join(RECURRENT)}, got {self.cell!r}")
        for name in ("vocab_size", "num_layers", "hidden_size", "embed_dim"):
            if getattr(self, name) < 1:
                raise UserError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.tie_embeddings and self.embed_dim != self.hidden_size:
            raise UserError(
                f"model.tie_embeddings needs model.embed_dim == model.hidden_size, got "
                f"{self.embed_dim} and {self.hidden_size}; set both to the same value"
            )


def _default_train() -> TrainConfig:
    return TrainConfig(max_steps=5000, lr=2e-3, min_lr=1e-4, warmup_steps=100, eval_interval=250)


@dataclass(kw_only=True)
class TextgenConfig:
    data: TextDataConfig = field(default_factory=TextDataConfig)
    model: CharLMConfig = field(default_factory=CharLMConfig)
    train: TrainConfig = field(default_factory=_default_train)
    # Where `rnnkit textgen train` writes when --run-dir is not given
    # (TextGenerator.fit takes its own run_dir=).
    run_dir: str = "runs/textgen"


def load_config(*, preset: str | None = None, overrides: Any = ()) -> TextgenConfig:
    """Defaults <- a preset (``rnnkit/textgen/presets/NAME.toml``) <- overrides (``["a.b=1"]``)."""
    return config_lib.load_config(TextgenConfig, app="textgen", preset=preset, overrides=overrides)


# Keys a resumed run must share with the run it continues: the model's shape and the
# text the vocabulary is fitted on (rnnkit.training.resume.check_resume_config).
RESUME_KEYS = ("model.", "data.source", "data.val_fraction")


def check_config(cfg: TextgenConfig) -> None:
    """Every check that needs no data (one-line UserErrors), run before the text is read."""
    for key, tp, _ in config_lib.config_fields(type(cfg)):
        value: Any = cfg
        for part in key.split("."):
            value = getattr(value, part)
        if tp is float and not math.isfinite(value):
            raise UserError(f"{key} must be a finite number, got {value}")
    d = cfg.data
    if d.mode not in ("tbptt", "random"):
        raise UserError(f"data.mode must be tbptt or random, got {d.mode!r}")
    if not 0.0 < d.val_fraction < 1.0:
        raise UserError(f"data.val_fraction must be between 0 and 1, got {d.val_fraction}")
    for name in ("batch_size", "seq_len", "batches_per_epoch"):
        if getattr(d, name) < 1:
            raise UserError(f"data.{name} must be >= 1, got {getattr(d, name)}")
    replace(cfg.model, vocab_size=max(1, cfg.model.vocab_size)).validate()
    cfg.train.validate()
