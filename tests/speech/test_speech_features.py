"""Audio reading, the mel filterbank, log-mel features and SpecAugment, against oracles."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import get_window

from rnnkit.errors import UserError
from rnnkit.speech import FeatureConfig
from rnnkit.speech.augment import spec_augment
from rnnkit.speech.features import (
    LogMel,
    frames_in,
    hz_to_mel,
    load_audio,
    mel_filterbank,
    mel_to_hz,
)


def test_mel_scale_published_points() -> None:
    # HTK: 1000 Hz is ~1000 mel by construction; 700 Hz -> 2595 log10(2).
    assert float(hz_to_mel(1000.0)) == pytest.approx(1000.0, abs=0.05)
    assert float(hz_to_mel(700.0)) == pytest.approx(2595 * math.log10(2), rel=1e-12)
    f = np.array([0.0, 123.0, 4000.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)), f, atol=1e-9)


def _loop_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Independent oracle: the HTK triangle written out per filter and bin with plain math."""
    lo_mel = 2595 * math.log10(1 + fmin / 700)
    hi_mel = 2595 * math.log10(1 + fmax / 700)
    pts = [
        700 * (10 ** ((lo_mel + (hi_mel - lo_mel) * i / (n_mels + 1)) / 2595) - 1)
        for i in range(n_mels + 2)
    ]
    out = np.zeros((n_mels, n_fft // 2 + 1))
    for m in range(n_mels):
        left, centre, right = pts[m], pts[m + 1], pts[m + 2]
        for k in range(n_fft // 2 + 1):
            f = k * sr / n_fft
            if left < f <= centre:
                out[m, k] = (f - left) / (centre - left)
            elif centre < f < right:
                out[m, k] = (right - f) / (right - centre)
    return out


@pytest.mark.parametrize(
    ("sr", "n_fft", "n_mels", "fmin", "fmax"),
    [
        (8000, 200, 40, 0.0, 4000.0),
        (16000, 512, 80, 20.0, 7600.0),
        (8000, 256, 13, 100.0, 3000.0),
    ],
)
def test_mel_filterbank_matches_independent_loop(sr, n_fft, n_mels, fmin, fmax) -> None:
    ours = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    np.testing.assert_allclose(ours, _loop_filterbank(sr, n_fft, n_mels, fmin, fmax), atol=1e-12)


def test_mel_filterbank_partition_of_unity_and_slaney_area() -> None:
    sr, n_fft, M = 8000, 4096, 20
    fb = mel_filterbank(sr, n_fft, M)
    centres = mel_to_hz(np.linspace(hz_to_mel(0), hz_to_mel(sr / 2), M + 2))[1:-1]
    bins = np.arange(n_fft // 2 + 1) * sr / n_fft
    inside = (bins >= centres[0]) & (bins <= centres[-1])
    # Adjacent peak-1 triangles share their edges: between the first and last centre
    # every frequency's weights sum to exactly 1.
    np.testing.assert_allclose(fb[:, inside].sum(0), 1.0, atol=1e-9)
    # Slaney norm: every filter has unit area over Hz (Riemann sum on a fine grid).
    area = mel_filterbank(sr, n_fft, M, norm="slaney").sum(1) * (sr / n_fft)
    np.testing.assert_allclose(area, 1.0, rtol=0.02)


def test_logmel_matches_numpy_scipy_oracle() -> None:
    cfg = FeatureConfig(sample_rate=8000, n_mels=20, norm="none")
    rng = np.random.default_rng(0)
    x = rng.normal(size=3001).astype(np.float32)
    ours = LogMel(cfg).logmel(x).numpy()
    W, H = cfg.win_length, cfg.hop_length
    n = (len(x) - W) // H + 1
    assert ours.shape == (n, 20) == (frames_in(len(x), cfg), 20)
    win = get_window("hann", W, fftbins=True)
    fb = _loop_filterbank(8000, W, 20, 0.0, 4000.0)
    expect = np.stack(
        [
            np.log(fb @ (np.abs(np.fft.rfft(x[i * H : i * H + W] * win)) ** 2) + 1e-6)
            for i in range(n)
        ]
    )
    np.testing.assert_allclose(ours, expect, rtol=1e-4, atol=1e-4)


def test_sine_lights_up_the_nearest_mel_channel() -> None:
    cfg = FeatureConfig(sample_rate=8000, n_mels=30, norm="none")
    centres = mel_to_hz(np.linspace(0, hz_to_mel(4000), 32))[1:-1]
    t = np.arange(8000) / 8000
    for m in (5, 17, 25):
        x = np.sin(2 * np.pi * centres[m] * t).astype(np.float32)
        assert int(LogMel(cfg).logmel(x).mean(0).argmax()) == m


def test_global_and_utterance_normalisation() -> None:
    rng = np.random.default_rng(1)
    clips = [rng.normal(scale=s, size=4000).astype(np.float32) for s in (0.1, 1.0, 3.0)]
    lm = LogMel(FeatureConfig(norm="global"))
    feats = [lm.logmel(c) for c in clips]
    lm.fit(feats)
    allf = torch.cat([lm.normalize(f) for f in feats])
    torch.testing.assert_close(allf.mean(0), torch.zeros(40), atol=1e-4, rtol=0)
    torch.testing.assert_close(allf.std(0), torch.ones(40), atol=1e-3, rtol=0)
    u = LogMel(FeatureConfig(norm="utterance"))(clips[2])
    torch.testing.assert_close(u.mean(0), torch.zeros(40), atol=1e-4, rtol=0)
    with pytest.raises(RuntimeError, match="fit"):
        LogMel(FeatureConfig(norm="global"))(clips[0])


def test_load_audio_downmixes_and_resamples(tmp_path) -> None:
    sr_in = 16000
    t = np.arange(sr_in) / sr_in
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    right = 0.1 * np.sin(2 * np.pi * 440 * t)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], 1), sr_in, subtype="FLOAT")
    x = load_audio(path, 8000)
    assert x.dtype == np.float32 and x.shape == (8000,)
    t8 = np.arange(8000) / 8000
    expect = 0.3 * np.sin(2 * np.pi * 440 * t8)  # the mean of the two channels
    np.testing.assert_allclose(x[200:-200], expect[200:-200], atol=2e-3)
    flac = tmp_path / "mono.flac"
    sf.write(flac, left, sr_in)
    assert load_audio(flac, sr_in).shape == (sr_in,)


def test_load_audio_bad_files(tmp_path) -> None:
    with pytest.raises(UserError, match="not found"):
        load_audio(tmp_path / "missing.wav", 8000)
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF\x00\x00garbage" * 10)
    with pytest.raises(UserError, match="cannot read audio file .*corrupt"):
        load_audio(bad, 8000)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 8000)
    with pytest.raises(UserError, match="holds no samples"):
        load_audio(empty, 8000)


def test_spec_augment_masks_inside_lengths_only() -> None:
    cfg = FeatureConfig(time_masks=2, time_mask_width=5, freq_masks=2, freq_mask_width=4)
    feats = torch.ones(3, 50, 40)
    lengths = torch.tensor([50, 30, 10])
    g = torch.Generator().manual_seed(0)
    out = spec_augment(feats, lengths, cfg, generator=g)
    assert torch.equal(feats, torch.ones(3, 50, 40))  # input untouched
    assert (out == 0).any()
    assert torch.equal(out[1, 30:], feats[1, 30:])  # padding never touched
    for b in range(3):
        fully_masked_frames = int((out[b, : lengths[b]] == 0).all(1).sum())
        assert fully_masked_frames <= 2 * min(5, int(lengths[b]) // 5)
        masked_channels = int((out[b, : lengths[b]] == 0).all(0).sum())
        assert masked_channels <= 2 * 4


def test_feature_config_errors() -> None:
    with pytest.raises(UserError, match="features.norm must be"):
        FeatureConfig(norm="bogus").validate()
    with pytest.raises(UserError, match="fmin < fmax"):
        FeatureConfig(fmax=9000).validate()
