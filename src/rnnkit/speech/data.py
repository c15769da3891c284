"""Speech corpora for CTC: manifests, LibriSpeech folders, FSDD, connected digits, splits.

An utterance is audio (a file path or samples already in memory) plus its
transcript. Sources:

- a manifest: ``.csv`` / ``.tsv`` with a header holding ``path`` and
  ``transcript`` (or ``text``) columns, or ``.jsonl`` with those keys;
  relative paths are resolved against the manifest's folder;
- a LibriSpeech-style folder: ``*.trans.txt`` files with lines
  ``<utterance-id> <TRANSCRIPT>`` beside ``<utterance-id>.flac`` (or ``.wav``);
- ``fsdd``: the Free Spoken Digit Dataset (8 kHz, "zero".."nine", six
  speakers), downloaded file by file from the dataset's GitHub repository at a
  pinned commit, each file checked against its sha256 (``fsdd_sha256sums.txt``
  beside this module);
- connected digits: FSDD clips concatenated with short random silences
  (:func:`connected_digits`).

:func:`load_splits` turns the ``data`` section of the config into (train,
validation, test) utterances and :func:`eval_utterances` picks what
``evaluate`` scores. Transcripts are normalised (:func:`normalize_text`:
lower case, single spaces).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.data.download import RemoteFile, fetch
from rnnkit.data.files import check_file, read_text, split_lines
from rnnkit.errors import UserError
from rnnkit.speech.config import SpeechConfig
from rnnkit.speech.features import AudioTooLong, load_audio

__all__ = [
    "DIGIT_WORDS",
    "AudioInput",
    "FSDD_COMMIT",
    "Utterance",
    "as_utterances",
    "audio_of",
    "connected_digits",
    "eval_utterances",
    "fsdd_files",
    "fsdd_take",
    "fsdd_utterances",
    "load_source",
    "load_splits",
    "normalize_text",
    "read_librispeech",
    "read_manifest",
    "split_off_validation",
]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FSDD_COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"
_FSDD_URL = f"https://raw.githubusercontent.com/Jakobovski/free-spoken-digit-dataset/{FSDD_COMMIT}/"
_FSDD_SUMS = Path(__file__).resolve().parent / "fsdd_sha256sums.txt"
_FSDD_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")


@dataclass
class Utterance:
    """One example: ``audio`` is a path or mono float32 samples; ``speaker`` may be empty."""

    audio: str | np.ndarray
    text: str
    speaker: str = ""
    key: str = ""  # a name for messages: the file name or a generated id


def normalize_text(text: str) -> str:
    """Lower case, whitespace runs collapsed to one space, ends stripped."""
    return " ".join(text.lower().split())


# ---------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------


def read_manifest(path: str | os.PathLike[str]) -> list[Utterance]:
    """Utterances of a CSV/TSV (header with ``path`` and ``transcript``/``text``) or JSONL file.

    The file is UTF-8 (a byte-order mark is dropped). A missing file, a directory, an
    unreadable file, a malformed row and a field of the wrong type are one-line errors.
    """
    p = check_file(path, what="manifest", hint="pass a .csv, .tsv or .jsonl file or 'fsdd'")
    if p.suffix not in (".jsonl", ".csv", ".tsv"):
        raise UserError(f"manifest {p} must end in .csv, .tsv or .jsonl")
    text = read_text(p, what="manifest")
    rows: list[Any] = []
    if p.suffix == ".jsonl":
        for n, line in enumerate(split_lines(text), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except (json.JSONDecodeError, RecursionError) as exc:
                    raise UserError(f"{p} line {n} is not valid JSON ({exc})") from None
    else:
        delimiter = "\t" if p.suffix == ".tsv" else ","
        try:
            rows = list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))
        except csv.Error as exc:
            raise UserError(f"cannot read manifest {p} ({exc}); check its format") from None
    out = []
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise UserError(f"{p} entry {n} must be an object with path and transcript")
        text = row.get("transcript", row.get("text"))
        audio = row.get("path", row.get("audio"))
        if audio is None or text is None:
            raise UserError(
                f"{p} entry {n} needs a 'path' and a 'transcript' (or 'text') field, got "
                f"{sorted(str(k) for k, v in row.items() if v is not None)}"
            )
        if not isinstance(audio, str) or not audio.strip():
            raise UserError(f"{p} entry {n}: 'path' must name an audio file, got {audio!r:.60}")
        if not isinstance(text, str | int | float) or isinstance(text, bool):
            raise UserError(
                f"{p} entry {n}: the transcript must be text, got {type(text).__name__}"
            )
        full = Path(audio) if Path(audio).is_absolute() else p.parent / audio
        out.append(
            Utterance(str(full), normalize_text(str(text)), str(row.get("speaker", "")), audio)
        )
    if not out:
        raise UserError(f"manifest {p} lists no utterances")
    return out


def read_librispeech(root: str | os.PathLike[str]) -> list[Utterance]:
    """Utterances of a LibriSpeech-style tree (``*.trans.txt`` beside the audio files)."""
    out = []
    for trans in sorted(Path(root).rglob("*.trans.txt")):
        for line in split_lines(read_text(trans, what="transcript file")):
            if not line.strip():
                continue
            key, _, text = line.strip().partition(" ")
            audio = trans.parent / f"{key}.flac"
            if not audio.exists() and (trans.parent / f"{key}.wav").exists():
                audio = trans.parent / f"{key}.wav"
            out.append(Utterance(str(audio), normalize_text(text), key.split("-")[0], key))
    if not out:
        raise UserError(
            f"folder {root} holds no *.trans.txt files; pass a LibriSpeech-style folder, a "
            "manifest (.csv/.tsv/.jsonl) or 'fsdd'"
        )
    return out


def fsdd_files() -> list[RemoteFile]:
    """The 2,700 FSDD recordings of the official training split (takes 5-49), with checksums."""
    files = []
    for line in _FSDD_SUMS.read_text(encoding="ascii").splitlines():
        digest, _, rel = line.strip().partition("  ")
        files.append(RemoteFile(_FSDD_URL + rel, digest, "fsdd/" + rel))
    return files


def fsdd_utterances(
    *, speakers: Sequence[str] = (), max_take: int = 0, quiet: bool = False
) -> list[Utterance]:
    """Fetch (download once, verify, cache) FSDD recordings and return them as utterances.

    ``speakers``: keep only these (default all six); ``max_take``: keep only
    takes ``5 .. max_take`` (0 = all up to 49), to fetch a small subset.
    """
    out = []
    known: set[str] = set()
    files = []
    for remote in fsdd_files():
        m = _FSDD_NAME.match(Path(remote.mirror_path).name)
        if m is None:  # pragma: no cover - the checksum list is fixed
            continue
        digit, speaker, take = int(m.group(1)), m.group(2), int(m.group(3))
        known.add(speaker)
        if (speakers and speaker not in speakers) or (max_take and take > max_take):
            continue
        files.append((remote, digit, speaker, take))
    missing = set(speakers) - known
    if missing:
        raise UserError(
            f"unknown FSDD speaker(s) {', '.join(sorted(missing))}; "
            f"choose from {', '.join(sorted(known))}"
        )
    if not quiet and files:
        print(f"fsdd: {len(files)} recordings (fetched once, then cached)", file=sys.stderr)
    for remote, digit, speaker, take in files:
        path = fetch(remote, quiet=True)
        out.append(Utterance(str(path), DIGIT_WORDS[digit], speaker, f"{path.stem}#{take}"))
    return out


def fsdd_take(u: Utterance) -> int:
    """The take index of an FSDD utterance (``7_jackson_32.wav`` -> 32)."""
    return int(u.key.rsplit("#", 1)[1])


def connected_digits(
    clips: Sequence[tuple[np.ndarray, str]],
    count: int,
    *,
    sample_rate: int,
    max_digits: int = 7,
    min_digits: int = 1,
    silence_s: tuple[float, float] = (0.05, 0.25),
    seed: int = 0,
) -> list[Utterance]:
    """``count`` utterances of ``min_digits``-``max_digits`` clips joined by random silences.

    ``clips`` are (samples, word) pairs. Each utterance starts and ends with a
    silence as well; silences carry faint Gaussian noise (std 1e-3) so the
    log-mel floor is not a constant the model could key on. Transcript: the
    words joined by spaces.
    """
    if not clips:
        raise UserError("connected digits need at least one clip")
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        k = int(rng.integers(min_digits, max_digits + 1))
        picks = rng.integers(0, len(clips), size=k)
        parts, words = [], []
        for j in picks:
            gap = int(rng.uniform(*silence_s) * sample_rate)
            parts.append(rng.normal(0, 1e-3, gap).astype(np.float32))
            parts.append(clips[int(j)][0])
            words.append(clips[int(j)][1])
        gap = int(rng.uniform(*silence_s) * sample_rate)
        parts.append(rng.normal(0, 1e-3, gap).astype(np.float32))
        out.append(Utterance(np.concatenate(parts), " ".join(words), "", f"connected-{i}"))
    return out


def load_source(source: str, *, quiet: bool = False, **fsdd_kwargs: object) -> list[Utterance]:
    """``fsdd``, a manifest file or a LibriSpeech-style folder."""
    if source == "fsdd":
        return fsdd_utterances(quiet=quiet, **fsdd_kwargs)  # type: ignore[arg-type]
    p = Path(source)
    if p.is_dir():
        return read_librispeech(p)
    if p.suffix in (".csv", ".tsv", ".jsonl"):
        return read_manifest(p)
    raise UserError(
        f"data source {source!r} is neither 'fsdd', a folder, nor a .csv/.tsv/.jsonl manifest"
    )


# ---------------------------------------------------------------------------
# Audio of an utterance, splits
# ---------------------------------------------------------------------------


def audio_of(u: Utterance, sample_rate: int, *, max_seconds: float = 0.0) -> np.ndarray:
    """The mono float32 samples of ``u`` (read and resampled when it is a file).

    ``max_seconds > 0``: longer audio raises :class:`~rnnkit.speech.features.AudioTooLong`
    (a file is judged by its header, before its samples are read).
    """
    if isinstance(u.audio, np.ndarray):
        audio = np.asarray(u.audio, dtype=np.float32).flatten()
        if max_seconds > 0 and len(audio) > max_seconds * sample_rate:
            seconds = len(audio) / sample_rate
            raise AudioTooLong(
                f"{u.key} lasts {seconds:.1f} s, more than {max_seconds:g} s", seconds=seconds
            )
        return audio
    return load_audio(u.audio, sample_rate, max_seconds=max_seconds)


AudioInput = str | os.PathLike[str] | np.ndarray | torch.Tensor


def as_utterances(inputs: AudioInput | Iterable[AudioInput]) -> list[Utterance]:
    """Inputs of ``transcribe`` as :class:`Utterance` objects without text.

    ``inputs``: one path or 1-D array of samples, or an iterable of them.
    """
    if isinstance(inputs, str | os.PathLike) or (
        isinstance(inputs, np.ndarray | torch.Tensor) and inputs.ndim <= 1
    ):
        inputs = [inputs]
    out = []
    for i, x in enumerate(inputs):  # type: ignore[arg-type]
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        if isinstance(x, np.ndarray):
            out.append(Utterance(np.asarray(x, dtype=np.float32), "", "", f"array {i}"))
        else:
            out.append(Utterance(str(x), "", "", str(x)))
    return out


def load_splits(
    cfg: SpeechConfig, *, quiet: bool = False
) -> tuple[list[Utterance], list[Utterance], list[Utterance]]:
    """(train, validation, test) utterances for ``cfg.data``.

    FSDD, ``split=take``: takes 5-9 of every speaker are the test set, 10-14
    validation, the rest training (the README's advice; takes 0-4 are FSDD's
    own test split, not in the mirror). ``split=speaker``: ``holdout_speaker``
    is the test set, takes 5-9 of the others validation. Other sources: a
    seeded random ``val_fraction`` is validation, the test set is empty (pass
    a manifest to ``eval``). ``task=connected`` then joins clips of each split.
    """
    d = cfg.data
    d.validate()
    if d.source == "fsdd":
        speakers = [s.strip() for s in d.speakers.split(",") if s.strip()]
        utts = load_source("fsdd", quiet=quiet, speakers=speakers, max_take=d.max_take)
        if d.split == "speaker":
            if d.holdout_speaker not in {u.speaker for u in utts}:
                raise UserError(
                    f"data.holdout_speaker {d.holdout_speaker!r} is not among the speakers used "
                    f"({', '.join(sorted({u.speaker for u in utts}))})"
                )
            test = [u for u in utts if u.speaker == d.holdout_speaker]
            rest = [u for u in utts if u.speaker != d.holdout_speaker]
            val = [u for u in rest if fsdd_take(u) <= 9]
            train = [u for u in rest if fsdd_take(u) > 9]
        else:
            test = [u for u in utts if fsdd_take(u) <= 9]
            val = [u for u in utts if 10 <= fsdd_take(u) <= 14]
            train = [u for u in utts if fsdd_take(u) > 14]
    else:
        train, val = split_off_validation(load_source(d.source), cfg)
        test = []
    if not train or not val:
        raise UserError(
            f"the data gives {len(train)} training and {len(val)} validation utterances; "
            "both need at least one (use more data, or a larger data.max_take)"
        )
    if d.task == "connected":
        sr = cfg.features.sample_rate
        n = d.connected_train

        def join(part: list[Utterance], count: int, seed: int) -> list[Utterance]:
            clips = [(audio_of(u, sr), u.text) for u in part]
            return connected_digits(
                clips,
                count,
                sample_rate=sr,
                min_digits=d.min_words,
                max_digits=d.max_words,
                seed=seed,
            )

        seed = cfg.train.seed
        train = join(train, n, seed)
        val = join(val, max(1, n // 10), seed + 1)
        test = join(test, max(1, n // 10), seed + 2) if test else []
    return train, val, test


def split_off_validation(
    utts: Sequence[Utterance], cfg: SpeechConfig
) -> tuple[list[Utterance], list[Utterance]]:
    """(train, validation): a random ``data.val_fraction`` (seeded by ``train.seed``)."""
    frac = cfg.data.val_fraction
    if not 0 < frac < 1:
        raise UserError(f"data.val_fraction must be in (0, 1), got {frac}")
    order = np.random.default_rng(cfg.train.seed).permutation(len(utts))
    n_val = max(1, int(round(len(utts) * frac)))
    return [utts[i] for i in order[n_val:]], [utts[i] for i in order[:n_val]]


def eval_utterances(
    cfg: SpeechConfig,
    data: Sequence[Utterance] | str | os.PathLike[str] | None,
    *,
    quiet: bool = False,
) -> tuple[list[Utterance], str]:
    """(utterances to score, what they are): ``data`` as given, a source read with
    :func:`load_source`, or for ``None`` the held-out test split of ``cfg.data``."""
    if data is None:
        _, _, utts = load_splits(cfg, quiet=quiet)
        if not utts:
            raise UserError(
                f"data.source {cfg.data.source!r} has no test split; pass "
                "utterances or a manifest (--data MANIFEST)"
            )
        return utts, f"{cfg.data.source} (held-out test split)"
    if isinstance(data, str | os.PathLike):
        return load_source(str(data), quiet=quiet), str(data)
    utts = list(data)
    return utts, f"{len(utts)} utterances"
