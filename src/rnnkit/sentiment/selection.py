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
from rnnkit.sentiment.readers import Example, phrase_tokens, read_examples

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
