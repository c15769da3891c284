"""Waveform and spectrogram augmentation for speaker- and microphone-independent training.

Everything here runs on training utterances only, freshly drawn for every
batch, from a :class:`numpy.random.Generator` seeded by (seed, epoch, batch),
so a resumed run sees the same augmented batches. The settings are the
``augment`` section of the config (:class:`~rnnkit.speech.config.AugmentConfig`);
all are off by default.

Order for one utterance ``x`` (mono samples at ``sample_rate``)::

    speed     resample by a factor in [1 - speed, 1 + speed]       (tempo and pitch;
              Ko et al. 2015, "Audio augmentation for speech recognition")
    reverb    convolve with a synthetic room impulse response     (exponentially decaying
              noise, RT60 0.1-0.6 s, direct path kept)
    noise     add white/pink/brown noise or babble (other training utterances) at an
              SNR drawn from [snr_min_db, snr_max_db]
    pad       leading and trailing silence (digital zeros or faint noise), up to
              pad_seconds each: a microphone recording has silence around the words
    gain      scale by +- gain_db

then log-mels with a vocal-tract-length warp of the frequency axis (VTLP,
Jaitly & Hinton 2013; :func:`rnnkit.speech.features.vtlp_warp`), normalisation, and SpecAugment
(:func:`spec_augment`, with time warping when
``features.time_warp > 0``). :class:`Augmenter` puts these together for the
training batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from rnnkit.speech.config import AugmentConfig, FeatureConfig
from rnnkit.speech.features import LogMel

__all__ = [
    "Augmenter",
    "augment_audio",
    "colored_noise",
    "room_impulse",
    "spec_augment",
    "speed_perturb",
    "time_warp",
]


def speed_perturb(x: np.ndarray, factor: float) -> np.ndarray:
    """``x`` played ``factor`` times faster (length / factor; pitch scales by ``factor``).

    Linear interpolation: for factors within 10% of 1 its aliasing stays far below
    the noise the other augmentations add.
    """
    n = len(x)
    m = max(1, int(round(n / factor)))
    pos = np.arange(m, dtype=np.float64) * factor
    return np.interp(pos, np.arange(n), x).astype(np.float32)


def colored_noise(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise of ``n`` samples: ``white`` (flat), ``pink`` (1/f) or ``brown`` (1/f^2)
    power spectrum."""
    white = rng.standard_normal(n)
    if kind != "white":
        spec = np.fft.rfft(white)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        spec /= np.sqrt(f) if kind == "pink" else f
        white = np.fft.irfft(spec, n)
    rms = float(np.sqrt(np.mean(white**2))) or 1.0
    return (white / rms).astype(np.float32)


def room_impulse(sample_rate: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room impulse response: a unit direct path, then noise decaying by
    60 dB over ``rt60`` seconds (the late reverberation of a diffuse field)."""
    n = max(2, int(rt60 * sample_rate))
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)  # ln(1000) = 6.9: -60 dB at rt60
    tail *= 0.3 / (np.sqrt(np.sum(tail**2)) or 1.0)  # direct-to-reverberant ratio ~ 10 dB
    tail[0] = 1.0
    return tail.astype(np.float32)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def augment_audio(
    x: np.ndarray,
    sample_rate: int,
    cfg: AugmentConfig,
    rng: np.random.Generator,
    babble: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """One random augmentation of mono audio ``x`` (see the module docstring for the order).

    ``babble``: other utterances to mix as babble noise (the training set's audio).
    """
    y = np.asarray(x, dtype=np.float32)
    if cfg.speed > 0:
        y = speed_perturb(y, float(rng.uniform(1 - cfg.speed, 1 + cfg.speed)))
    if cfg.reverb_prob > 0 and rng.random() < cfg.reverb_prob:
        from scipy.signal import fftconvolve

        rir = room_impulse(sample_rate, float(rng.uniform(0.1, 0.6)), rng)
        y = fftconvolve(y, rir)[: len(y)].astype(np.float32)
    if cfg.noise_prob > 0 and rng.random() < cfg.noise_prob:
        kinds = ["white", "pink", "brown"] + (["babble"] if babble else [])
        kind = kinds[int(rng.integers(len(kinds)))]
        if kind == "babble":
            noise = np.zeros(len(y), dtype=np.float32)
            for _ in range(3):
                other = babble[int(rng.integers(len(babble)))]
                start = int(rng.integers(-len(other) + 1, len(y))) if len(y) else 0
                lo, hi = max(start, 0), min(start + len(other), len(y))
                if hi > lo:
                    noise[lo:hi] += other[lo - start : hi - start]
            noise /= _rms(noise) or 1.0
        else:
            noise = colored_noise(len(y), kind, rng)
        snr = float(rng.uniform(cfg.snr_min_db, cfg.snr_max_db))
        y = y + noise * (_rms(y) / 10 ** (snr / 20))
    if cfg.pad_prob > 0 and rng.random() < cfg.pad_prob:
        max_pad = int(cfg.pad_seconds * sample_rate)
        lead, trail = (int(rng.integers(0, max_pad + 1)) for _ in range(2))
        quiet = np.zeros(lead + len(y) + trail, dtype=np.float32)
        if rng.random() < 0.5:  # faint noise rather than digital silence, 40-70 dB down
            level = _rms(y) / 10 ** (float(rng.uniform(40, 70)) / 20)
            quiet += colored_noise(len(quiet), "pink", rng) * level
        quiet[lead : lead + len(y)] += y
        y = quiet
    if cfg.gain_db > 0:
        y = y * np.float32(10 ** (float(rng.uniform(-cfg.gain_db, cfg.gain_db)) / 20))
    return y


class Augmenter:
    """``featurize(audio, labels, rng)`` for :class:`~rnnkit.speech.batches.SpeechBatches`:
    augmented audio -> (VTLP-warped) log-mels -> normalised features (T, M).

    ``features``: the fitted :class:`LogMel`; ``babble``: the training audio (babble
    noise); ``min_frames(labels)``: the fewest frames the transcript needs under
    CTC, times the model's subsampling. An augmentation that leaves too few frames
    (speed-up of a clip that was just long enough) falls back to the clean audio.
    """

    def __init__(
        self,
        features: LogMel,
        config: AugmentConfig,
        *,
        babble: Sequence[np.ndarray] = (),
        min_frames: Callable[[list[int]], int] = lambda labels: 1,
    ) -> None:
        self.features = features
        self.config = config
        self.babble = babble
        self.min_frames = min_frames

    def __call__(self, audio: np.ndarray, labels: list[int], rng: np.random.Generator) -> Tensor:
        c, sr = self.config, self.features.config.sample_rate
        y = augment_audio(audio, sr, c, rng, self.babble)
        alpha = float(rng.uniform(1 - c.vtlp, 1 + c.vtlp)) if c.vtlp > 0 else 1.0
        feats = self.features.logmel(y, vtlp=alpha)
        if feats.size(0) < self.min_frames(labels):
            feats = self.features.logmel(audio)
        return self.features.normalize(feats)


def time_warp(feats: Tensor, n: int, w: int, generator: torch.Generator | None = None) -> Tensor:
    """SpecAugment time warping of one utterance's first ``n`` frames (``feats`` (T, M)).

    A point ``c`` in ``[w + 1, n - w)`` moves to ``c + d``, ``d`` uniform in ``[-w, w]``;
    the frames before and after it are stretched linearly to fill ``[0, c + d)`` and
    ``[c + d, n)``. The length stays ``n``. Returns a new tensor.
    """
    out = feats.clone()
    if w <= 0 or n <= 2 * w + 1:
        return out
    c = int(torch.randint(w + 1, n - w, (1,), generator=generator))
    d = int(torch.randint(-w, w + 1, (1,), generator=generator))
    if d == 0:
        return out
    x = feats[:n].T[None]  # (1, M, n)
    left = torch.nn.functional.interpolate(
        x[..., :c], size=c + d, mode="linear", align_corners=True
    )
    right = torch.nn.functional.interpolate(
        x[..., c:], size=n - c - d, mode="linear", align_corners=True
    )
    out[:n] = torch.cat([left, right], -1)[0].T
    return out


def spec_augment(
    feats: Tensor, lengths: Tensor, config: FeatureConfig, generator: torch.Generator | None = None
) -> Tensor:
    """SpecAugment (Park et al. 2019, sec. 2): time warping, time and frequency masking.

    ``feats`` (B, T, M); each utterance is time-warped by up to ``time_warp``
    frames (:func:`time_warp`, 0 = off), then gets ``time_masks`` masks of width
    uniform in [0, time_mask_width] inside its own length, and ``freq_masks``
    masks of width in [0, freq_mask_width]. Masked values are set to 0 (the
    mean of normalised features). Returns a new tensor.
    """
    out = feats.clone()
    B, _, M = feats.shape
    for b in range(B):
        n = int(lengths[b])
        if config.time_warp > 0:
            out[b] = time_warp(out[b], n, config.time_warp, generator)
        for _ in range(config.time_masks):
            w = int(torch.randint(0, config.time_mask_width + 1, (1,), generator=generator))
            w = min(w, n // 5)  # never hide more than a fifth of a short utterance per mask
            if w > 0:
                t0 = int(torch.randint(0, n - w + 1, (1,), generator=generator))
                out[b, t0 : t0 + w] = 0.0
        for _ in range(config.freq_masks):
            w = int(torch.randint(0, min(config.freq_mask_width, M) + 1, (1,), generator=generator))
            if w > 0:
                f0 = int(torch.randint(0, M - w + 1, (1,), generator=generator))
                out[b, :n, f0 : f0 + w] = 0.0
    return out
