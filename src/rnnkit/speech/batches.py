"""Utterances -> (features, labels) -> padded batches for CTC training and scoring.

:class:`CharVocab` maps characters to CTC labels with the blank at index 0.
:func:`encode_utterances` reads the audio of each utterance, computes its
log-mel features and encodes its transcript, skipping (and counting) or
refusing the utterances CTC cannot use; :class:`SpeechBatches` groups the
results into shuffled, length-sorted batches, the same ones for a given
(seed, epoch) so a resumed run sees the same data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from rnnkit.errors import UserError
from rnnkit.speech.data import Utterance, audio_of, normalize_text
from rnnkit.speech.decode import error_rates, greedy_decode
from rnnkit.speech.features import AudioTooLong, LogMel

__all__ = [
    "CharVocab",
    "SpeechBatch",
    "SpeechBatches",
    "collate",
    "ctc_min_frames",
    "encode_utterances",
    "greedy_error_rates",
]


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


def encode_utterances(
    utts: Sequence[Utterance],
    vocab: CharVocab,
    features: LogMel,
    *,
    subsample: int,
    skip: bool,
    say: Callable[[str], None] = lambda message: None,
    max_seconds: float = 0.0,
    audio_out: list[np.ndarray] | None = None,
) -> list[tuple[Tensor, list[int]]]:
    """(un-normalised log-mels (T, M), labels) per utterance.

    ``skip=True``: unreadable/empty audio, characters outside the vocabulary,
    audio too short for its transcript under CTC (``T // subsample`` frames) and
    audio longer than ``max_seconds`` (> 0; the training limit ``data.max_audio_seconds``)
    are dropped and counted (one line to ``say``); ``skip=False``: the first one
    raises :class:`UserError`. ``audio_out``: a list that receives the samples of
    every kept utterance, in order (for training-time augmentation).
    """
    sr, s = features.config.sample_rate, subsample
    out: list[tuple[Tensor, list[int]]] = []
    too_long = f"longer than data.max_audio_seconds={max_seconds:g}"
    skipped = {"unreadable": 0, "unknown characters": 0, "too short for CTC": 0, too_long: 0}
    for u in utts:
        try:
            audio = audio_of(u, sr, max_seconds=max_seconds)
        except AudioTooLong:
            if not skip:
                raise
            skipped[too_long] += 1
            continue
        except UserError:
            if not skip:
                raise
            skipped["unreadable"] += 1
            continue
        text = normalize_text(u.text)
        if vocab.unknown(text) or not text:
            if not skip:
                vocab.encode(text)  # raises the vocabulary error
                raise UserError(f"utterance {u.key} has an empty transcript")
            skipped["unknown characters"] += 1
            continue
        labels = vocab.encode(text)
        feats = features.logmel(audio)  # (T, M)
        if feats.size(0) // s < ctc_min_frames(labels):
            if not skip:
                raise UserError(
                    f"{u.key}: {feats.size(0)} frames (/{s} = {feats.size(0) // s}) is too "
                    f"short for its transcript {text!r} under CTC (needs "
                    f"{ctc_min_frames(labels)}); remove it"
                )
            skipped["too short for CTC"] += 1
            continue
        out.append((feats, labels))
        if audio_out is not None:
            audio_out.append(audio)
    dropped = {k: v for k, v in skipped.items() if v}
    if dropped:
        say(
            f"speech: skipped {sum(dropped.values())} of {len(utts)} utterances ("
            + ", ".join(f"{v} {k}" for k, v in dropped.items())
            + ")"
        )
    return out


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


Featurize = Callable[[np.ndarray, list[int], np.random.Generator], Tensor]


def _length(x: Tensor | np.ndarray) -> int:
    return int(x.size(0)) if isinstance(x, Tensor) else len(x)


class SpeechBatches:
    """Shuffled batches of similar length (sorted within pools of 50 batches), per epoch.

    ``items``: (features (T, M), labels), or (audio samples, labels) with
    ``featurize(audio, labels, rng) -> features`` computing each batch's
    features afresh (training-time augmentation). Deterministic for a given
    (seed, epoch), augmentation included: a resumed run sees the same batches.
    """

    def __init__(
        self,
        items: Sequence[tuple[Tensor | np.ndarray, list[int]]],
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        featurize: Featurize | None = None,
    ) -> None:
        if batch_size <= 0:
            raise UserError(f"data.batch_size must be > 0, got {batch_size}")
        self.items = list(items)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.featurize = featurize
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
                sorted(order[i : i + pool], key=lambda j: _length(self.items[j][0]))
                for i in range(0, n, pool)
            ]
            batches = [c[i : i + bs] for c in chunks for i in range(0, len(c), bs)]
            perm = np.random.default_rng((self.seed, self.epoch, 1)).permutation(len(batches))
            batches = [batches[i] for i in perm]
        else:
            batches = [list(range(i, min(i + bs, n))) for i in range(0, n, bs)]
        for k, idx in enumerate(batches):
            items = [self.items[int(j)] for j in idx]
            if self.featurize is not None:
                rng = np.random.default_rng((self.seed, self.epoch, 2, k))
                items = [(self.featurize(x, t, rng), t) for x, t in items]
            yield collate(items)


@torch.no_grad()
def greedy_error_rates(
    model: torch.nn.Module, *, batches: Iterable[SpeechBatch], vocab: CharVocab
) -> dict[str, float]:
    """``val_wer`` and ``val_cer`` of greedy decoding over ``batches`` (the training loop's
    validation metrics)."""
    hyps, refs = [], []
    device = next(model.parameters()).device
    for b in batches:
        out = model(b.feats.to(device), b.feat_lens)
        for i in range(b.feats.size(0)):
            n = int(out.lengths[i])
            hyps.append(vocab.decode(greedy_decode(out.log_probs[i, :n]).labels))
            refs.append(vocab.decode(b.targets[i, : int(b.target_lens[i])].tolist()))
    return error_rates(refs, hyps, prefix="val_")
