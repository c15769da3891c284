"""Augmentation, CMN and the lexicon decoder, each against an independent oracle:
spectra measured with NumPy's FFT, SNRs measured on the mix, a brute-force sum over
every CTC alignment, features of resampled and padded audio."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from scipy.signal import resample_poly
from speech_clips import SR, TEXTS, labeling_totals, tiny_config, tone_clip

from rnnkit import SpeechRecognizer
from rnnkit.errors import UserError
from rnnkit.speech import FeatureConfig, Utterance
from rnnkit.speech.augment import (
    Augmenter,
    augment_audio,
    colored_noise,
    room_impulse,
    speed_perturb,
    time_warp,
)
from rnnkit.speech.batches import SpeechBatches
from rnnkit.speech.config import AugmentConfig, load_config
from rnnkit.speech.decode import CharNgramLM, prefix_beam_search
from rnnkit.speech.features import LogMel, mel_filterbank, speech_mean, vtlp_warp


def _peak_hz(x: np.ndarray, sr: int = SR) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * sr / len(x))


def _sine(hz: float, seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    return np.sin(2 * np.pi * hz * np.arange(int(seconds * sr)) / sr).astype(np.float32)


@pytest.mark.parametrize("factor", [0.9, 1.0, 1.1])
def test_speed_perturbation_scales_length_and_pitch(factor) -> None:
    y = speed_perturb(_sine(1000.0), factor)
    assert len(y) == round(SR / factor)
    assert _peak_hz(y) == pytest.approx(1000.0 * factor, abs=2.0)


@pytest.mark.parametrize(("kind", "slope"), [("white", 0.0), ("pink", -1.0), ("brown", -2.0)])
def test_colored_noise_has_unit_rms_and_its_spectral_slope(kind, slope) -> None:
    x = colored_noise(1 << 16, kind, np.random.default_rng(0))
    assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-4)
    power = np.abs(np.fft.rfft(x)) ** 2
    f = np.arange(len(power))
    band = (f > 50) & (f < 20000)  # a log-log fit of the power spectrum
    fitted = np.polyfit(np.log(f[band]), np.log(power[band]), 1)[0]
    assert fitted == pytest.approx(slope, abs=0.1)


def test_room_impulse_decays_60_db_over_rt60() -> None:
    rir = room_impulse(SR, 0.4, np.random.default_rng(0)).astype(np.float64)
    assert rir[0] == 1.0
    tail = rir[1:] ** 2
    n = len(tail)
    early, late = tail[: n // 10].mean(), tail[-n // 10 :].mean()
    # The envelope falls 60 dB over the whole response; the first and last tenths'
    # mean powers sit about 0.8 * 60 dB apart.
    assert 10 * math.log10(early / late) == pytest.approx(0.8 * 60, abs=8)


def test_augment_off_is_the_identity_and_on_is_deterministic_per_seed() -> None:
    x = tone_clip("ab", 0)
    assert np.array_equal(augment_audio(x, SR, AugmentConfig(), np.random.default_rng(0)), x)
    cfg = AugmentConfig(speed=0.1, noise_prob=1, reverb_prob=1, pad_prob=1, gain_db=6)
    a = augment_audio(x, SR, cfg, np.random.default_rng(5), babble=[x])
    b = augment_audio(x, SR, cfg, np.random.default_rng(5), babble=[x])
    c = augment_audio(x, SR, cfg, np.random.default_rng(6), babble=[x])
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("snr", [0.0, 10.0, 25.0])
def test_noise_is_mixed_at_the_drawn_snr(snr) -> None:
    x = _sine(700.0) * 0.3
    cfg = AugmentConfig(noise_prob=1, snr_min_db=snr, snr_max_db=snr)
    for seed in range(4):  # white, pink, brown and babble all land at the SNR
        y = augment_audio(x, SR, cfg, np.random.default_rng(seed), babble=[_sine(300.0)])
        noise = (y - x).astype(np.float64)
        measured = 10 * math.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise**2))
        assert measured == pytest.approx(snr, abs=0.05)


def test_padding_keeps_the_utterance_intact_between_silences() -> None:
    x = tone_clip("ab", 1)
    cfg = AugmentConfig(pad_prob=1, pad_seconds=0.3)
    for seed in range(6):
        y = augment_audio(x, SR, cfg, np.random.default_rng(seed))
        assert len(x) <= len(y) <= len(x) + 2 * int(0.3 * SR)
        # find x inside y: the residual is zero (digital silence) or faint noise
        best = min(float(np.max(np.abs(y[i : i + len(x)] - x))) for i in range(len(y) - len(x) + 1))
        rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
        assert best < 6 * rms * 10 ** (-40 / 20)  # the noise is at least 40 dB down


def test_vtlp_warp_is_piecewise_linear_and_keeps_the_band() -> None:
    f = np.linspace(0, SR / 2, 101)
    assert np.allclose(vtlp_warp(f, 1.0, SR), f)
    for alpha in (0.9, 1.1):
        w = vtlp_warp(f, alpha, SR)
        assert np.all(np.diff(w) > 0)  # monotone
        assert w[0] == 0 and w[-1] == pytest.approx(SR / 2)
        assert w[10] == pytest.approx(alpha * f[10])  # 400 Hz is below the boundary
    assert np.allclose(
        mel_filterbank(SR, 200, 20, warp=lambda f: vtlp_warp(f, 1.0, SR)),
        mel_filterbank(SR, 200, 20),
    )


def test_vtlp_moves_a_tone_across_the_mel_channels() -> None:
    lm = LogMel(FeatureConfig(n_mels=40))
    x = _sine(1000.0)
    peak = {a: int(lm.logmel(x, vtlp=a).mean(0).argmax()) for a in (0.9, 1.0, 1.1)}
    # warping the frequency axis up by alpha moves the tone to higher filters
    assert peak[0.9] < peak[1.0] < peak[1.1]


def test_time_warp_keeps_length_and_order() -> None:
    ramp = torch.arange(40.0)[:, None].repeat(1, 3)  # (T, M): every channel counts frames
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        w = time_warp(ramp, 40, 5, g)
        assert w.shape == ramp.shape
        assert torch.all(w[1:, 0] >= w[:-1, 0])  # a warp never reverses time
        assert w[0, 0] == 0 and w[39, 0] == 39  # the ends stay put
    assert torch.equal(time_warp(ramp, 40, 0, g), ramp)


def test_cmn_ignores_gain_silence_and_resampling() -> None:
    cfg = FeatureConfig(norm="cmn")
    # a room's noise floor 30 dB below the tones (the log floor of 1e-6 stays far below)
    clip = tone_clip("ab c", 3) + np.random.default_rng(0).normal(0, 0.01, 5840).astype(np.float32)
    lm = LogMel(cfg).fit([LogMel(cfg).logmel(tone_clip(t, i)) for i, t in enumerate(TEXTS)])
    ref = lm(clip)
    quiet = lm(0.1 * clip)  # a 20 dB quieter microphone: only the log floor differs
    assert float((quiet - ref).abs().mean()) < 0.01 and float((quiet - ref).abs().max()) < 0.2
    pad = np.concatenate([np.zeros(6000, np.float32), clip, np.zeros(6000, np.float32)])
    hop = cfg.hop_length
    assert torch.allclose(lm(pad)[6000 // hop : 6000 // hop + len(ref)], ref, atol=1e-3)
    # 44.1 kHz stereo, as a microphone would deliver it, read back at 8 kHz
    up = resample_poly(clip, 441, 80)
    back = resample_poly(np.stack([up, up], 1).mean(1), 80, 441).astype(np.float32)
    assert float((lm(back) - ref).abs().mean()) < 0.05
    # speech frames: within 30 dB of the loudest; 40 dB down (log 1e-4 = -9.2) is out
    loud, soft = torch.randn(10, 4), torch.randn(5, 4) - 9.2 - 3
    assert torch.allclose(speech_mean(torch.cat([soft[:2], loud, soft[2:]])), loud.mean(0))


def _best_allowed(lp: np.ndarray, chars: str, words: set[str]) -> str:
    """Sum every alignment's probability into its text; the best text spelling words only."""
    totals = {"".join(chars[k - 1] for k in lab): p for lab, p in labeling_totals(lp).items()}
    ok = [t for t in totals if t == "" or all(w in words for w in t.split(" "))]
    return max(ok, key=totals.__getitem__)


@pytest.mark.parametrize("seed", range(6))
def test_lexicon_beam_search_equals_brute_force(seed) -> None:
    chars = "ab "
    words = {"ab", "b"}
    g = torch.Generator().manual_seed(seed)
    lp = torch.log_softmax(torch.randn(6, 4, generator=g) * 2, -1).double().numpy()
    dec = prefix_beam_search(lp, beam=500, chars=chars, lexicon=words)
    text = "".join(chars[k - 1] for k in dec.labels)
    assert text == _best_allowed(lp, chars, words)


def test_lexicon_turns_a_misspelling_into_the_word() -> None:
    chars = "eno"
    # frames spell "onn" with confidence, "one" a little less on the last frame
    probs = np.full((5, 4), 0.02)
    for t, k in enumerate([3, 0, 2, 0, 2]):
        probs[t, k] = 0.9
    probs[4, 1] = 0.4
    lp = np.log(probs / probs.sum(1, keepdims=True))
    assert prefix_beam_search(lp, beam=8).labels == [3, 2, 2]  # "onn"
    dec = prefix_beam_search(lp, beam=8, chars=chars, lexicon={"one", "two"})
    assert "".join(chars[k - 1] for k in dec.labels) == "one"


def test_lm_json_carries_the_lexicon_and_old_ones_load() -> None:
    lm = CharNgramLM(3).fit(["one two", "two"])
    assert lm.words_ == ["one", "two"]
    d = lm.to_dict()
    assert CharNgramLM.from_dict(d).words_ == ["one", "two"]
    d.pop("words")
    assert CharNgramLM.from_dict(d).words_ == []


def test_augmented_batches_are_fresh_each_epoch_and_reproducible() -> None:
    lm = LogMel(FeatureConfig(n_mels=20))
    audio = [tone_clip(t, i) for i, t in enumerate(TEXTS)]
    lm.fit([lm.logmel(a) for a in audio])
    aug = Augmenter(lm, AugmentConfig(speed=0.1, vtlp=0.1, noise_prob=1), babble=audio)
    items = [(a, [1]) for a in audio]

    def epoch(e: int) -> list[torch.Tensor]:
        b = SpeechBatches(items, 3, seed=7, featurize=aug)
        b.set_epoch(e)
        return [x.feats for x in b]

    first, again, second = epoch(0), epoch(0), epoch(1)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(
        a.shape == b.shape and torch.equal(a, b) for a, b in zip(first, second, strict=True)
    )


def test_augment_config_errors_are_one_line() -> None:
    for key, value in [("speed", 0.7), ("noise_prob", 1.5), ("pad_seconds", -1.0)]:
        with pytest.raises(UserError, match=f"augment.{key}"):
            dataclasses.replace(AugmentConfig(), **{key: value}).validate()
    with pytest.raises(UserError, match="snr_min_db must be <="):
        AugmentConfig(snr_min_db=20, snr_max_db=10).validate()
    with pytest.raises(UserError, match="features.norm must be global, cmn"):
        load_config(overrides=["features.norm=loud"]).features.validate()


def test_fit_with_augmentation_and_cmn_then_lexicon_decoding() -> None:
    cfg = tiny_config(bidirectional=True)
    cfg = dataclasses.replace(
        cfg,
        features=dataclasses.replace(cfg.features, norm="cmn", time_warp=2),
        augment=AugmentConfig(speed=0.05, vtlp=0.05, noise_prob=0.3, snr_min_db=20, gain_db=6),
        train=dataclasses.replace(cfg.train, max_steps=200),
    )
    utts = [Utterance(tone_clip(t, i), t, "", f"u{i}") for i, t in enumerate(TEXTS * 2)]
    rec = SpeechRecognizer(cfg, threads=1, verbose=False).fit(utts, utts[:6])
    assert rec.lm_.words_ == sorted({w for t in TEXTS for w in t.split()})
    res = rec.evaluate(utts[:6], beam=4, lexicon=True)
    assert res["decoder"] == "beam 4 + lexicon"
    assert res["wer"] <= 0.5  # tones are easy; augmentation must not stop it learning
    rec.lm_.words_ = []
    with pytest.raises(UserError, match="without a lexicon"):
        rec.predict(utts[0].audio, beam=2, lexicon=True)


def _running_mean_oracle(f: torch.Tensor, prior: torch.Tensor, n0: float) -> torch.Tensor:
    """Frame by frame in plain Python: the mean of the speech frames so far, with a prior."""
    out, total, count, loudest = [], torch.zeros(f.size(1)), 0.0, -math.inf
    for t in range(f.size(0)):
        e = float(torch.logsumexp(f[t], 0))
        loudest = max(loudest, e)
        if e >= loudest - 3 * math.log(10):  # within 30 dB
            total, count = total + f[t], count + 1
        out.append((n0 * prior + total) / (n0 + count))
    return torch.stack(out)


def test_causal_cmn_is_a_running_speech_mean_and_streams_exactly() -> None:
    cfg = FeatureConfig(norm="causal_cmn")
    lm = LogMel(cfg).fit([LogMel(cfg).logmel(tone_clip(t, i)) for i, t in enumerate(TEXTS)])
    clip = np.concatenate([np.zeros(3000, np.float32), tone_clip("cab a", 2)])
    f = lm.logmel(clip)
    whole = lm.normalize(f)
    expected = (f - _running_mean_oracle(f, lm.mean_, 10.0)) / lm.std_
    assert torch.allclose(whole, expected, atol=1e-4)
    for cut in (1, 7, 30):  # chunk by chunk equals all at once
        state, parts = None, []
        for i in range(0, f.size(0), cut):
            part, state = lm.normalize_stream(f[i : i + cut], state)
            parts.append(part)
        assert torch.allclose(torch.cat(parts), whole, atol=1e-5)
    with pytest.raises(UserError, match="needs the whole utterance"):
        LogMel(FeatureConfig(norm="cmn")).normalize_stream(f, None)


@pytest.mark.parametrize(("chunk", "tail_ms"), [(800, 0.0), (1337, 0.0), (800, 150.0)])
def test_a_causal_cmn_model_streams_what_it_transcribes(chunk, tail_ms) -> None:
    # chunk 800 samples: 100 ms at 8 kHz
    cfg = tiny_config(bidirectional=False)
    features = dataclasses.replace(cfg.features, norm="causal_cmn", tail_ms=tail_ms)
    steps = 500 if tail_ms else cfg.train.max_steps  # the silent tail takes longer to learn
    cfg = dataclasses.replace(
        cfg, features=features, train=dataclasses.replace(cfg.train, max_steps=steps)
    )
    utts = [Utterance(tone_clip(t, i), t, "", f"u{i}") for i, t in enumerate(TEXTS)]
    rec = SpeechRecognizer(cfg, threads=1, verbose=False).fit(utts, utts)
    x = tone_clip("cab a", 7)
    chunks = [x[i : i + chunk] for i in range(0, len(x), chunk)]
    partials = list(rec.stream(chunks))
    assert len(partials) == len(chunks) + (tail_ms > 0)  # the tail flush: one more
    assert partials[-1] == rec.transcribe([x])[0].text
    assert partials[-1] == "cab a"  # and it learned the clips
    assert any(p and p != partials[-1] for p in partials)  # words before the audio ends


def test_the_tail_appends_silence_frames() -> None:
    plain, tailed = LogMel(FeatureConfig()), LogMel(FeatureConfig(tail_ms=200))
    x = tone_clip("ab", 0)
    a, b = plain.logmel(x), tailed.logmel(x)
    assert b.shape[0] == a.shape[0] + 20  # 200 ms at a 10 ms hop
    assert torch.equal(b[: a.shape[0] - 2], a[: a.shape[0] - 2])  # frames before it unchanged
    assert torch.equal(tailed.logmel(x, tail=False), a)
    with pytest.raises(UserError, match="features.tail_ms"):
        FeatureConfig(tail_ms=-1).validate()


def test_spectral_front_end_pads_like_single_utterances() -> None:
    from rnnkit.speech import CTCASRConfig
    from rnnkit.speech.model import CTCASR

    torch.manual_seed(0)
    m = CTCASR(CTCASRConfig(input_size=20, vocab_size=5, spec_channels=4, hidden_size=8)).eval()
    a, b = torch.randn(30, 20), torch.randn(22, 20)
    x = torch.zeros(2, 30, 20)
    x[0], x[1, :22] = a, b
    both = m(x, torch.tensor([30, 22]))
    for i, one in enumerate((a, b)):
        alone = m(one[None]).log_probs[0]
        assert torch.allclose(both.log_probs[i, : len(alone)], alone, atol=1e-5)
    with pytest.raises(UserError, match="spec_channels needs model.bidirectional"):
        CTCASRConfig(input_size=20, vocab_size=5, spec_channels=4, bidirectional=False).validate()
