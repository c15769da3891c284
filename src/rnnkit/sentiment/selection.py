"""Model selection away from the dev set: held-out SST-2 training sentences and the
phrases inside them (``data.select_on = "train"``).

Choosing the best evaluation or stopping early on ``sst2:dev`` makes the dev figure
optimistic. With ``select_on = "train"``, :func:`select_on_train` validates instead on
a seeded ``data.val_fraction`` of SST-2's 6,920 training sentences. For
``sst2-phrases`` it also removes from training every phrase that occurs inside a
held-out sentence (:func:`phrases_inside`): GLUE's phrases are the sub-trees of
the training sentences, so otherwise the model would have seen labelled pieces,
and the whole, of each validation sentence. ``sst2:dev`` is then scored once.

:func:`seeded_split` is the seeded hold-out shared with other sources
(:func:`rnnkit.sentiment.data.prepare_examples`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from rnnkit.errors import UserError
from rnnkit.sentiment.config import SentimentDataConfig
from rnnkit.sentiment.readers import Example, read_examples

__all__ = ["phrase_tokens", "phrases_inside", "seeded_split", "select_on_train"]


def seeded_split(
    examples: list[Example], fraction: float, seed: int, source: str
) -> tuple[list[Example], list[Example]]:
    """(kept, held out): a seeded random ``fraction`` of ``examples`` held out, both in
    their original order."""
    if not 0.0 < fraction < 1.0:
        raise UserError(
            f"data.val_fraction must be in (0, 1) when there is no data.val_source, got {fraction}"
        )
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_val = max(1, int(round(len(order) * fraction)))
    if len(order) - n_val < 2:
        raise UserError(f"{source} has too few rows ({len(order)}) to hold out validation")
    val = sorted(order[:n_val])
    keep = sorted(order[n_val:])
    return [examples[i] for i in keep], [examples[i] for i in val]


# SST-2's sentence file (sst2) and GLUE's phrase file (sst2-phrases) spell the same
# tokens differently; phrase_tokens maps both to one form. PTB brackets:
_BRACKETS = {"-lrb-": "(", "-rrb-": ")", "-lsb-": "[", "-rsb-": "]", "-lcb-": "{", "-rcb-": "}"}
# Words the phrase file splits (PTB style).
_SPLIT = {"gonna": ("gon", "na"), "wanna": ("wan", "na"), "gotta": ("got", "ta")}
# British spellings of the sentence file that the phrase file writes the American way.
_SPELLING = {
    "behaviour": "behavior",
    "centre": "center",
    "colour": "color",
    "coloured": "colored",
    "endeavour": "endeavor",
    "favour": "favor",
    "favourite": "favorite",
    "flavour": "flavor",
    "flavours": "flavors",
    "grey": "gray",
    "humour": "humor",
    "labelled": "labeled",
    "labour": "labor",
    "labours": "labors",
    "recognise": "recognize",
    "savour": "savor",
    "splendour": "splendor",
    "theatre": "theater",
    "theatres": "theaters",
}


def phrase_tokens(text: str) -> list[str]:
    """The tokens of an SST-2 sentence or phrase in one canonical form, so that a phrase
    occurs inside a sentence exactly when its tokens are a contiguous run of the
    sentence's.

    The sentence file (``sst2``) and the phrase file (``sst2-phrases``) tokenise alike
    but write some tokens differently: ``-lrb-``/``-rrb-`` vs ``(``/``)``, ``\\/`` vs
    ``/``, a ``###`` after numbers, ``gonna`` vs ``gon na``, ``et al.`` vs ``et al .``,
    ``. . .`` vs ``...`` and a few British spellings. With this form every one of the
    6,920 training sentences is a phrase of the phrase file (tested).
    """
    out: list[str] = []
    for tok in text.split():
        tok = _BRACKETS.get(tok, tok).replace("\\/", "/").replace("\\*", "*")
        if tok == "###":  # the sentence file's mark after a number
            continue
        if tok in _SPLIT:
            out.extend(_SPLIT[tok])
            continue
        end = tok.endswith(".") and tok.strip(".") != ""  # "al." -> "al", "."
        tok = tok[:-1] if end else tok
        if tok == "...":  # the phrase file's ellipsis; the sentence file writes ". . ."
            out.extend((".", ".", "."))
        else:
            out.append(_SPELLING.get(tok, tok))
        if end:
            out.append(".")
    return out


def phrases_inside(phrases: Sequence[str], sentences: Sequence[str]) -> list[int]:
    """Indices (ascending) of the ``phrases`` that occur inside any of ``sentences``: their
    :func:`phrase_tokens` are a contiguous run of a sentence's (substring on the
    token string, so ``"fun"`` is not inside ``"funny film"``).

    Every run of a sentence's tokens, up to the longest phrase, is looked up in an
    index of the phrases: about 0.3 s for 67,349 phrases and 692 sentences.
    """
    index: dict[str, list[int]] = {}
    longest = 0
    for i, p in enumerate(phrases):
        toks = phrase_tokens(p)
        longest = max(longest, len(toks))
        index.setdefault(" ".join(toks), []).append(i)
    found: set[int] = set()
    for s in sentences:
        toks = phrase_tokens(s)
        for a in range(len(toks)):
            for b in range(a + 1, min(len(toks), a + longest) + 1):
                hit = index.get(" ".join(toks[a:b]))
                if hit is not None:
                    found.update(hit)
    return sorted(found)


def select_on_train(
    cfg: SentimentDataConfig,
    train_ex: list[Example],
    seed: int,
    *,
    say: Callable[[str], None] | None = None,
) -> tuple[list[Example], list[Example]]:
    """(training, validation) for ``data.select_on = "train"`` on ``sst2``/``sst2-phrases``.

    Validation is a seeded random ``cfg.val_fraction`` of SST-2's 6,920 training
    sentences (``sst2:train``; the same sentences for both sources and a given
    ``seed``). ``sst2`` trains on the other sentences. ``sst2-phrases`` (``train_ex``)
    trains on its phrases minus every phrase that occurs inside a held-out sentence
    (:func:`phrases_inside`), the held-out sentences themselves included, so the
    model never sees a labelled piece of a validation sentence. ``sst2:dev`` stays
    untouched: the figure reported once (``evaluate()`` without data).
    """
    kw = {"text_column": cfg.text_column, "label_column": cfg.label_column}
    if cfg.source.partition(":")[0] == "sst2":
        return seeded_split(train_ex, cfg.val_fraction, seed, cfg.source)
    sentences = list(read_examples("sst2", split="train", **kw))
    _, val = seeded_split(sentences, cfg.val_fraction, seed, "sst2")
    drop = set(phrases_inside([e.text for e in train_ex], [e.text for e in val]))
    train = [e for i, e in enumerate(train_ex) if i not in drop]
    if len(train) < 2:
        raise UserError(
            f"{cfg.source} keeps {len(train)} phrases after holding out data.val_fraction="
            f"{cfg.val_fraction:g} of the sentences; lower data.val_fraction"
        )
    if say is not None:
        say(
            f"sentiment: model selection on {len(val):,} of the {len(sentences):,} SST-2 "
            f"training sentences (seed {seed}); dropped the {len(drop):,} of "
            f"{len(train_ex):,} phrases inside them, {len(train):,} left to train on"
        )
    return train, val
