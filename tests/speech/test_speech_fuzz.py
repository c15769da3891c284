"""Property-based fuzzing (hypothesis) of what a speech user feeds in: manifests and WAVs.

Manifests (CSV, TSV, JSONL; missing columns, fields of any JSON type, paths that
do not exist or are folders, non-UTF-8 bytes) and WAV files (0 samples,
truncated, wrong sample format, implausible rates, random bytes after a RIFF
header): the only outcomes are a result or a one-line
:class:`~rnnkit.errors.UserError`, never another exception. The default runs
take a few seconds; the ``slow`` twins try many more inputs.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given
from hypothesis import strategies as st
from speech_clips import SR, pcm16, tone_clip, wav_bytes

from rnnkit import UserError
from rnnkit.speech.data import Utterance, audio_of, read_manifest
from rnnkit.speech.features import load_audio
from testkit import fuzz_settings

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


FAST = fuzz_settings(150)
MANY = fuzz_settings(1500)

# Paths a manifest may name, relative to its folder (made by the `folder` fixture).
PATHS = ["good.wav", "missing.wav", "a_folder", "broken.wav", "../good.wav", "", " "]
COLUMNS = ["path", "transcript", "text", "audio", "speaker", "x", ""]
CELLS = st.one_of(st.sampled_from(PATHS), st.text(max_size=30))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("speechfuzz") / "data"
    d.mkdir()
    sf.write(d / "good.wav", tone_clip("ab"), SR)
    sf.write(d.parent / "good.wav", tone_clip("ba"), SR)
    (d / "broken.wav").write_bytes(wav_bytes(pcm16(tone_clip("a")))[:200])
    (d / "a_folder").mkdir()
    return d


@st.composite
def csv_manifests(draw: st.DrawFn) -> tuple[str, bytes]:
    suffix = draw(st.sampled_from([".csv", ".tsv"]))
    sep = "\t" if suffix == ".tsv" else ","
    good = st.sampled_from([["path", "transcript"], ["audio", "text", "speaker"]])
    header = draw(good | st.lists(st.sampled_from(COLUMNS), min_size=0, max_size=4))
    width = len(header) if draw(st.booleans()) else draw(st.integers(0, 5))
    rows = draw(st.lists(st.lists(CELLS, min_size=width, max_size=width), max_size=6))
    quote = draw(st.booleans())
    cell = (lambda c: '"' + c.replace('"', '""') + '"') if quote else (lambda c: c)
    text = "\n".join(sep.join(cell(c) for c in row) for row in [header, *rows])
    raw = text.encode("utf-8")
    if draw(st.booleans()):
        raw = b"\xef\xbb\xbf" + raw  # a byte-order mark
    if draw(st.integers(0, 4)) == 0:
        raw += draw(st.binary(max_size=20))  # maybe not UTF-8 any more
    return suffix, raw


@st.composite
def jsonl_manifests(draw: st.DrawFn) -> tuple[str, bytes]:
    lines = []
    well_formed = draw(st.booleans())  # every line a good entry (or blank), or anything
    for _ in range(draw(st.integers(0, 5))):
        kind = 2 if well_formed else draw(st.integers(0, 3))
        if kind == 0:  # any JSON value
            lines.append(json.dumps(draw(JSON_VALUES)))
        elif kind == 1:  # an object with the right keys and values of any type
            keys = draw(st.lists(st.sampled_from(COLUMNS), max_size=3, unique=True))
            obj = {k: draw(st.one_of(st.sampled_from(PATHS), JSON_VALUES)) for k in keys}
            lines.append(json.dumps(obj))
        elif kind == 2:  # a good entry
            lines.append(json.dumps({"path": draw(st.sampled_from(PATHS)), "text": "ab"}))
        else:  # not JSON
            lines.append(draw(st.text(max_size=30)).replace("\n", " "))
    raw = "\n".join(lines).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 4)) == 0:
        raw += draw(st.binary(max_size=20))
    return ".jsonl", raw


def check_manifest(folder: Path, suffix: str, raw: bytes) -> None:
    """A list of utterances whose audio reads or is refused, or a one-line UserError."""
    path = folder / f"manifest{suffix}"
    path.write_bytes(raw)
    try:
        utts = read_manifest(path)
    except UserError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert utts and all(isinstance(u, Utterance) for u in utts)
    for u in utts[:3]:
        assert isinstance(u.audio, str) and isinstance(u.text, str)
        try:
            audio = audio_of(u, SR)
        except UserError as exc:
            assert "\n" not in str(exc)
            continue
        assert audio.dtype == np.float32 and audio.ndim == 1 and len(audio)


RATES = st.one_of(
    st.sampled_from([8000, 16000, 44100, 22050, 48000, 1000, 768_000, 44101, 0, 1, 3]),
    st.integers(0, 2**32 - 1),
)


@st.composite
def wav_files(draw: st.DrawFn) -> bytes:
    """A WAV with any header fields, whole, cut short, or random bytes after RIFF."""
    kind = draw(st.sampled_from([0, 1, 2, 2, 2, 3]))  # 0 random, 1 cut, 2 plausible, 3 any
    if kind == 0:  # random bytes after a RIFF/WAVE header
        size = draw(st.integers(0, 2**32 - 1))
        return b"RIFF" + struct.pack("<I", size) + b"WAVE" + draw(st.binary(max_size=400))
    data = pcm16(tone_clip("a")[: draw(st.integers(0, 1500))])
    if draw(st.booleans()):
        data = draw(st.binary(max_size=600))
    if kind == 2:  # a plausible header (any rate): most of these read
        fields = {"rate": draw(RATES), "channels": draw(st.sampled_from([1, 2]))}
    else:  # any field may be wrong
        fields = {
            "rate": draw(RATES),
            "channels": draw(st.one_of(st.sampled_from([1, 2, 0]), st.integers(0, 70000))),
            "bits": draw(
                st.one_of(st.sampled_from([16, 8, 24, 32, 64, 12, 0]), st.integers(0, 70000))
            ),
            "fmt": draw(
                st.one_of(st.sampled_from([1, 3, 6, 7, 0x55, 0xFFFE]), st.integers(0, 70000))
            ),
            "declared": draw(st.one_of(st.none(), st.integers(0, 2**32 - 1))),
        }
    raw = wav_bytes(data, **fields)
    if kind == 1:  # cut anywhere
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


def check_wav(folder: Path, raw: bytes) -> None:
    path = folder / "fuzz.wav"
    path.write_bytes(raw)
    try:
        audio = load_audio(path, SR)
    except UserError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    assert audio.dtype == np.float32 and audio.ndim == 1 and len(audio)
    assert np.isfinite(audio).all()


@FAST
@given(manifest=st.one_of(csv_manifests(), jsonl_manifests()))
def test_any_manifest_gives_utterances_or_a_user_error(
    folder: Path, manifest: tuple[str, bytes]
) -> None:
    check_manifest(folder, *manifest)


@FAST
@given(raw=wav_files())
def test_any_wav_gives_samples_or_a_user_error(folder: Path, raw: bytes) -> None:
    check_wav(folder, raw)


@pytest.mark.slow
@MANY
@given(manifest=st.one_of(csv_manifests(), jsonl_manifests()))
def test_any_manifest_gives_utterances_or_a_user_error_many(
    folder: Path, manifest: tuple[str, bytes]
) -> None:
    check_manifest(folder, *manifest)


@pytest.mark.slow
@MANY
@given(raw=st.one_of(wav_files(), st.binary(max_size=2000)))
def test_any_wav_gives_samples_or_a_user_error_many(folder: Path, raw: bytes) -> None:
    check_wav(folder, raw)


def test_the_fuzzed_inputs_include_the_cases_of_the_issue(folder: Path) -> None:
    """The named cases once each, so a regression shows up by name."""
    pcm = pcm16(tone_clip("ab"))
    wavs = {
        "0 samples": wav_bytes(b""),
        "truncated": wav_bytes(pcm)[:700],
        "wrong format": wav_bytes(pcm, fmt=0x55),
        "random after RIFF": b"RIFF\x10\x00\x00\x00WAVE" + bytes(range(200)),
    }
    for raw in wavs.values():
        (folder / "case.wav").write_bytes(raw)
        with pytest.raises(UserError, match="case.wav"):
            load_audio(folder / "case.wav", SR)
    manifests = {
        ".csv": (b"file,words\ngood.wav,ab\n", "needs a 'path'"),
        ".tsv": (b"path\ttranscript\nmissing.wav\tab\n", None),  # read; its audio is not
        ".jsonl": (b'{"path": "good.wav"}\n', "needs a 'path'"),
    }
    for suffix, (raw, expect) in manifests.items():
        (folder / f"m{suffix}").write_bytes(raw)
        if expect is None:
            (u,) = read_manifest(folder / f"m{suffix}")
            with pytest.raises(UserError, match="missing.wav not found"):
                audio_of(u, SR)
        else:
            with pytest.raises(UserError, match=expect):
                read_manifest(folder / f"m{suffix}")
    (folder / "m.csv").write_bytes(b"path,transcript\ngood.wav,\xff\xfe\n")
    with pytest.raises(UserError, match="not UTF-8"):
        read_manifest(folder / "m.csv")
