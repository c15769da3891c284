"""Corpus BLEU and chrF by sacrebleu, on detokenised text (comparable with published scores)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["score"]


def score(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """Corpus BLEU and chrF by sacrebleu (detokenised text in, its own tokenisation).

    Returns ``bleu``, ``chrf``, sacrebleu's signatures (``bleu_signature``,
    ``chrf_signature``), which state the settings so scores are comparable,
    and the number of ``sentences``.
    """
    from sacrebleu.metrics import BLEU, CHRF

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    bleu, chrf = BLEU(), CHRF()
    b = bleu.corpus_score(list(hypotheses), [list(references)])
    c = chrf.corpus_score(list(hypotheses), [list(references)])
    return {
        "bleu": float(b.score),
        "chrf": float(c.score),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
        "sentences": len(hypotheses),
    }
