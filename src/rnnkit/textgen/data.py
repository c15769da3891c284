"""Textgen data: character vocabulary, built-in corpora, train/validation split, batching.

- :class:`CharVocab`: the characters of the training text, fitted once, saved as JSON.
  Encoding text with a character the vocabulary has never seen raises a
  :class:`~rnnkit.errors.UserError` naming the characters (no silent fallback).
- :func:`load_text`: a built-in dataset name (``tinyshakespeare``, downloaded
  from its canonical URL, sha256-checked and cached by :func:`rnnkit.data.fetch`)
  or a path to any UTF-8 text file.
- :func:`split_by_position`: the last ``val_fraction`` of the text is validation.
- :class:`StreamBatches` (truncated BPTT) and :class:`RandomWindows` (independent
  windows): iterables of :class:`TextBatch` for :class:`rnnkit.training.Trainer`.
- :func:`encode_texts` / :func:`prepare_data`: fit the vocabulary and encode the
  training and validation text; :func:`build_batches`: the Trainer's batches.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rnnkit.data.download import RemoteFile, fetch
from rnnkit.data.files import read_text
from rnnkit.errors import NotFittedError, UserError
from rnnkit.textgen.config import TextDataConfig
from rnnkit.training.distributed import DistContext

__all__ = [
    "DATASETS",
    "TINYSHAKESPEARE",
    "CharVocab",
    "RandomWindows",
    "StreamBatches",
    "TextBatch",
    "build_batches",
    "encode_texts",
    "load_text",
    "prepare_data",
    "split_by_position",
    "validation_text",
]

TINYSHAKESPEARE = RemoteFile(
    url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
    sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    mirror_path="tinyshakespeare/input.txt",
)

# Built-in corpora by name: ``--data tinyshakespeare``.
DATASETS: dict[str, RemoteFile] = {"tinyshakespeare": TINYSHAKESPEARE}


def load_text(source: str | os.PathLike[str]) -> str:
    """The text of a built-in dataset name or of a UTF-8 file (a byte-order mark at its
    start removed: it is not part of the text).

    Raises:
        UserError: the file is missing, a directory, unreadable, not UTF-8, or empty.
    """
    name = str(source)
    path = fetch(DATASETS[name]) if name in DATASETS else Path(name).expanduser()
    hint = f"pass a UTF-8 text file or one of the built-in datasets: {', '.join(DATASETS)}"
    text = read_text(path, what="text file", hint=hint)
    if not text:
        raise UserError(f"{path} is empty; pass a file with some text to learn from")
    return text


class CharVocab:
    """Characters <-> integer ids, fitted on a training text.

    Ids are assigned in sorted character order, so the same text always gives
    the same vocabulary. Learned attributes end in ``_`` (scikit-learn style).

    Attributes:
        chars_: the characters, index = id.
        stoi_: character -> id.
    """

    def __init__(self) -> None:
        self.chars_: list[str] = []
        self.stoi_: dict[str, int] = {}

    def fit(self, text: str) -> CharVocab:
        if not text:
            raise UserError("cannot fit a character vocabulary on an empty text")
        self.chars_ = sorted(set(text))
        self.stoi_ = {c: i for i, c in enumerate(self.chars_)}
        return self

    def __len__(self) -> int:
        return len(self.chars_)

    def _check_fitted(self) -> None:
        if not self.chars_:
            raise NotFittedError("CharVocab is not fitted; call fit(text) first")

    def encode(self, text: str) -> Tensor:
        """Ids of ``text`` as a (N,) int64 tensor.

        Raises:
            UserError: ``text`` has characters not in the vocabulary (they are named).
        """
        self._check_fitted()
        stoi = self.stoi_
        unknown = sorted({c for c in set(text) if c not in stoi})
        if unknown:
            shown = ", ".join(repr(c) for c in unknown[:8])
            more = f" and {len(unknown) - 8} more" if len(unknown) > 8 else ""
            raise UserError(
                f"the text has {len(unknown)} character(s) the model never saw in training: "
                f"{shown}{more}; remove them (the vocabulary has {len(stoi)} characters)"
            )
        return torch.tensor([stoi[c] for c in text], dtype=torch.long)

    def decode(self, ids: Tensor | list[int]) -> str:
        self._check_fitted()
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        return "".join(self.chars_[i] for i in ids)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "char", "chars": self.chars_}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CharVocab:
        chars = d.get("chars") if isinstance(d, dict) else None
        if not isinstance(chars, list) or not all(isinstance(c, str) for c in chars):
            raise UserError("vocab.json is malformed (no 'chars' list); the checkpoint is damaged")
        vocab = cls()
        vocab.chars_ = list(chars)
        vocab.stoi_ = {c: i for i, c in enumerate(chars)}
        return vocab


def split_by_position(ids: Tensor, val_fraction: float = 0.1) -> tuple[Tensor, Tensor]:
    """First ``1 - val_fraction`` of the stream for training, the rest for validation."""
    if not 0.0 < val_fraction < 1.0:
        raise UserError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    n_val = int(round(len(ids) * val_fraction))
    if n_val < 2 or len(ids) - n_val < 2:
        raise UserError(
            f"the text ({len(ids)} characters) is too short to split with val_fraction "
            f"{val_fraction}; use a longer text"
        )
    return ids[: len(ids) - n_val], ids[len(ids) - n_val :]


@dataclass
class TextBatch:
    """Inputs ``x`` (B, T), next-character targets ``y`` (B, T), and ``reset`` (B,) bool:
    rows whose carried state must be zeroed before this batch (``None``: no reset)."""

    x: Tensor
    y: Tensor
    reset: Tensor | None = None

    def to(self, device: torch.device | str) -> TextBatch:
        reset = None if self.reset is None else self.reset.to(device)
        return TextBatch(self.x.to(device), self.y.to(device), reset)


class StreamBatches:
    """Truncated-BPTT batches: B contiguous streams read chunk by chunk.

    The token stream (N,) is cut into ``batch_size * world_size`` rows of equal
    length L = (N - 1) // rows; this rank reads rows ``rank*B .. rank*B + B - 1``.
    Batch j holds columns ``j*T .. j*T + T - 1`` of every row, so row b of batch
    j + 1 continues row b of batch j and the hidden state can be carried. The
    first batch of an epoch has ``reset`` all True. One epoch = L // T batches.
    """

    def __init__(
        self, ids: Tensor, batch_size: int, seq_len: int, *, rank: int = 0, world_size: int = 1
    ) -> None:
        if batch_size < 1 or seq_len < 1:
            raise UserError(f"batch_size and seq_len must be >= 1, got {batch_size} and {seq_len}")
        rows = batch_size * world_size
        row_len = (len(ids) - 1) // rows  # L
        if row_len < seq_len:
            raise UserError(
                f"the text ({len(ids)} characters) is too short for {rows} streams of at least "
                f"seq_len={seq_len} characters; lower batch_size or seq_len, or use more text"
            )
        x = ids[: rows * row_len].view(rows, row_len)  # (rows, L)
        y = ids[1 : rows * row_len + 1].view(rows, row_len)  # (rows, L): next character
        self.x = x[rank * batch_size : (rank + 1) * batch_size]  # (B, L)
        self.y = y[rank * batch_size : (rank + 1) * batch_size]
        self.seq_len = seq_len
        self.batch_size = batch_size

    def __len__(self) -> int:
        return self.x.size(1) // self.seq_len

    def iter_from(self, start: int) -> Iterator[TextBatch]:
        T, B = self.seq_len, self.batch_size
        for j in range(start, len(self)):
            reset = torch.full((B,), j == 0, dtype=torch.bool)
            yield TextBatch(self.x[:, j * T : (j + 1) * T], self.y[:, j * T : (j + 1) * T], reset)

    def __iter__(self) -> Iterator[TextBatch]:
        return self.iter_from(0)


class RandomWindows:
    """Independent random windows of ``seq_len`` characters (no state carried).

    Each epoch is ``batches_per_epoch`` batches; the windows of epoch e on rank r
    come from a generator seeded with (seed, e, r), so iterating again gives the
    same batches (needed for exact resume) and ranks see different windows.
    """

    def __init__(
        self,
        ids: Tensor,
        batch_size: int,
        seq_len: int,
        *,
        batches_per_epoch: int = 1000,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if len(ids) < seq_len + 1:
            raise UserError(
                f"the text ({len(ids)} characters) is shorter than seq_len+1={seq_len + 1}; "
                "lower seq_len or use more text"
            )
        self.ids = ids
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.batches_per_epoch = batches_per_epoch
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[TextBatch]:
        g = torch.Generator().manual_seed(
            (self.seed * 1_000_003 + self.epoch * self.world_size + self.rank) % 2**63
        )
        T = self.seq_len
        offsets = torch.arange(T + 1)
        for _ in range(self.batches_per_epoch):
            starts = torch.randint(0, len(self.ids) - T, (self.batch_size,), generator=g)
            window = self.ids[starts[:, None] + offsets]  # (B, T + 1)
            yield TextBatch(window[:, :-1], window[:, 1:])


# ---------------------------------------------------------------------------
# From a config to the Trainer's batches
# ---------------------------------------------------------------------------


def _check_mode(cfg: TextDataConfig) -> None:
    if cfg.mode not in ("tbptt", "random"):
        raise UserError(f"data.mode must be tbptt or random, got {cfg.mode!r}")


def encode_texts(
    text: str, val_text: str | None = None, *, val_fraction: float = 0.1
) -> tuple[CharVocab, Tensor, Tensor]:
    """Fit the vocabulary on the training text and encode both parts.

    ``val_text`` None: the last ``val_fraction`` of ``text`` is validation
    (:func:`split_by_position`). Characters that occur only in the validation
    text are added to the vocabulary too (documented fallback): otherwise the
    validation loss could not be computed at all.
    """
    if val_text is None:
        n_train = len(text) - int(round(len(text) * val_fraction))
        train_part, val_part = text[:n_train] or text, text[n_train:]
    else:
        if not text or not val_text:
            raise UserError("the training and validation texts must not be empty")
        train_part, val_part = text, val_text
    vocab = CharVocab().fit(train_part)
    if set(val_part) - set(vocab.stoi_):
        vocab = CharVocab().fit(train_part + val_part)
    if val_text is None:
        return (vocab, *split_by_position(vocab.encode(text), val_fraction))  # (N,) -> 2 parts
    return vocab, vocab.encode(text), vocab.encode(val_text)


def prepare_data(cfg: TextDataConfig) -> tuple[CharVocab, Tensor, Tensor]:
    """Load ``cfg.source``, fit the vocabulary on its training part, encode both parts."""
    _check_mode(cfg)
    return encode_texts(load_text(cfg.source), val_fraction=cfg.val_fraction)


def validation_text(cfg: TextDataConfig) -> str:
    """The validation tail of ``cfg.source``: its last ``cfg.val_fraction``, as in training."""
    full = load_text(cfg.source)
    n_val = int(round(len(full) * cfg.val_fraction))
    return full[len(full) - n_val :]


def build_batches(
    cfg: TextDataConfig, train_ids: Tensor, val_ids: Tensor, *, seed: int, dist: DistContext
) -> tuple[Any, StreamBatches]:
    """Training batches (TBPTT streams or random windows) and validation streams."""
    _check_mode(cfg)
    B, T, r, w = cfg.batch_size, cfg.seq_len, dist.rank, dist.world_size
    if cfg.mode == "tbptt":
        train_batches: Any = StreamBatches(train_ids, B, T, rank=r, world_size=w)
    else:
        train_batches = RandomWindows(
            train_ids,
            B,
            T,
            batches_per_epoch=cfg.batches_per_epoch,
            seed=seed,
            rank=r,
            world_size=w,
        )
    # Fewer validation streams when the validation text is short.
    val_rows = max(1, min(B, (len(val_ids) - 1) // (T * w)))
    val_batches = StreamBatches(val_ids, val_rows, T, rank=r, world_size=w)
    return train_batches, val_batches
