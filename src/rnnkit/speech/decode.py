"""CTC decoding: best path (greedy), prefix beam search, character n-gram LM, word times,
error rates.

Input: ``log_probs`` (T, V) of one utterance, label 0 = blank.

Greedy (best path): take the argmax label of every frame, merge runs of the
same label, drop blanks: ``a a - a b b -`` -> ``a a b``.

Prefix beam search (Hannun et al. 2014, "First-pass large vocabulary
continuous speech recognition using bi-directional recurrent DNNs", alg. 1):
for every prefix keep the probability of all alignments of it so far that end
in a blank (p_b) and in a non-blank (p_nb); at each frame a prefix either
stays (blank, or its last label repeated without a blank between) or grows by
one label (a repeat of its last label only after a blank). The ``beam`` most
probable prefixes survive each frame. With a language model, growing a prefix
by character c multiplies in ``P_lm(c | last n-1 characters) ** lm_weight``
(and at the end ``P_lm(end | ...) ** lm_weight``). With a lexicon (the words of
the training transcripts), prefixes may only spell lexicon words.

Each decoder also returns, per emitted label, the frame at which it was first
emitted: :func:`word_times` turns those into per-word start/end times.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from typing import NamedTuple

import numpy as np
from torch import Tensor

from rnnkit.errors import UserError

__all__ = [
    "CharNgramLM",
    "Decoded",
    "Transcript",
    "Word",
    "error_rates",
    "greedy_decode",
    "prefix_beam_search",
    "word_times",
]

_NEG_INF = -math.inf


class Decoded(NamedTuple):
    """``labels``: emitted labels (no blanks); ``frames``: the frame each was first emitted;
    ``log_prob``: log P(labels | audio) summed over alignments (beam) or the best path's
    log probability (greedy)."""

    labels: list[int]
    frames: list[int]
    log_prob: float


class Word(NamedTuple):
    word: str
    start: float  # seconds
    end: float  # seconds


class Transcript(NamedTuple):
    """What ``SpeechRecognizer.transcribe`` returns per input."""

    text: str
    words: list[Word]  # per-word (word, start_s, end_s) from the alignment


def error_rates(refs: list[str], hyps: list[str], prefix: str = "") -> dict[str, float]:
    """Word and character error rates of ``hyps`` against ``refs`` (computed by jiwer)."""
    import jiwer

    return {
        f"{prefix}wer": float(jiwer.wer(refs, hyps)),
        f"{prefix}cer": float(jiwer.cer(refs, hyps)),
    }


def _as_numpy(log_probs: Tensor | np.ndarray) -> np.ndarray:
    lp = log_probs.detach().cpu().double().numpy() if isinstance(log_probs, Tensor) else log_probs
    lp = np.asarray(lp, dtype=np.float64)
    if lp.ndim != 2:
        raise ValueError(f"log_probs must be (T, V), got shape {lp.shape}")
    return lp


def greedy_decode(log_probs: Tensor | np.ndarray, blank: int = 0) -> Decoded:
    """Best path: per-frame argmax, repeats merged, blanks removed."""
    lp = _as_numpy(log_probs)
    best = lp.argmax(axis=1)  # (T,)
    labels, frames, prev = [], [], blank
    for t, k in enumerate(best.tolist()):
        if k != blank and k != prev:
            labels.append(k)
            frames.append(t)
        prev = k
    return Decoded(labels, frames, float(lp[np.arange(len(best)), best].sum()))


def _logadd(*xs: float) -> float:
    m = max(xs)
    if m == _NEG_INF:
        return _NEG_INF
    return m + math.log(sum(math.exp(x - m) for x in xs))


class CharNgramLM:
    """Character n-gram model with add-k smoothing, trained on transcripts.

    ``P(c | h) = (count(h c) + k) / (count(h) + k |C|)`` where ``h`` is the
    previous ``order - 1`` characters (padded with a start symbol) and ``C``
    the known characters plus the end symbol. Learned: ``chars_``, counts.
    """

    _START, _END = "\x02", "\x03"

    def __init__(self, order: int = 3, k: float = 0.1) -> None:
        self.order = order
        self.k = k

    def fit(self, texts: Sequence[str]) -> CharNgramLM:
        if self.order < 1:
            raise UserError(f"the n-gram order must be >= 1, got {self.order}")
        if self.k <= 0:
            raise UserError(f"the n-gram smoothing k must be > 0, got {self.k}")
        if not texts:
            raise UserError("the n-gram language model needs at least one transcript")
        self.chars_ = sorted(set("".join(texts)))
        self.words_ = sorted({w for text in texts for w in text.split()})  # the lexicon
        self.counts_: dict[str, Counter[str]] = defaultdict(Counter)
        for text in texts:
            seq = self._START * (self.order - 1) + text + self._END
            for i in range(self.order - 1, len(seq)):
                self.counts_[seq[i - self.order + 1 : i]][seq[i]] += 1
        return self

    def log_prob(self, history: str, char: str | None) -> float:
        """``log P(char | history)``; ``char=None`` is the end of the transcript."""
        h = (
            (self._START * (self.order - 1) + history)[-(self.order - 1) :]
            if self.order > 1
            else ""
        )
        c = self._END if char is None else char
        counts = self.counts_.get(h, Counter())
        size = len(self.chars_) + 1
        return math.log((counts[c] + self.k) / (sum(counts.values()) + self.k * size))

    def to_dict(self) -> dict[str, object]:
        return {
            "order": self.order,
            "k": self.k,
            "chars": self.chars_,
            "words": self.words_,
            "counts": {h: dict(c) for h, c in self.counts_.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> CharNgramLM:
        lm = cls(int(d["order"]), float(d["k"]))  # type: ignore[arg-type]
        lm.chars_ = list(d["chars"])  # type: ignore[call-overload]
        # lm.json files written before the lexicon existed have no "words": none then.
        lm.words_ = list(d.get("words", []))  # type: ignore[call-overload]
        lm.counts_ = defaultdict(Counter, {h: Counter(c) for h, c in d["counts"].items()})  # type: ignore[union-attr]
        return lm


def prefix_beam_search(
    log_probs: Tensor | np.ndarray,
    beam: int = 8,
    *,
    blank: int = 0,
    lm: CharNgramLM | None = None,
    chars: Sequence[str] = (),
    lm_weight: float = 0.5,
    lexicon: Collection[str] | None = None,
) -> Decoded:
    """CTC prefix beam search (see the module docstring); ``chars[i-1]`` is label ``i``'s
    character (needed with ``lm`` or ``lexicon``).

    ``lexicon``: the only words allowed (space-separated in the transcript). A prefix
    may grow by a character only while its last word is the beginning of a lexicon
    word, and by a space only after a whole one; at the end, prefixes whose last word
    is unfinished (or empty: a trailing space) are dropped (unless no other prefix
    survived): the result is empty or lexicon words joined by single spaces.
    """
    if beam < 1:
        raise UserError(f"beam width must be >= 1, got {beam}")
    if (lm is not None or lexicon is not None) and not chars:
        raise ValueError("prefix_beam_search with lm or lexicon needs chars (label -> character)")
    words = set(lexicon) if lexicon is not None else None
    starts = {w[:i] for w in words for i in range(len(w) + 1)} if words is not None else None

    def allowed(prefix_text: str, ch: str) -> bool:
        if starts is None or words is None:
            return True
        last = prefix_text.rsplit(" ", 1)[-1]
        return last in words if ch == " " else last + ch in starts

    lp = _as_numpy(log_probs)
    T, V = lp.shape
    # prefix -> [log p_b, log p_nb]; frames: prefix -> first-emission frames
    beams: dict[tuple[int, ...], list[float]] = {(): [0.0, _NEG_INF]}
    frames: dict[tuple[int, ...], tuple[int, ...]] = {(): ()}
    text: dict[tuple[int, ...], str] = {(): ""}

    def lm_score(prefix: tuple[int, ...], k: int) -> float:
        if lm is None:
            return 0.0
        return lm_weight * lm.log_prob(text[prefix], chars[k - 1])

    for t in range(T):
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [_NEG_INF, _NEG_INF])
        row = lp[t]
        for prefix, (pb, pnb) in beams.items():
            total = _logadd(pb, pnb)
            # stay: a blank after anything
            e = nxt[prefix]
            e[0] = _logadd(e[0], total + row[blank])
            last = prefix[-1] if prefix else None
            for k in range(V):
                if k == blank:
                    continue
                p = row[k]
                if k == last:
                    # repeated label without a blank between: the same prefix
                    e[1] = _logadd(e[1], pnb + p)
                    # a new copy of the label needs a blank before it
                    grown_from = pb
                else:
                    grown_from = total
                if grown_from == _NEG_INF:
                    continue
                if starts is not None and not allowed(text[prefix], chars[k - 1]):
                    continue
                new = prefix + (k,)
                if new not in text:
                    text[new] = text[prefix] + (chars[k - 1] if chars else "")
                    frames[new] = frames[prefix] + (t,)
                g = nxt[new]
                g[1] = _logadd(g[1], grown_from + p + lm_score(prefix, k))
        ranked = sorted(nxt.items(), key=lambda kv: _logadd(*kv[1]), reverse=True)
        beams = dict(ranked[:beam])

    def final(kv: tuple[tuple[int, ...], list[float]]) -> float:
        score = _logadd(*kv[1])
        if lm is not None:
            score += lm_weight * lm.log_prob(text[kv[0]], None)
        return score

    if words is not None:
        whole = {
            p: v for p, v in beams.items() if not text[p] or text[p].rsplit(" ", 1)[-1] in words
        }
        beams = whole or beams
    best, scores = max(beams.items(), key=final)
    return Decoded(list(best), list(frames[best]), _logadd(*scores))


def word_times(
    labels: Sequence[int], frames: Sequence[int], chars: Sequence[str], frame_s: float
) -> list[Word]:
    """Per-word (word, start, end) in seconds from a decoder's labels and emission frames.

    A word starts at its first character's frame and ends one frame after its
    last character's frame; words are separated by the space character.
    """
    words: list[Word] = []
    cur, start, end = "", 0, 0
    for k, t in zip(labels, frames, strict=True):
        ch = chars[k - 1]
        if ch == " ":
            if cur:
                words.append(Word(cur, start * frame_s, (end + 1) * frame_s))
            cur = ""
            continue
        if not cur:
            start = t
        cur += ch
        end = t
    if cur:
        words.append(Word(cur, start * frame_s, (end + 1) * frame_s))
    return words
