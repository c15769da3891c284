"""Generated speech-like clips for the speech tests: one tone per character."""

from __future__ import annotations

import numpy as np

from rnnkit.speech import CTCASRConfig, FeatureConfig, SpeechConfig, SpeechDataConfig
from rnnkit.training import TrainConfig

SR = 8000
TONES = {"a": 500.0, "b": 1300.0, "c": 2300.0, " ": 3300.0}
TEXTS = ["ab", "ba c", "cab", "aa b", "c b a", "bca"]


def tone_clip(text: str, seed: int = 0) -> np.ndarray:
    """Each character a 0.12 s tone with jittered pitch, separated by 0.05 s of faint noise."""
    rng = np.random.default_rng(seed)
    parts = [rng.normal(0, 1e-3, 400)]
    for ch in text:
        n = int(0.12 * SR)
        f = TONES[ch] * rng.uniform(0.97, 1.03)
        parts.append(0.5 * np.sin(2 * np.pi * f * np.arange(n) / SR) + rng.normal(0, 0.01, n))
        parts.append(rng.normal(0, 1e-3, 400))
    return np.concatenate(parts).astype(np.float32)


def tiny_config(**model: object) -> SpeechConfig:
    return SpeechConfig(
        data=SpeechDataConfig(source="unused", batch_size=6),
        features=FeatureConfig(sample_rate=SR, n_mels=20, time_masks=0, freq_masks=0),
        model=CTCASRConfig(
            conv_channels=32,
            subsample=2,
            cell="gru",
            num_layers=1,
            hidden_size=48,
            dropout=0.0,
            **model,
        ),
        train=TrainConfig(
            max_steps=150,
            lr=3e-2,
            min_lr=1e-3,
            warmup_steps=5,
            eval_interval=0,
            checkpoint_interval=0,
            progress="none",
            plot=False,
            grad_clip=5.0,
            carry_state=False,
            eval_metric="val_wer",
        ),
    )


def wav_bytes(
    data: bytes,
    *,
    rate: int = SR,
    channels: int = 1,
    bits: int = 16,
    fmt: int = 1,
    declared: int | None = None,
) -> bytes:
    """A RIFF/WAVE file written by hand, every header field as given (``declared``: the
    data chunk's stated size, default the true one): real files with broken headers."""
    import struct

    block = channels * bits // 8
    fields = (fmt, channels, rate, rate * block, block, bits)
    masks = (0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFF, 0xFFFF)  # as a broken writer would
    fmt_chunk = struct.pack("<HHIIHH", *(v & m for v, m in zip(fields, masks, strict=True)))
    size = len(data) if declared is None else declared
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt_chunk
    body += b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body) & 0xFFFFFFFF) + body


def pcm16(samples: np.ndarray) -> bytes:
    """Samples in [-1, 1] as little-endian 16-bit PCM."""
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def labeling_totals(lp: np.ndarray) -> dict[tuple[int, ...], float]:
    """Brute force over every CTC alignment of ``lp`` (T, V): each labeling's probability
    (merge repeats, drop blanks, sum the paths)."""
    import itertools
    import math

    T, V = lp.shape
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(V), repeat=T):
        labels, prev = [], 0
        for k in path:
            if k != 0 and k != prev:
                labels.append(k)
            prev = k
        p = math.exp(sum(lp[t, k] for t, k in enumerate(path)))
        totals[tuple(labels)] = totals.get(tuple(labels), 0.0) + p
    return totals
