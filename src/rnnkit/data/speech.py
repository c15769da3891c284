"""Speech corpora for CTC: manifests, LibriSpeech folders, FSDD and connected digits.

An utterance is audio (a file path or samples already in memory) plus its
transcript. Sources:

- a manifest: ``.csv`` / ``.tsv`` with a header holding ``path`` and
  ``transcript`` (or ``text``) columns, or ``.jsonl`` with those keys;
  relative paths are resolved against the manifest's folder;
- a LibriSpeech-style folder: ``*.trans.txt`` files with lines
  ``<utterance-id> <TRANSCRIPT>`` beside ``<utterance-id>.flac`` (or ``.wav``);
- ``fsdd``: the Free Spoken Digit Dataset (8 kHz, "zero".."nine", six
  speakers), downloaded file by file from the dataset's GitHub repository at a
  pinned commit, each file checked against its sha256;
- connected digits: FSDD clips concatenated with short random silences
  (:func:`connected_digits`).

Transcripts are normalised (:func:`normalize_text`: lower case, single spaces).
:class:`CharVocab` maps characters to CTC labels with the blank at index 0.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from rnnkit.data.download import RemoteFile, fetch
from rnnkit.errors import UserError

__all__ = [
    "DIGIT_WORDS",
    "FSDD_COMMIT",
    "CharVocab",
    "SpeechBatch",
    "SpeechBatches",
    "Utterance",
    "collate",
    "connected_digits",
    "ctc_min_frames",
    "fsdd_files",
    "fsdd_take",
    "fsdd_utterances",
    "load_source",
    "normalize_text",
    "read_librispeech",
    "read_manifest",
]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FSDD_COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"
_FSDD_URL = f"https://raw.githubusercontent.com/Jakobovski/free-spoken-digit-dataset/{FSDD_COMMIT}/"
_FSDD_SUMS = Path(__file__).resolve().parent.parent / "speech" / "fsdd_sha256sums.txt"
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


def ctc_min_frames(labels: Sequence[int]) -> int:
    """The fewest CTC frames that can emit ``labels``: its length plus one blank per repeat."""
    repeats = sum(1 for a, b in zip(labels, labels[1:], strict=False) if a == b)
    return len(labels) + repeats


class CharVocab:
    """Characters <-> CTC labels; label 0 is the blank, characters follow in sorted order."""

    def __init__(self) -> None:
        self.chars_: list[str] = []
        self.stoi_: dict[str, int] = {}

    def fit(self, texts: Sequence[str]) -> CharVocab:
        chars = sorted(set("".join(texts)))
        if not chars:
            raise UserError("the training transcripts are empty; give each utterance its text")
        self.chars_ = chars
        self.stoi_ = {c: i + 1 for i, c in enumerate(chars)}
        return self

    def __len__(self) -> int:
        """Number of CTC classes: characters + blank."""
        return len(self.chars_) + 1

    def unknown(self, text: str) -> set[str]:
        return set(text) - set(self.stoi_)

    def encode(self, text: str) -> list[int]:
        bad = self.unknown(text)
        if bad:
            raise UserError(
                f"transcript {text!r} has characters outside the vocabulary "
                f"{''.join(sorted(bad))!r}; the model knows {''.join(self.chars_)!r}"
            )
        return [self.stoi_[c] for c in text]

    def decode(self, labels: Sequence[int]) -> str:
        return "".join(self.chars_[i - 1] for i in labels if i > 0)

    def to_dict(self) -> dict[str, list[str]]:
        return {"chars": self.chars_}

    @classmethod
    def from_dict(cls, d: dict[str, list[str]]) -> CharVocab:
        v = cls()
        v.chars_ = list(d["chars"])
        v.stoi_ = {c: i + 1 for i, c in enumerate(v.chars_)}
        return v


# ---------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------


def read_manifest(path: str | os.PathLike[str]) -> list[Utterance]:
    """Utterances of a CSV/TSV (header with ``path`` and ``transcript``/``text``) or JSONL file."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"manifest {p} not found; pass a .csv, .tsv or .jsonl file or 'fsdd'")
    rows: list[dict[str, str]] = []
    try:
        if p.suffix == ".jsonl":
            with open(p, encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError as exc:
                            raise UserError(f"{p} line {n} is not valid JSON ({exc})") from exc
        elif p.suffix in (".csv", ".tsv"):
            with open(p, encoding="utf-8", newline="") as f:
                rows = list(csv.DictReader(f, delimiter="\t" if p.suffix == ".tsv" else ","))
        else:
            raise UserError(f"manifest {p} must end in .csv, .tsv or .jsonl")
    except UnicodeDecodeError as exc:
        raise UserError(f"manifest {p} is not UTF-8 text ({exc})") from exc
    out = []
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise UserError(f"{p} entry {n} must be an object with path and transcript")
        text = row.get("transcript", row.get("text"))
        audio = row.get("path", row.get("audio"))
        if audio is None or text is None:
            raise UserError(
                f"{p} entry {n} needs a 'path' and a 'transcript' (or 'text') field, "
                f"got {sorted(row)}"
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
        for line in trans.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            key, _, text = line.strip().partition(" ")
            audio = trans.parent / f"{key}.flac"
            if not audio.exists() and (trans.parent / f"{key}.wav").exists():
                audio = trans.parent / f"{key}.wav"
            out.append(Utterance(str(audio), normalize_text(text), key.split("-")[0], key))
    if not out:
        raise UserError(
            f"{root} holds no *.trans.txt files; pass a LibriSpeech-style folder, a manifest "
            "(.csv/.tsv/.jsonl) or 'fsdd'"
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
        import sys

        print(f"fsdd: {len(files)} recordings (fetched once, then cached)", file=sys.stderr)
    for remote, digit, speaker, take in files:
        path = fetch(remote, quiet=True)
        out.append(Utterance(str(path), DIGIT_WORDS[digit], speaker, f"{path.stem}#{take}"))
    return out


def fsdd_take(u: Utterance) -> int:
    """The take index of an FSDD utterance (``7_jackson_32.wav`` -> 32)."""
    return int(u.key.rsplit("#", 1)[1])


def load_source(source: str, **fsdd_kwargs: object) -> list[Utterance]:
    """``fsdd``, a manifest file or a LibriSpeech-style folder."""
    if source == "fsdd":
        return fsdd_utterances(**fsdd_kwargs)  # type: ignore[arg-type]
    p = Path(source)
    if p.is_dir():
        return read_librispeech(p)
    if p.suffix in (".csv", ".tsv", ".jsonl"):
        return read_manifest(p)
    raise UserError(
        f"data source {source!r} is neither 'fsdd', a folder, nor a .csv/.tsv/.jsonl manifest"
    )


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


# ---------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------


class SpeechBatch(NamedTuple):
    feats: Tensor  # (B, T, M), zero-padded
    feat_lens: Tensor  # (B,) int64
    targets: Tensor  # (B, S) int64, zero-padded labels (1..V-1)
    target_lens: Tensor  # (B,) int64


def collate(items: Sequence[tuple[Tensor, list[int]]]) -> SpeechBatch:
    B = len(items)
    T = max(f.size(0) for f, _ in items)
    S = max(1, max(len(t) for _, t in items))
    feats = torch.zeros(B, T, items[0][0].size(1))
    targets = torch.zeros(B, S, dtype=torch.long)
    for b, (f, t) in enumerate(items):
        feats[b, : f.size(0)] = f
        targets[b, : len(t)] = torch.tensor(t, dtype=torch.long)
    return SpeechBatch(
        feats,
        torch.tensor([f.size(0) for f, _ in items]),
        targets,
        torch.tensor([len(t) for _, t in items]),
    )


class SpeechBatches:
    """Shuffled batches of similar length (sorted within pools of 50 batches), per epoch.

    Deterministic for a given (seed, epoch): a resumed run sees the same batches.
    """

    def __init__(
        self,
        items: Sequence[tuple[Tensor, list[int]]],
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        if batch_size <= 0:
            raise UserError(f"data.batch_size must be > 0, got {batch_size}")
        self.items = list(items)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return (len(self.items) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[SpeechBatch]:
        n, bs = len(self.items), self.batch_size
        if self.shuffle:
            order = np.random.default_rng((self.seed, self.epoch)).permutation(n)
            pool = 50 * bs
            # Sort by length inside pools: less padding, still random across pools.
            chunks = [
                sorted(order[i : i + pool], key=lambda j: self.items[j][0].size(0))
                for i in range(0, n, pool)
            ]
            batches = [c[i : i + bs] for c in chunks for i in range(0, len(c), bs)]
            perm = np.random.default_rng((self.seed, self.epoch, 1)).permutation(len(batches))
            batches = [batches[i] for i in perm]
        else:
            batches = [list(range(i, min(i + bs, n))) for i in range(0, n, bs)]
        for idx in batches:
            yield collate([self.items[int(j)] for j in idx])
