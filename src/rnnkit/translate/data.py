"""Parallel text for translation: reading, checking, the built-in Multi30k, and batches.

A data source is one of

- ``"multi30k"`` (English-German Multi30k task 1, train 29,000 / validation
  1,014 pairs; downloaded from the dataset's GitHub repository with sha256
  check and cache, :mod:`rnnkit.data.download`); ``"multi30k:val"`` names the
  validation split;
- ``"SRC_FILE,TGT_FILE"``: two aligned plain-text files, one sentence per line
  (line i of one translates line i of the other);
- ``"FILE.tsv"``: one pair per line, source TAB target.

Files may be gzip-compressed (detected by their magic bytes); a UTF-8
byte-order mark at the start is removed. Handling of bad input:

- files with different line counts, or a TSV line without exactly two
  columns: :class:`~rnnkit.errors.UserError` naming the files / line; a
  missing file, a directory, an unreadable or non-UTF-8 file and a damaged
  gzip file each get their own one-line error;
- pairs with an empty side: dropped, and the count is reported by
  :func:`clean_pairs`; over-long pairs (more than ``max_tokens`` subword
  tokens on either side) are dropped from training the same way.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from rnnkit.data.download import RemoteFile, fetch
from rnnkit.data.files import read_text, split_lines
from rnnkit.errors import UserError
from rnnkit.translate.config import TranslateDataConfig

__all__ = [
    "MULTI30K",
    "Pair",
    "PairBatches",
    "PairsLike",
    "Resample",
    "Seq2SeqBatch",
    "as_pairs",
    "clean_pairs",
    "cleaned",
    "eval_source",
    "fit_pairs",
    "load_pairs",
    "make_batch",
    "prepare_pairs",
    "read_lines",
]

_BASE = "https://raw.githubusercontent.com/multi30k/dataset/a3d2e0d26b56f3846f66a952536ffed4e401d05a/data/task1/raw/"
_SHA = {
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
}
# split -> language -> remote file
MULTI30K: dict[str, dict[str, RemoteFile]] = {
    split: {
        lang: RemoteFile(
            _BASE + f"{split}.{lang}.gz", _SHA[f"{split}.{lang}.gz"], f"multi30k/{split}.{lang}.gz"
        )
        for lang in ("en", "de")
    }
    for split in ("train", "val")
}


class Pair(NamedTuple):
    src: str
    tgt: str


def read_lines(path: str | Path, *, what: str = "file") -> list[str]:
    """The lines of a UTF-8 text file (gzip detected by its magic bytes; a byte-order mark
    removed), without their newlines; ``what`` names the file in messages."""
    text = read_text(
        path, what=what, hint="pass an existing text file (gzip is fine)", gzip_ok=True
    )
    return split_lines(text)


def _multi30k(split: str, src: str, tgt: str) -> list[Pair]:
    for lang in (src, tgt):
        if lang not in ("en", "de"):
            raise UserError(
                f"multi30k has languages en and de, got {lang!r}; set data.src_lang and "
                "data.tgt_lang (rnnkit translate train: --src/--tgt)"
            )
    if src == tgt:
        raise UserError(f"source and target language are both {src!r}; pick en and de")
    a = read_lines(fetch(MULTI30K[split][src]))
    b = read_lines(fetch(MULTI30K[split][tgt]))
    return [Pair(x, y) for x, y in zip(a, b, strict=True)]


def load_pairs(
    source: str, *, src_lang: str = "en", tgt_lang: str = "de", split: str = "train"
) -> list[Pair]:
    """Pairs from a data source (see the module docstring); no filtering yet.

    ``split`` (``"train"`` or ``"val"``) applies to ``multi30k``; ``multi30k:val``
    overrides it.
    """
    name, _, sub = source.partition(":")
    if name == "multi30k":
        split = sub or split
        if split not in ("train", "val"):
            raise UserError(f"multi30k splits are train and val, got {split!r}")
        return _multi30k(split, src_lang, tgt_lang)
    if "," in source:
        parts = [s.strip() for s in source.split(",")]
        if len(parts) != 2 or not all(parts):
            raise UserError(
                f"--data {source!r}: give two files as SRC_FILE,TGT_FILE (one sentence a line)"
            )
        a, b = read_lines(parts[0]), read_lines(parts[1])
        if len(a) != len(b):
            raise UserError(
                f"the files are misaligned: {parts[0]} has {len(a)} lines but {parts[1]} has "
                f"{len(b)}; line i of one must translate line i of the other"
            )
        return [Pair(x, y) for x, y in zip(a, b, strict=True)]
    path = Path(source)
    if not path.exists() and not path.is_symlink():
        raise UserError(
            f"--data {source!r} is neither multi30k, a SRC_FILE,TGT_FILE pair nor an existing "
            "TSV file"
        )
    pairs = []
    for i, line in enumerate(read_lines(path, what="TSV file"), start=1):
        cols = line.split("\t")
        if len(cols) != 2:
            raise UserError(
                f"{path} line {i} has {len(cols)} tab-separated columns; a TSV needs exactly "
                "two (source TAB target)"
            )
        pairs.append(Pair(cols[0], cols[1]))
    return pairs


def clean_pairs(pairs: Sequence[Pair]) -> tuple[list[Pair], int]:
    """Strip whitespace and drop pairs with an empty side; return (kept, dropped count)."""
    kept = [Pair(p.src.strip(), p.tgt.strip()) for p in pairs]
    kept = [p for p in kept if p.src and p.tgt]
    return kept, len(pairs) - len(kept)


Say = Callable[[str], None]


def _silent(message: str) -> None:
    pass


def as_pairs(pairs: Sequence[Pair | tuple[str, str]], what: str) -> list[Pair]:
    """``pairs`` as :class:`Pair` objects; a one-line error for anything else."""
    if isinstance(pairs, (str, bytes)):
        raise UserError(f"{what} pairs must be a list of (source, target) pairs, got a string")
    out = []
    for i, p in enumerate(pairs):
        if not (
            isinstance(p, (tuple, list)) and len(p) == 2 and all(isinstance(s, str) for s in p)
        ):
            raise UserError(
                f"{what} pair {i + 1} is {p!r}; each pair must be (source text, target text)"
            )
        out.append(Pair(*p))
    return out


def cleaned(pairs: Sequence[Pair], what: str, say: Say = _silent) -> list[Pair]:
    """:func:`clean_pairs`, reporting the dropped count through ``say``; error if none is left."""
    kept, dropped = clean_pairs(pairs)
    if dropped:
        say(f"translate: dropped {dropped} {what} pairs with an empty side")
    if not pairs:
        raise UserError(f"there are no {what} sentence pairs (the data is empty); check it")
    if not kept:
        raise UserError(
            f"no {what} sentence pairs left: all {len(pairs)} have an empty side; check the data"
        )
    return kept


def _hold_out(pairs: list[Pair], fraction: float, what: str) -> tuple[list[Pair], list[Pair]]:
    """The last ``fraction`` of ``pairs`` (at least one) held out for validation."""
    n_val = max(1, int(round(len(pairs) * fraction)))
    if len(pairs) - n_val < 1:
        raise UserError(
            f"{what} has {len(pairs)} sentence pair(s): too few to hold out validation "
            "(data.val_fraction); use more pairs or give validation data (data.val_source)"
        )
    return pairs[:-n_val], pairs[-n_val:]


def prepare_pairs(cfg: TranslateDataConfig, say: Say = _silent) -> tuple[list[Pair], list[Pair]]:
    """Training and validation pairs from ``cfg`` (empty pairs dropped, counts said)."""
    pairs = load_pairs(cfg.source, src_lang=cfg.src_lang, tgt_lang=cfg.tgt_lang)
    if cfg.val_source:
        val = load_pairs(cfg.val_source, src_lang=cfg.src_lang, tgt_lang=cfg.tgt_lang, split="val")
    elif cfg.source.partition(":")[0] == "multi30k":
        val = load_pairs("multi30k:val", src_lang=cfg.src_lang, tgt_lang=cfg.tgt_lang)
    else:
        pairs, val = _hold_out(pairs, cfg.val_fraction, cfg.source)
    return cleaned(pairs, "training", say), cleaned(val, "validation", say)


PairsLike = Sequence[Pair | tuple[str, str]]


def fit_pairs(
    cfg: TranslateDataConfig,
    pairs: PairsLike | None,
    val_pairs: PairsLike | None,
    say: Say = _silent,
) -> tuple[list[Pair], list[Pair], str]:
    """Training pairs, validation pairs and what the validation pairs are (for the model card).

    ``pairs=None`` reads ``cfg`` (:func:`prepare_pairs`); ``val_pairs=None`` with
    ``pairs`` holds out the last ``cfg.val_fraction`` of them.
    """
    if pairs is None:
        train, val = prepare_pairs(cfg, say)
        what = cfg.val_source or (
            "multi30k:val"
            if cfg.source.partition(":")[0] == "multi30k"
            else f"the last {cfg.val_fraction:.0%} of {cfg.source}"
        )
    else:
        train = cleaned(as_pairs(pairs, "training"), "training", say)
        if val_pairs is None:
            train, val = _hold_out(train, cfg.val_fraction, "the data passed to fit()")
            what = f"the last {cfg.val_fraction:.0%} of the pairs passed to fit()"
    if val_pairs is not None:
        val = cleaned(as_pairs(val_pairs, "validation"), "validation", say)
        what = "the validation pairs passed to fit()"
    return train, val, what


def eval_source(cfg: TranslateDataConfig) -> str:
    """The validation data named by a training config: ``val_source``, else ``multi30k:val``."""
    if cfg.val_source:
        return cfg.val_source
    if cfg.source.partition(":")[0] == "multi30k":
        return "multi30k:val"
    raise UserError(
        "no evaluation data: the model was trained on a held-out fraction of "
        f"{cfg.source!r}; pass the pairs (CLI: --data SRC_FILE,TGT_FILE, a TSV file or "
        "multi30k:val)"
    )


class Seq2SeqBatch(NamedTuple):
    src: Tensor  # (B, S) ids, padded with 0
    src_len: Tensor  # (B,) source lengths (>= 1)
    tgt_in: Tensor  # (B, T) BOS y_1 .. y_n, padded with 0
    tgt_out: Tensor  # (B, T) y_1 .. y_n EOS, padded with 0
    index: Tensor  # (B,) position of each row in the encoded list


def _pad(seqs: Sequence[Sequence[int]]) -> Tensor:
    out = torch.zeros(len(seqs), max(len(s) for s in seqs), dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out


def make_batch(
    src: Sequence[Sequence[int]],
    tgt: Sequence[Sequence[int]] | None,
    index: Sequence[int],
    bos: int,
    eos: int,
) -> Seq2SeqBatch:
    """Pad one batch; without ``tgt`` the target tensors are empty (B, 0)."""
    s = _pad(src)
    lens = torch.as_tensor([len(x) for x in src], dtype=torch.long)
    if tgt is None:
        empty = torch.zeros(len(src), 0, dtype=torch.long)
        return Seq2SeqBatch(s, lens, empty, empty, torch.as_tensor(index))
    tin = _pad([[bos, *y] for y in tgt])
    tout = _pad([[*y, eos] for y in tgt])
    return Seq2SeqBatch(s, lens, tin, tout, torch.as_tensor(index))


Resample = Callable[[int], tuple[list[list[int]], list[list[int]]]]


class PairBatches:
    """Batches of similar-length pairs, reshuffled each epoch (deterministic per seed+epoch).

    Pairs are sorted by length inside pools of ``50 * batch_size`` (less padding)
    and the batches shuffled; with ``shuffle=False`` the order is by length, for
    evaluation. Each batch holds at most ``batch_size`` pairs.

    ``resample(epoch) -> (src, tgt)``, when given, segments the same pairs again at
    each :meth:`set_epoch` (BPE-dropout: ``data.bpe_dropout``); it must be a function
    of the epoch alone, so that a resumed run sees the batches it would have seen.
    """

    def __init__(
        self,
        src: Sequence[Sequence[int]],
        tgt: Sequence[Sequence[int]] | None,
        batch_size: int,
        *,
        bos: int,
        eos: int,
        shuffle: bool = True,
        seed: int = 0,
        resample: Resample | None = None,
    ) -> None:
        if batch_size < 1:
            raise UserError(f"data.batch_size must be >= 1, got {batch_size}")
        if not src:
            raise UserError("no sentence pairs to batch; check the data")
        self.src, self.tgt = list(src), (list(tgt) if tgt is not None else None)
        self.batch_size, self.bos, self.eos = batch_size, bos, eos
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        self.resample = resample

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self.resample is not None:
            src, tgt = self.resample(epoch)
            if len(src) != len(self.src) or len(tgt) != len(src):
                raise ValueError(
                    f"resample({epoch}) gave {len(src)} / {len(tgt)} sequences for "
                    f"{len(self.src)} pairs; it must segment the same pairs again"
                )
            self.src, self.tgt = list(src), list(tgt)

    def __len__(self) -> int:
        return -(-len(self.src) // self.batch_size)

    def _order(self) -> list[list[int]]:
        n, bs = len(self.src), self.batch_size

        def key(i: int) -> tuple[int, int]:
            return (len(self.src[i]), len(self.tgt[i]) if self.tgt is not None else 0)

        if not self.shuffle:
            idx = sorted(range(n), key=key)
            return [idx[i : i + bs] for i in range(0, n, bs)]
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        idx = list(range(n))
        rng.shuffle(idx)
        pool = 50 * bs
        batches = []
        for p in range(0, n, pool):
            chunk = sorted(idx[p : p + pool], key=key)
            batches += [chunk[i : i + bs] for i in range(0, len(chunk), bs)]
        rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[Seq2SeqBatch]:
        for rows in self._order():
            tgt = [self.tgt[i] for i in rows] if self.tgt is not None else None
            yield make_batch([self.src[i] for i in rows], tgt, rows, self.bos, self.eos)
