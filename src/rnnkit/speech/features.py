"""Audio in, log-mel features out: reading, resampling, mel filterbank, normalisation.

Longer than 400 lines: reading (with its checks of damaged files), the filterbank and
the normalisations (offline and streaming, which must agree frame for frame) are one
path from a file to the model's input.

The settings are the ``features`` section of the config (:class:`FeatureConfig`).

Pipeline for one utterance (x: samples at ``sample_rate``)::

    frames   x[i*hop : i*hop + win] * hann(win)       i = 0 .. (N - win) // hop
    power    |rfft(frame, n_fft=win)|^2               (F_bins = win // 2 + 1)
    mel      power @ M^T                              M: (n_mels, F_bins), below
    logmel   log(mel + 1e-6)                          (T, n_mels)

Frames are not centred (no padding at the start): frame ``i`` depends only on
samples up to ``i*hop + win``, so the same features can be computed from a
stream of audio chunks and equal the offline ones (``SpeechRecognizer.stream``).

Mel scale (HTK, O'Shaughnessy 1987): ``mel(f) = 2595 log10(1 + f / 700)``.
Filter ``m`` (0-based) is a triangle over frequency with corners at the
mel-spaced points ``f[m], f[m+1], f[m+2]`` (n_mels + 2 points from ``fmin`` to
``fmax``), peak 1 at ``f[m+1]``; with ``norm="slaney"`` it is scaled by
``2 / (f[m+2] - f[m])`` (equal area).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import torch
from torch import Tensor

from rnnkit.data.files import check_file
from rnnkit.errors import UserError
from rnnkit.speech.config import FeatureConfig

__all__ = [
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "AudioTooLong",
    "LogMel",
    "frames_in",
    "hz_to_mel",
    "load_audio",
    "mel_filterbank",
    "mel_to_hz",
    "resample",
    "speech_mean",
    "vtlp_warp",
]

_LOG_FLOOR = 1e-6
# Sample rates a header may state: below 1 kHz or above 768 kHz it is damaged (a
# rate of 3 Hz would "resample" 1 s of samples to 45 min of audio).
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 768_000


class AudioTooLong(UserError):
    """The audio lasts longer than the limit it was read with (``seconds``: its length)."""

    def __init__(self, message: str, *, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


def _wav_shortfall(head: bytes, size: int) -> tuple[int, int] | None:
    """(declared, present) bytes of the ``data`` chunk of a RIFF/WAVE file that ends early.

    ``head``: the file's first bytes; ``size``: its length. A declared size of 0 or
    0xFFFFFFFF (written by streaming recorders before they know the length) is no claim.
    """
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(head):
        n = int.from_bytes(head[pos + 4 : pos + 8], "little")
        if head[pos : pos + 4] == b"data":
            present = size - (pos + 8)
            # A few missing bytes (a lost pad byte, a partial last frame) are harmless.
            if n not in (0, 0xFFFFFFFF) and n - present > max(64, n // 100):
                return n, present
            return None
        pos += 8 + n + (n & 1)
    return None


def load_audio(
    path: str | os.PathLike[str], sample_rate: int, *, max_seconds: float = 0.0
) -> np.ndarray:
    """Read a WAV/FLAC/OGG file as mono float32 in [-1, 1] at ``sample_rate``.

    Channels are averaged (mono downmix); other rates are resampled with a
    polyphase filter (:func:`resample`). ``max_seconds > 0``: a longer file is
    refused from its header (:class:`AudioTooLong`) before its samples are read.

    Raises:
        UserError: the file is missing, a directory, not readable (permissions),
            truncated, corrupt, of another format, of an implausible sample rate,
            or holds no samples; each says which.
    """
    import soundfile as sf

    p = check_file(path, what="audio file", hint="check the path (or the manifest)")
    try:
        with open(p, "rb") as fh:
            head = fh.read(65536)
            shortfall = _wav_shortfall(head, os.fstat(fh.fileno()).st_size)
            if shortfall is not None:
                declared, present = shortfall
                raise UserError(
                    f"audio file {p} is truncated: its header declares {declared} bytes of "
                    f"audio, the file holds {max(present, 0)}; copy or re-export it, or "
                    "remove it from the data"
                )
            fh.seek(0)
            with sf.SoundFile(fh) as f:
                sr, frames = int(f.samplerate), int(f.frames)
                if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
                    raise UserError(
                        f"audio file {p} states a sample rate of {sr} Hz in its header "
                        f"(expected {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz); the header is "
                        "damaged - re-export the file or remove it from the data"
                    )
                if max_seconds > 0 and frames > max_seconds * sr:
                    raise AudioTooLong(
                        f"audio file {p} lasts {frames / sr:.1f} s, more than {max_seconds:g} s",
                        seconds=frames / sr,
                    )
                data = f.read(dtype="float32", always_2d=True)  # (N, C)
    except UserError:
        raise
    except PermissionError:
        raise UserError(
            f"cannot read audio file {p}: permission denied; check the permissions of the "
            "file and its folders (ls -l)"
        ) from None
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = re.sub(r"^Error opening <[^>]*>: ", "", first)  # the file is named already
        raise UserError(
            f"cannot read audio file {p} ({first}); it is corrupt or not WAV/FLAC/OGG - "
            "re-export it or remove it from the data"
        ) from exc
    if data.shape[0] == 0:
        raise UserError(f"audio file {p} holds no samples; remove it from the data")
    mono = data.mean(axis=1)  # (N,): average the channels
    if not np.isfinite(mono).all():
        raise UserError(f"audio file {p} holds NaN or infinite samples; re-export it")
    return resample(mono, int(sr), sample_rate)


def resample(x: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resample ``x`` (N,) from ``orig_rate`` to ``target_rate`` (polyphase, Kaiser window)."""
    if orig_rate <= 0 or target_rate <= 0:
        raise UserError(f"sample rates must be > 0, got {orig_rate} and {target_rate}")
    if orig_rate == target_rate:
        return np.asarray(x, dtype=np.float32)
    from scipy.signal import resample_poly

    # Every common rate pair reduces to terms <= 1000 (44100 -> 8000 is 80/441). An odd
    # rate (44101 Hz) would need a filter of 10 * 2 * 44101 taps; the nearest ratio with
    # a denominator <= 1000 is off by about 1e-6, far below anything audible.
    ratio = Fraction(target_rate, orig_rate).limit_denominator(1000)
    return resample_poly(x, ratio.numerator, ratio.denominator).astype(np.float32)


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: ``2595 log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`: ``700 (10^(m / 2595) - 1)``."""
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def vtlp_warp(
    freqs: np.ndarray, alpha: float, sample_rate: int, f_hi: float = 4800.0
) -> np.ndarray:
    """Vocal tract length perturbation: frequencies ``freqs`` (Hz) warped by ``alpha``.

    Piecewise linear (Jaitly & Hinton 2013, eq. 1): ``f * alpha`` up to a boundary
    ``f_hi * min(alpha, 1) / alpha`` (scaled to the Nyquist frequency), then a line
    that maps the Nyquist frequency onto itself, so the warped axis covers the same band.
    """
    nyq = sample_rate / 2
    f_hi = min(f_hi, 0.9 * nyq)
    b = f_hi * min(alpha, 1.0) / alpha
    f = np.asarray(freqs, dtype=np.float64)
    high = nyq - (nyq - alpha * b) * (nyq - f) / (nyq - b)
    return np.where(f <= b, f * alpha, high)


def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    norm: str | None = None,
    warp: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Triangular mel filters, (n_mels, n_fft // 2 + 1), float64; see the module docstring.

    Bin ``k`` sits at frequency ``k * sample_rate / n_fft`` (``warp(frequencies)``
    when given: vocal tract length perturbation). Weights are the
    triangle evaluated at each bin's frequency (as librosa.filters.mel with
    ``htk=True``).
    """
    fmax = sample_rate / 2 if fmax is None or fmax <= 0 else fmax
    if n_mels <= 0:
        raise UserError(f"n_mels must be > 0, got {n_mels}")
    if not 0 <= fmin < fmax <= sample_rate / 2:
        raise UserError(
            f"need 0 <= fmin < fmax <= sample_rate / 2, got fmin={fmin}, fmax={fmax}, "
            f"sample_rate={sample_rate}"
        )
    if norm not in (None, "slaney"):
        raise UserError(f"mel norm must be None or 'slaney', got {norm!r}")
    bins = np.arange(n_fft // 2 + 1) * sample_rate / n_fft  # (F,) Hz
    if warp is not None:
        bins = warp(bins)  # VTLP: the filters see the spectrum on a warped frequency axis
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))  # (M+2,)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (M, 1) each
    rising = (bins[None, :] - lo) / (mid - lo)  # (M, F)
    falling = (hi - bins[None, :]) / (hi - mid)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        weights *= 2.0 / (hi - lo)
    return weights


_SPEECH_FLOOR_DB = 30.0  # speech frames: energy within this of the loudest frame
_CMN_PRIOR_FRAMES = 10.0  # causal_cmn: weight of the training speech mean, in frames


def speech_mean(feats: Tensor, floor_db: float = _SPEECH_FLOOR_DB) -> Tensor:
    """Per-channel mean (M,) of the frames of ``feats`` (T, M) that hold speech: those whose
    energy is within ``floor_db`` of the loudest frame's.

    Cepstral mean normalisation (CMN) with this mean removes the recording's gain and
    the microphone's frequency response (both add a constant to log-mels) without
    letting leading or trailing silence, digital or not, shift it.
    """
    energy = torch.logsumexp(feats, dim=1)  # (T,) log of the frame's mel energy
    active = energy >= energy.max() - floor_db * np.log(10) / 10
    return feats[active].mean(0)


class LogMel:
    """Log-mel features with optional normalisation, fitted like a scikit-learn scaler.

    ``norm="global"`` subtracts the per-channel mean and divides by the std of
    the training features (``fit``; learned ``mean_``, ``std_``); ``"cmn"``
    subtracts the utterance's own mean over its speech frames (:func:`speech_mean`)
    and divides by the training std of such centred features (not streamable);
    ``"causal_cmn"`` subtracts the running speech mean up to each frame instead
    (streamable: :meth:`normalize_stream`);
    ``"utterance"`` does the same as global with each utterance's own statistics
    (not streamable); ``"none"`` leaves the log-mels as they are.
    """

    def __init__(self, config: FeatureConfig) -> None:
        config.validate()
        self.config = config
        c = config
        self.window = torch.hann_window(c.win_length, periodic=True)  # (W,)
        fb = mel_filterbank(c.sample_rate, c.win_length, c.n_mels, c.fmin, c.fmax)
        self.fbank = torch.from_numpy(fb).float()  # (M, F)
        self._warped: dict[float, Tensor] = {}  # VTLP filterbanks by warp factor
        self.mean_: Tensor | None = None
        self.std_: Tensor | None = None

    @property
    def tail_samples(self) -> int:
        """Samples of silence appended to each utterance (``features.tail_ms``)."""
        c = self.config
        return int(round(c.tail_ms * c.sample_rate / 1000))

    def _filterbank(self, vtlp: float) -> Tensor:
        if vtlp == 1.0:
            return self.fbank
        key = round(vtlp, 3)
        if key not in self._warped:
            c = self.config
            fb = mel_filterbank(
                c.sample_rate,
                c.win_length,
                c.n_mels,
                c.fmin,
                c.fmax,
                warp=lambda f: vtlp_warp(f, key, c.sample_rate),
            )
            self._warped[key] = torch.from_numpy(fb).float()
        return self._warped[key]

    def logmel(self, audio: np.ndarray | Tensor, *, vtlp: float = 1.0, tail: bool = True) -> Tensor:
        """Un-normalised log-mels (T, n_mels) of mono audio (N,); T = (N - win) // hop + 1.

        ``vtlp``: a vocal-tract-length warp factor (training augmentation; 1 = none).
        ``tail``: append ``features.tail_ms`` of silence first (``False`` for the chunks of
        a stream, which gets its tail when the input ends).
        """
        x = torch.as_tensor(audio, dtype=torch.float32).flatten()
        if tail and self.tail_samples:
            x = torch.cat([x, torch.zeros(self.tail_samples)])
        W, H = self.config.win_length, self.config.hop_length
        if x.numel() < W:
            return torch.zeros(0, self.config.n_mels)
        frames = x.unfold(0, W, H) * self.window  # (T, W)
        power = torch.fft.rfft(frames, n=W).abs().pow(2)  # (T, F)
        return torch.log(power @ self._filterbank(vtlp).T + _LOG_FLOOR)  # (T, M)

    def fit(self, feats: list[Tensor]) -> LogMel:
        """Learn the normalisation statistics from un-normalised log-mels of the training set
        (``global``: per-channel mean and std; ``cmn``: the std after each utterance's own
        speech mean is removed; ``causal_cmn``: the mean of all speech frames, the prior
        of the running mean, and the std after it is removed)."""
        norm = self.config.norm
        if norm in ("global", "cmn", "causal_cmn"):
            feats = [f for f in feats if f.size(0) > 0]
            if not feats:
                raise UserError("cannot fit feature normalisation on an empty training set")
            if norm == "cmn":
                feats = [f - speech_mean(f) for f in feats]
            elif norm == "causal_cmn":
                self.mean_ = torch.stack([speech_mean(f) for f in feats]).mean(0)
                self.std_ = torch.ones_like(self.mean_)
                feats = [self.normalize(f) for f in feats]  # running mean removed, std 1
                self.std_ = torch.cat(feats, 0).std(0).clamp_min(1e-5)
                return self
            allf = torch.cat(feats, 0)  # (sum T, M)
            self.mean_ = allf.mean(0)
            self.std_ = allf.std(0).clamp_min(1e-5)
        return self

    def normalize(self, feats: Tensor) -> Tensor:
        norm = self.config.norm
        if norm in ("global", "cmn", "causal_cmn"):
            if self.mean_ is None or self.std_ is None:
                raise RuntimeError(f"LogMel.fit must be called before normalize (norm={norm})")
            if norm == "cmn":
                return (feats - speech_mean(feats)) / self.std_ if feats.size(0) else feats
            if norm == "causal_cmn":
                return self.normalize_stream(feats, None)[0]
            return (feats - self.mean_) / self.std_
        if norm == "utterance" and feats.size(0) > 0:
            return (feats - feats.mean(0)) / feats.std(0, unbiased=False).clamp_min(1e-5)
        return feats

    def normalize_stream(
        self, feats: Tensor, state: tuple[float, Tensor, float] | None
    ) -> tuple[Tensor, tuple[float, Tensor, float] | None]:
        """Normalise the next frames of a stream: (features, the state for the next call).

        ``global``/``none`` need no state. ``causal_cmn`` removes, from frame ``t``,
        the running mean of the speech frames up to ``t`` (energy within 30 dB of the
        loudest frame so far), started from the training set's speech mean as
        ``_CMN_PRIOR_FRAMES`` frames of prior: ``state`` is (loudest energy, sum of
        speech frames, their count). Chunk by chunk, the frames equal those of the
        whole utterance at once.
        """
        norm = self.config.norm
        if norm in ("utterance", "cmn"):
            raise UserError(
                f"features.norm={norm} needs the whole utterance; streaming needs global, "
                "causal_cmn or none"
            )
        if norm != "causal_cmn":
            return self.normalize(feats), state
        if self.mean_ is None or self.std_ is None:
            raise RuntimeError("LogMel.fit must be called before normalize (norm=causal_cmn)")
        M = feats.size(1)
        peak, total, count = state if state is not None else (-math.inf, torch.zeros(M), 0.0)
        if feats.size(0) == 0:
            return feats, (peak, total, count)
        energy = torch.logsumexp(feats, dim=1)  # (T,)
        loudest = torch.cummax(energy, 0).values.clamp_min(peak)  # (T,)
        active = (energy >= loudest - _SPEECH_FLOOR_DB * math.log(10) / 10).to(feats.dtype)
        sums = total + torch.cumsum(feats * active[:, None], 0)  # (T, M)
        counts = count + torch.cumsum(active, 0)  # (T,)
        n0 = _CMN_PRIOR_FRAMES
        mean = (n0 * self.mean_ + sums) / (n0 + counts)[:, None]
        out = (feats - mean) / self.std_
        return out, (float(loudest[-1]), sums[-1], float(counts[-1]))

    def __call__(self, audio: np.ndarray | Tensor) -> Tensor:
        """Normalised features (T, n_mels)."""
        return self.normalize(self.logmel(audio))

    def to_dict(self) -> dict[str, list[float] | None]:
        return {
            "mean": None if self.mean_ is None else self.mean_.tolist(),
            "std": None if self.std_ is None else self.std_.tolist(),
        }

    def load_dict(self, d: dict[str, list[float] | None]) -> LogMel:
        self.mean_ = None if d.get("mean") is None else torch.tensor(d["mean"])
        self.std_ = None if d.get("std") is None else torch.tensor(d["std"])
        return self


def frames_in(num_samples: int, config: FeatureConfig) -> int:
    """Number of feature frames of ``num_samples`` samples (0 if shorter than a window)."""
    W, H = config.win_length, config.hop_length
    return 0 if num_samples < W else (num_samples - W) // H + 1
