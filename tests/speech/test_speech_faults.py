"""Bad audio, bad manifests and faults in the speech application: one-line errors that
name the file and the cause (never a traceback, "not found" for a directory, or
"corrupt" for a permission problem), and a training limit on utterance length."""

from __future__ import annotations

import builtins
import io
import math
import os
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from speech_clips import SR, TEXTS, pcm16, tiny_config, tone_clip, wav_bytes

from rnnkit import SpeechRecognizer, UserError
from rnnkit.cli import main
from rnnkit.speech import Utterance
from rnnkit.speech.data import read_manifest
from rnnkit.speech.features import load_audio

NO_CUDA = "cuda:99" if torch.cuda.is_available() else "cuda"  # a device this machine lacks


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["speech", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and not any("Traceback" in e for e in err)
    return err[-1]


@pytest.fixture(scope="module")
def bad_wavs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real files with broken headers, and what reading each must say."""
    d = tmp_path_factory.mktemp("wavs")
    pcm = pcm16(tone_clip("ab"))
    files = {
        "zero samples declared": wav_bytes(pcm, declared=0)[:44],
        "no samples": wav_bytes(b""),
        "truncated": wav_bytes(pcm)[:1000],
        "header only": wav_bytes(pcm)[:44],
        "cut in the header": wav_bytes(pcm)[:30],
        "mp3 inside a WAV": wav_bytes(pcm, fmt=0x55),
        "no channels": wav_bytes(pcm, channels=0),
        "rate 3 Hz": wav_bytes(pcm, rate=3),
        "rate 2^31 Hz": wav_bytes(pcm, rate=2**31 - 1),
        "random bytes after RIFF": b"RIFF" + bytes(range(256)) * 2,
    }
    out = {}
    for name, data in files.items():
        out[name] = d / (name.replace(" ", "_").replace("^", "") + ".wav")
        out[name].write_bytes(data)
    return out


EXPECT = {
    "zero samples declared": "holds no samples",
    "no samples": "holds no samples",
    "truncated": "is truncated: its header declares 6240 bytes of audio, the file holds 956",
    "header only": "is truncated: its header declares 6240 bytes",
    "cut in the header": "cannot read audio file .*No 'data' chunk",
    "mp3 inside a WAV": "cannot read audio file .*(fmt|format|Format)",
    "no channels": "cannot read audio file .*[Cc]hannel",
    "rate 3 Hz": "states a sample rate of 3 Hz",
    "rate 2^31 Hz": "states a sample rate of 2147483647 Hz",
    "random bytes after RIFF": "cannot read audio file",
}


@pytest.mark.parametrize("name", list(EXPECT))
def test_broken_wav_headers_are_one_line_errors_naming_the_file(
    name: str, bad_wavs: dict[str, Path]
) -> None:
    path = bad_wavs[name]
    with pytest.raises(UserError, match=EXPECT[name]) as exc:
        load_audio(path, SR)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_broken_wavs_in_training_are_skipped_and_in_transcribe_refused(
    bad_wavs: dict[str, Path], overfit: SpeechRecognizer, capsys: pytest.CaptureFixture[str]
) -> None:
    good = [Utterance(tone_clip(t, i), t) for i, t in enumerate(TEXTS[:3])]
    broken = [Utterance(str(p), "ab") for p in bad_wavs.values()]
    cfg = tiny_config()
    rec = SpeechRecognizer(replace(cfg, train=replace(cfg.train, max_steps=2)), threads=1)
    rec.fit(good + broken, good)
    assert f"skipped {len(broken)} of {len(good) + len(broken)} utterances" in (
        capsys.readouterr().err
    )
    for path in bad_wavs.values():
        with pytest.raises(UserError, match=str(path)):
            overfit.transcribe(path)


def test_a_wav_of_another_sample_format_is_read(tmp_path: Path) -> None:
    """Not bad input: 8-bit, 24-bit and float WAVs read as the same tones."""
    clip = tone_clip("ab")
    for subtype in ("PCM_U8", "PCM_24", "FLOAT", "DOUBLE"):
        path = tmp_path / f"{subtype}.wav"
        sf.write(path, clip, SR, subtype=subtype)
        assert np.abs(load_audio(path, SR) - clip).max() < 0.02


def test_a_directory_is_not_reported_as_missing(
    tmp_path: Path, overfit: SpeechRecognizer, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "clip.wav").mkdir()
    (tmp_path / "list.csv").mkdir()
    with pytest.raises(UserError, match="audio file .*clip.wav is a directory, not a file"):
        overfit.transcribe(tmp_path / "clip.wav")
    with pytest.raises(UserError, match="manifest .*list.csv is a directory, not a file"):
        read_manifest(tmp_path / "list.csv")
    overfit.save(tmp_path / "m")
    msg = one_line_error(
        capsys, "transcribe", "--checkpoint", str(tmp_path / "m"), str(tmp_path / "clip.wav")
    )
    assert "is a directory" in msg and "not found" not in msg


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_files_are_permission_errors(tmp_path: Path) -> None:
    wav, manifest = tmp_path / "a.wav", tmp_path / "m.csv"
    sf.write(wav, tone_clip("ab"), SR)
    manifest.write_text("path,transcript\na.wav,ab\n")
    for p in (wav, manifest):
        p.chmod(0)
    try:
        with pytest.raises(UserError, match="cannot read audio file .*permission denied"):
            load_audio(wav, SR)
        with pytest.raises(UserError, match="cannot read manifest .*permission denied"):
            read_manifest(manifest)
    finally:
        for p in (wav, manifest):
            p.chmod(0o644)


def test_permission_denied_is_named_even_for_root(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """The OS refusing to open a file (EACCES), injected where chmod cannot stop root."""
    wav, manifest = tmp_path / "a.wav", tmp_path / "m.csv"
    sf.write(wav, tone_clip("ab"), SR)
    manifest.write_text("path,transcript\na.wav,ab\n")
    real_open = builtins.open

    def refusing_open(file, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if os.fspath(file) in (str(wav), str(manifest)):
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    monkeypatch.setattr(io, "open", refusing_open)
    with pytest.raises(UserError, match="cannot read audio file .*permission denied") as exc:
        load_audio(wav, SR)
    assert "corrupt" not in str(exc.value) and "not found" not in str(exc.value)
    with pytest.raises(UserError, match="cannot read manifest .*permission denied"):
        read_manifest(manifest)


def test_manifest_rows_of_the_wrong_shape(tmp_path: Path) -> None:
    m = tmp_path / "m.jsonl"
    for line, expect in (
        ('{"path": ["a.wav"], "transcript": "x"}', "'path' must name an audio file"),
        ('{"path": "a.wav", "transcript": {"t": 1}}', "the transcript must be text"),
        ('{"path": "a.wav", "transcript": null}', r"needs a 'path' .*got \['path'\]"),
        ("[" * 100_000, "line 1 is not valid JSON"),
    ):
        m.write_text(line + "\n")
        with pytest.raises(UserError, match=expect):
            read_manifest(m)
    c = tmp_path / "m.csv"
    c.write_text("path,transcript\na.wav\n")
    with pytest.raises(UserError, match=r"entry 1 needs .*got \['path'\]"):
        read_manifest(c)
    c.write_text('\ufeffpath,transcript\na.wav,"Hi, there"\n', encoding="utf-8")  # Excel's BOM
    (u,) = read_manifest(c)
    assert u.text == "hi, there" and u.audio == str(tmp_path / "a.wav")
    c.write_bytes(b"path,transcript\na.wav,caf\xe9\n")
    with pytest.raises(UserError, match="is not UTF-8 text"):
        read_manifest(c)


# ----------------------------------------------------------------------------- long audio


def test_utterances_over_max_audio_seconds_are_skipped_in_training_with_a_count(
    tmp_path: Path, overfit: SpeechRecognizer, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    long_wav = tmp_path / "long.wav"  # 70 s: over the default limit of 60 s
    sf.write(long_wav, (0.01 * rng.standard_normal(70 * SR)).astype(np.float32), SR)
    long_array = (0.01 * rng.standard_normal(61 * SR)).astype(np.float32)
    good = [Utterance(tone_clip(t, i), t) for i, t in enumerate(TEXTS)]
    cfg = tiny_config()
    assert cfg.data.max_audio_seconds == 60
    rec = SpeechRecognizer(replace(cfg, train=replace(cfg.train, max_steps=2)), threads=1)
    rec.fit([*good, Utterance(str(long_wav), "ab"), Utterance(long_array, "ba")], good[:2])
    err = capsys.readouterr().err
    assert "skipped 2 of 8 utterances (2 longer than data.max_audio_seconds=60)" in err
    assert rec.result_.step == 2
    # scoring and transcribing take audio of any length
    assert overfit.evaluate([Utterance(str(long_wav), "ab")])["utterances"] == 1
    # a limit of its own, or none
    short = replace(cfg, data=replace(cfg.data, max_audio_seconds=0.6))
    rec = SpeechRecognizer(replace(short, train=replace(cfg.train, max_steps=1)), threads=1)
    rec.fit(good, good)
    n = sum(len(tone_clip(t)) > 0.6 * SR for t in TEXTS)
    assert f"{n} longer than data.max_audio_seconds=0.6" in capsys.readouterr().err
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(UserError, match="data.max_audio_seconds must be >= 0"):
            SpeechRecognizer(max_audio_seconds=bad).fit(good, good)


def test_max_audio_seconds_is_a_flag_of_speech_train(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    msg = one_line_error(
        capsys, "train", "--data", str(tmp_path / "nope.csv"), "--data.max_audio_seconds=-5"
    )
    assert "data.max_audio_seconds must be >= 0" in msg


# ----------------------------------------------------------------------------- runtime


def test_an_absent_cuda_device_is_refused_before_any_data_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nope = str(tmp_path / "nope.csv")  # reading it would fail with 'not found'
    run = ["--run-dir", str(tmp_path / "r")]
    for flag in (f"--train.device={NO_CUDA}", f"--device={NO_CUDA}"):
        msg = one_line_error(capsys, "train", "--data", nope, *run, flag)
        assert f"device '{NO_CUDA}'" in msg and "not found" not in msg
    assert not (tmp_path / "r").exists()
    for rec in (SpeechRecognizer(device=NO_CUDA), SpeechRecognizer(train__device=NO_CUDA)):
        with pytest.raises(UserError, match=f"device '{NO_CUDA}'"):
            rec.set_params(source=nope).fit()


def test_the_wav_helper_writes_what_soundfile_reads() -> None:
    """The oracle of the header tests: a hand-written header soundfile accepts."""
    clip = tone_clip("ab")
    data, sr = sf.read(io.BytesIO(wav_bytes(pcm16(clip))), dtype="float32")
    assert sr == SR and np.abs(data - clip).max() < 1e-4
    assert struct.unpack("<I", wav_bytes(b"\0\0")[4:8])[0] == 38
