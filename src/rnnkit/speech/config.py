"""The speech application's config tree: data, features, model and train sections.

Values come from the defaults here <- a preset (``rnnkit/speech/presets/NAME.toml``)
<- dotted overrides (``model.cell=gru``). The key names are those of the
``config.json`` that every saved model holds, so folders written by earlier
versions load unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rnnkit import config as config_lib
from rnnkit.errors import UserError
from rnnkit.training import TrainConfig

__all__ = [
    "AugmentConfig",
    "CTCASRConfig",
    "FeatureConfig",
    "SpeechConfig",
    "SpeechDataConfig",
    "load_config",
]

CELLS = ("lstm", "gru", "rnn")


@dataclass(kw_only=True)
class SpeechDataConfig:
    source: str = "fsdd"  # fsdd | a .csv/.tsv/.jsonl manifest | a LibriSpeech-style folder
    task: str = "words"  # words: utterances as given | connected: joined clips (1-7 words)
    split: str = "take"  # fsdd: take (takes 5-9 test, 10-14 val) | speaker (holdout_speaker)
    holdout_speaker: str = "theo"  # split=speaker: the test speaker
    val_fraction: float = 0.1  # manifests/folders: random validation share
    speakers: str = ""  # fsdd: comma-separated speakers to use; empty = all six
    max_take: int = 0  # fsdd: use takes 5..max_take only (small runs); 0 = all (5-49)
    connected_train: int = 3000  # task=connected: utterances per split (val/test: a tenth)
    min_words: int = 1
    max_words: int = 7
    batch_size: int = 32
    lm_order: int = 3  # character n-gram LM fitted on the training transcripts
    # Training utterances longer than this many seconds are skipped and counted (one
    # 10-minute clip pads its whole batch and stalls backward for minutes); 0 = no limit.
    # evaluate/transcribe take audio of any length.
    max_audio_seconds: float = 60.0

    def validate(self) -> None:
        if self.task not in ("words", "connected"):
            raise UserError(f"data.task must be words or connected, got {self.task!r}")
        if self.split not in ("take", "speaker"):
            raise UserError(f"data.split must be take or speaker, got {self.split!r}")
        if self.batch_size <= 0:
            raise UserError(f"data.batch_size must be > 0, got {self.batch_size}")
        if not (math.isfinite(self.max_audio_seconds) and self.max_audio_seconds >= 0):
            raise UserError(
                f"data.max_audio_seconds must be >= 0 (0: no limit), got {self.max_audio_seconds}"
            )


@dataclass(kw_only=True)
class FeatureConfig:
    """Log-mel features and SpecAugment (see :mod:`rnnkit.speech.features`)."""

    sample_rate: int = 8000  # audio is resampled to this rate
    win_ms: float = 25.0  # analysis window (and FFT size)
    hop_ms: float = 10.0  # frame shift
    n_mels: int = 40
    fmin: float = 0.0
    fmax: float = 0.0  # 0 = sample_rate / 2
    # global: train mean/std | cmn: the utterance's mean over its speech frames (gain and
    # microphone invariant; not streamable), train std | causal_cmn: the running speech mean
    # up to each frame (streamable) | utterance: own mean/std | none
    norm: str = "global"
    time_masks: int = 2  # SpecAugment (training only): number of time masks
    time_mask_width: int = 8  # max frames per time mask
    freq_masks: int = 2  # number of frequency masks
    freq_mask_width: int = 6  # max mel channels per frequency mask
    time_warp: int = 0  # SpecAugment time warping: max shift of the warp point, frames; 0 = off
    # Silence appended to the end of every utterance (training, scoring, transcribing; a
    # stream gets it when its input ends): time for a unidirectional model to emit what it
    # heard last. 0 = none.
    tail_ms: float = 0.0

    def validate(self) -> None:
        if self.sample_rate <= 0:
            raise UserError(f"features.sample_rate must be > 0, got {self.sample_rate}")
        if not (math.isfinite(self.tail_ms) and 0 <= self.tail_ms <= 10_000):
            raise UserError(f"features.tail_ms must be in [0, 10000], got {self.tail_ms}")
        if self.win_ms <= 0 or self.hop_ms <= 0:
            raise UserError(
                f"features.win_ms and features.hop_ms must be > 0, got {self.win_ms}, {self.hop_ms}"
            )
        if self.norm not in ("global", "cmn", "causal_cmn", "utterance", "none"):
            raise UserError(
                "features.norm must be global, cmn, causal_cmn, utterance or none, got "
                f"{self.norm!r}"
            )
        for name in ("time_masks", "time_mask_width", "freq_masks", "freq_mask_width", "time_warp"):
            if getattr(self, name) < 0:
                raise UserError(f"features.{name} must be >= 0, got {getattr(self, name)}")
        # The same checks as features.mel_filterbank, with the same messages.
        if self.n_mels <= 0:
            raise UserError(f"n_mels must be > 0, got {self.n_mels}")
        fmax = self.sample_rate / 2 if self.fmax <= 0 else self.fmax
        if not 0 <= self.fmin < fmax <= self.sample_rate / 2:
            raise UserError(
                f"need 0 <= fmin < fmax <= sample_rate / 2, got fmin={self.fmin}, fmax={fmax}, "
                f"sample_rate={self.sample_rate}"
            )

    @property
    def win_length(self) -> int:
        return int(round(self.sample_rate * self.win_ms / 1000))

    @property
    def hop_length(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))


@dataclass(kw_only=True)
class AugmentConfig:
    """Training-time audio augmentation (see :mod:`rnnkit.speech.augment`); all off by default.

    Any setting above 0 makes training compute features batch by batch from the
    augmented audio instead of once.
    """

    speed: float = 0.0  # speed perturbation: factor uniform in [1 - speed, 1 + speed]
    vtlp: float = 0.0  # vocal tract length perturbation: warp in [1 - vtlp, 1 + vtlp]
    noise_prob: float = 0.0  # share of utterances mixed with white/pink/brown noise or babble
    snr_min_db: float = 5.0  # signal-to-noise ratio of that noise, uniform in [min, max]
    snr_max_db: float = 30.0
    reverb_prob: float = 0.0  # share of utterances convolved with a synthetic room response
    pad_prob: float = 0.0  # share given leading/trailing silence (zeros or faint noise)
    pad_seconds: float = 0.5  # at most this much silence on each side
    gain_db: float = 0.0  # random gain in [-gain_db, +gain_db]

    @property
    def active(self) -> bool:
        return any(
            v > 0
            for v in (
                self.speed,
                self.vtlp,
                self.noise_prob,
                self.reverb_prob,
                self.pad_prob,
                self.gain_db,
            )
        )

    def validate(self) -> None:
        for name in ("speed", "vtlp"):
            if not 0.0 <= getattr(self, name) < 0.5:
                raise UserError(f"augment.{name} must be in [0, 0.5), got {getattr(self, name)}")
        for name in ("noise_prob", "reverb_prob", "pad_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UserError(f"augment.{name} must be in [0, 1], got {getattr(self, name)}")
        if not self.snr_min_db <= self.snr_max_db:
            raise UserError(
                f"augment.snr_min_db must be <= augment.snr_max_db, got {self.snr_min_db} "
                f"and {self.snr_max_db}"
            )
        for name in ("pad_seconds", "gain_db"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0.0 <= v <= 60.0):
                raise UserError(f"augment.{name} must be in [0, 60], got {v}")
        for name in ("snr_min_db", "snr_max_db"):
            if not math.isfinite(getattr(self, name)):
                raise UserError(f"augment.{name} must be a finite number")


@dataclass(kw_only=True)
class CTCASRConfig:
    """Shape of a :class:`~rnnkit.speech.model.CTCASR`. ``input_size`` and ``vocab_size``
    come from the data."""

    input_size: int = field(default=0, metadata={"derived": True})  # n_mels
    vocab_size: int = field(default=0, metadata={"derived": True})  # characters + blank
    # 2-D convolutions over (time, mel) before the front end, channels; 0 = none. Their
    # 3x3 kernels look one frame ahead each: bidirectional (offline) models only.
    spec_channels: int = 0
    conv_channels: int = 128  # front end width; 0 = no front end
    subsample: int = 2  # front end kernel = stride (time subsampling factor)
    cell: str = "lstm"  # lstm | gru | rnn
    num_layers: int = 2
    hidden_size: int = 128
    bidirectional: bool = True  # False: streamable
    dropout: float = 0.1  # between recurrent layers and before the output layer

    def validate(self) -> None:
        if self.cell not in CELLS:
            raise UserError(f"model.cell must be one of {', '.join(CELLS)}, got {self.cell!r}")
        for name in ("input_size", "vocab_size", "num_layers", "hidden_size", "subsample"):
            if getattr(self, name) < 1:
                raise UserError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.conv_channels < 0:
            raise UserError(f"model.conv_channels must be >= 0, got {self.conv_channels}")
        if self.spec_channels < 0:
            raise UserError(f"model.spec_channels must be >= 0, got {self.spec_channels}")
        if self.spec_channels and not self.bidirectional:
            raise UserError(
                "model.spec_channels needs model.bidirectional=true: its kernels look ahead, "
                "so a streaming model cannot use it; set model.spec_channels=0"
            )
        if self.conv_channels == 0 and self.subsample != 1:
            raise UserError(
                "model.subsample needs the front end: set model.conv_channels > 0 or "
                "model.subsample=1"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"model.dropout must be in [0, 1), got {self.dropout}")


def _default_train() -> TrainConfig:
    return TrainConfig(
        max_steps=2000,
        lr=3e-3,
        min_lr=1e-4,
        warmup_steps=100,
        eval_interval=200,
        checkpoint_interval=500,
        eval_metric="val_wer",
        eval_mode="min",
        carry_state=False,
        grad_clip=5.0,
    )


@dataclass(kw_only=True)
class SpeechConfig:
    data: SpeechDataConfig = field(default_factory=SpeechDataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: CTCASRConfig = field(default_factory=CTCASRConfig)
    train: TrainConfig = field(default_factory=_default_train)
    run_dir: str = "runs/speech"  # the command line's default --run-dir


def load_config(
    *, preset: str | None = None, overrides: Iterable[str] | Mapping[str, Any] = ()
) -> SpeechConfig:
    """Defaults <- ``rnnkit/speech/presets/<preset>.toml`` <- overrides (``["model.cell=gru"]``)."""
    return config_lib.load_config(SpeechConfig, app="speech", preset=preset, overrides=overrides)
