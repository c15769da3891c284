"""Splits, labels and length-bucketed batches for text classification.

- :func:`prepare_examples` / :func:`eval_examples`: the training, validation and
  evaluation data that a config names (files and built-in datasets are read by
  :mod:`rnnkit.sentiment.readers`); :func:`held_out_split` for texts passed to ``fit``;
  with ``data.select_on = "train"`` the SST-2 sources validate on held-out training
  sentences (:mod:`rnnkit.sentiment.selection`);
- :func:`truncate` keeps the head and tail of long texts, :func:`check_texts`
  rejects empty ones;
- :class:`LabelEncoder`: class labels <-> ids;
- :class:`BucketBatches`: examples of similar length go together, so padding is
  small; each :class:`ClsBatch` carries ``lengths`` so that the model ignores the
  padding exactly.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from rnnkit.data.tokenizers import PAD_ID
from rnnkit.errors import UserError
from rnnkit.sentiment.config import SentimentDataConfig
from rnnkit.sentiment.labels import label_key, normalize_labels
from rnnkit.sentiment.readers import DATASETS, SST2_DEV_SETS, Example, read_examples
from rnnkit.sentiment.selection import seeded_split, select_on_train

__all__ = [
    "BucketBatches",
    "FitData",
    "ClsBatch",
    "LabelEncoder",
    "check_texts",
    "collate",
    "eval_examples",
    "fit_data",
    "held_out_split",
    "prepare_examples",
    "truncate",
    "validation_name",
]

FitData = tuple[list[str], list[Any], list[str], list[Any]]  # texts, labels, val_texts, val_labels


# ---------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------


def prepare_examples(
    cfg: SentimentDataConfig, seed: int, *, say: Callable[[str], None] | None = None
) -> tuple[list[Example], list[Example]]:
    """Training and validation examples of ``cfg.source``.

    Validation: ``val_source`` if set; else for ``sst2``/``sst2-phrases`` the dev
    split (``select_on = "dev"``) or held-out training sentences (``select_on =
    "train"``, :func:`select_on_train`); else a seeded random ``val_fraction`` of the
    source. ``say``: where a line on what was held out goes (the estimator's messages).
    """
    kw = {"text_column": cfg.text_column, "label_column": cfg.label_column}
    name = cfg.source.partition(":")[0]
    train_ex = list(read_examples(cfg.source, split="train", **kw))
    if cfg.val_source:
        return train_ex, list(read_examples(cfg.val_source, **kw))
    if name in SST2_DEV_SETS and cfg.select_on == "dev":
        return train_ex, list(read_examples("sst2:dev", **kw))
    if name in SST2_DEV_SETS:
        return select_on_train(cfg, train_ex, seed, say=say)
    return seeded_split(train_ex, cfg.val_fraction, seed, cfg.source)


def validation_name(cfg: SentimentDataConfig) -> str:
    """What :func:`prepare_examples` validates on, in words (for the model card)."""
    if cfg.val_source:
        return cfg.val_source
    name = cfg.source.partition(":")[0]
    if name in SST2_DEV_SETS and cfg.select_on == "train":
        inside = ", with every phrase inside them" if name == "sst2-phrases" else ""
        return (
            f"a seeded {cfg.val_fraction:g} of the SST-2 training sentences (sst2:train), "
            f"held out of training{inside} (data.select_on=train)"
        )
    if name in SST2_DEV_SETS:
        return "sst2:dev"
    return f"a seeded {cfg.val_fraction:g} of {cfg.source} held out of training"


def eval_examples(
    cfg: SentimentDataConfig, data: str | None = None, *, options: dict[str, str] | None = None
) -> tuple[str, list[Example]]:
    """``(name, examples)`` to evaluate on: ``data`` (a file, ``sst2:dev``, ``imdb:test``),
    else ``val_source``, else the dataset's dev/test split (``sst2:dev`` also with
    ``select_on = "train"``: the reported figure, never the held-out sentences).
    ``options``: how the caller sets the columns (for messages, as in ``read_examples``)."""
    kw: dict[str, Any] = {
        "text_column": cfg.text_column,
        "label_column": cfg.label_column,
        "options": options,
    }
    if data:
        name = data.partition(":")[0]
        split = "dev" if name in SST2_DEV_SETS else "test" if name == "imdb" else None
        return data, list(read_examples(data, split=split, **kw))
    if cfg.val_source:
        return cfg.val_source, list(read_examples(cfg.val_source, **kw))
    if cfg.source.partition(":")[0] in DATASETS:
        split = "dev" if cfg.source.partition(":")[0] in SST2_DEV_SETS else "test"
        name = f"{cfg.source.partition(':')[0]}:{split}"
        return name, list(read_examples(name, **kw))
    raise UserError(
        f"the model was trained on {cfg.source}, which has no dev split; pass labelled data "
        "(--data FILE, or texts and labels)"
    )


def held_out_split(
    texts: Sequence[str], labels: Sequence[Any], fraction: float, seed: int
) -> FitData:
    """A seeded random ``fraction`` of (texts, labels) held out: (train texts, train labels,
    validation texts, validation labels)."""
    if not 0.0 < fraction < 1.0:
        raise UserError(f"data.val_fraction must be in (0, 1), got {fraction}")
    ex = [Example(t, y, i) for i, (t, y) in enumerate(zip(texts, labels, strict=True))]
    random.Random(seed).shuffle(ex)
    n_val = max(1, int(round(len(ex) * fraction)))
    train, val = ex[n_val:], ex[:n_val]
    val_texts, val_labels = [e.text for e in val], [e.label for e in val]
    return [e.text for e in train], [e.label for e in train], val_texts, val_labels


def fit_data(
    cfg: SentimentDataConfig,
    texts: Sequence[str] | None,
    labels: Sequence[Any] | None,
    val_texts: Sequence[str] | None,
    val_labels: Sequence[Any] | None,
    *,
    seed: int,
    say: Callable[[str], None] | None = None,
) -> tuple[FitData, str]:
    """What ``fit`` trains and validates on, checked, and what validation is, in words.

    No ``texts``: :func:`prepare_examples` of the config (``say`` gets its message).
    ``texts`` without ``val_texts``: a seeded ``cfg.val_fraction`` is held out
    (:func:`held_out_split`).
    """
    if texts is None:
        if labels is not None or val_texts is not None or val_labels is not None:
            raise UserError("pass texts with the labels (or no data: the config's data.source)")
        train_ex, val_ex = prepare_examples(cfg, seed, say=say)
        LabelEncoder().fit(e.label for e in train_ex)  # two classes or more, before training
        data = (
            [e.text for e in train_ex],
            [e.label for e in train_ex],
            [e.text for e in val_ex],
            [e.label for e in val_ex],
        )
        return data, f"{validation_name(cfg)} ({len(val_ex)} texts)"
    if labels is None or len(texts) != len(labels):
        n = 0 if labels is None else len(labels)
        raise UserError(f"{len(texts)} texts but {n} labels; pass one label each")
    check_texts(texts)
    labels = normalize_labels(labels)
    if val_labels is not None:
        val_labels = normalize_labels(val_labels, source="the validation labels")
    if val_texts is None:
        if val_labels is not None:
            raise UserError("val_texts and val_labels must be given together, one label each")
        split = held_out_split(texts, labels, cfg.val_fraction, seed)
        where = f"a seeded {cfg.val_fraction:g} of the texts passed to fit, held out"
    else:
        if val_labels is None or len(val_texts) != len(val_labels):
            raise UserError("val_texts and val_labels must be given together, one label each")
        split = (list(texts), list(labels), list(val_texts), list(val_labels))
        where = "the validation texts passed to fit"
    check_texts(split[2])
    LabelEncoder().fit(split[1])  # two classes or more, before training
    return split, f"{where} ({len(split[2])} texts)"


def truncate(seq: list[Any], max_len: int) -> list[Any]:
    """The first and last max_len/2 items of a longer sequence (reviews often end with
    the verdict, so the tail is kept too)."""
    if max_len <= 0 or len(seq) <= max_len:
        return seq
    head = max_len - max_len // 2
    return seq[:head] + seq[len(seq) - max_len // 2 :]


def check_texts(texts: Sequence[str]) -> None:
    """Every text must be a non-empty string (one-line error naming its position)."""
    for i, t in enumerate(texts, 1):
        if not isinstance(t, str):
            raise UserError(f"text {i} is a {type(t).__name__}, not a string")
        if not t.strip():
            raise UserError(f"text {i} is empty; pass non-empty texts")


# ---------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------


class LabelEncoder:
    """Class labels <-> ids 0..C-1. Labels are classes as
    :func:`~rnnkit.sentiment.labels.normalize_labels` reads them (``1`` and ``1.0``
    are one class; names and numbers never mix); numbers are sorted numerically,
    names alphabetically.

    Attributes (after ``fit``): ``classes_``, the labels, index = id.
    """

    def __init__(self) -> None:
        self.classes_: list[Any] = []

    def fit(self, labels: Iterable[Any]) -> LabelEncoder:
        uniq = set(normalize_labels(labels))
        if not uniq:
            raise UserError("no labels to learn from; the training data is empty")
        if len(uniq) < 2:
            raise UserError(
                f"the training data has a single class ({next(iter(uniq))!r}); a classifier "
                "needs at least two"
            )
        self.classes_ = sorted(uniq)  # type: ignore[type-var]  # all int or all str
        return self

    def __len__(self) -> int:
        return len(self.classes_)

    def transform(self, labels: Sequence[Any], *, where: str = "the data") -> list[int]:
        """Ids of ``labels``; a label not seen in training is an error naming it."""
        index: dict[Any, int] = {}
        for i, c in enumerate(self.classes_):
            index.setdefault(c, i)
            with contextlib.suppress(UserError):  # classes saved by rnnkit 0.1 may be "1"
                index.setdefault(label_key(c), i)
        out = []
        for label in labels:
            label = label_key(label, where=where)
            if label not in index:
                known = ", ".join(repr(c) for c in self.classes_)
                raise UserError(
                    f"label {label!r} in {where} was not seen in training (the model knows "
                    f"{known}); remove those rows or retrain with them"
                )
            out.append(index[label])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"classes": self.classes_}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabelEncoder:
        classes = d.get("classes") if isinstance(d, dict) else None
        if not isinstance(classes, list) or len(classes) < 2:
            raise UserError("labels.json is malformed (no 'classes' list); checkpoint damaged")
        enc = cls()
        enc.classes_ = list(classes)
        return enc


# ---------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------


class ClsBatch(NamedTuple):
    """``ids`` (B, T) padded with 0, ``lengths`` (B,) int64, ``labels`` (B,) int64."""

    ids: Tensor
    lengths: Tensor
    labels: Tensor


def collate(seqs: Sequence[Sequence[int]], labels: Sequence[int] | None = None) -> ClsBatch:
    """Pad id sequences to the longest one. Every sequence needs at least one id."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)  # (B,)
    if bool((lengths == 0).any()):
        raise UserError("a text has no tokens after tokenisation; remove empty texts")
    ids = torch.full((len(seqs), int(lengths.max())), PAD_ID, dtype=torch.long)  # (B, T)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    y = torch.as_tensor(labels if labels is not None else [-1] * len(seqs), dtype=torch.long)
    return ClsBatch(ids, lengths, y)


class BucketBatches:
    """Batches of similar-length examples (bucketing), re-iterable and deterministic per epoch.

    Training (``shuffle=True``): each epoch permutes the examples with a
    generator seeded by (seed, epoch), cuts the permutation into pools of
    ``batch_size * pool_batches`` examples, sorts each pool by length, cuts it
    into batches and shuffles the batch order. Evaluation (``shuffle=False``):
    all examples sorted by length, longest first; ``order`` gives the original
    index of each row, so predictions can be put back in input order.
    """

    def __init__(
        self,
        ids: Sequence[Sequence[int]],
        labels: Sequence[int] | None,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        pool_batches: int = 50,
    ) -> None:
        if batch_size < 1:
            raise UserError(f"data.batch_size must be >= 1, got {batch_size}")
        if len(ids) == 0:
            raise UserError("no examples to batch")
        self.ids = ids
        self.labels = labels
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool_batches = pool_batches
        self.epoch = 0
        self.lengths = torch.tensor([len(s) for s in ids], dtype=torch.long)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.ids) // self.batch_size)

    def batch_indices(self) -> list[Tensor]:
        """The example indices of each batch of this epoch, in batch order."""
        B = self.batch_size
        if not self.shuffle:
            order = torch.argsort(self.lengths, descending=True, stable=True)
            return list(order.split(B))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(len(self.ids), generator=g)
        batches: list[Tensor] = []
        for pool in perm.split(B * self.pool_batches):
            pool = pool[torch.argsort(self.lengths[pool], stable=True)]
            batches.extend(pool.split(B))
        order = torch.randperm(len(batches), generator=g)
        return [batches[i] for i in order.tolist()]

    def iter_from(self, start: int) -> Iterator[ClsBatch]:
        for idx in self.batch_indices()[start:]:
            rows = idx.tolist()
            labels = None if self.labels is None else [self.labels[i] for i in rows]
            yield collate([self.ids[i] for i in rows], labels)

    def __iter__(self) -> Iterator[ClsBatch]:
        return self.iter_from(0)
