"""A made-up English->German parallel corpus of digit words for the translate tests."""

from __future__ import annotations

import random

EN = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
DE = ["null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"]


def digit_corpus(n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` seeded pairs of 1-4 digit words ending in " ."."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ks = [rng.randrange(10) for _ in range(rng.randint(1, 4))]
        out.append((" ".join(EN[k] for k in ks) + " .", " ".join(DE[k] for k in ks) + " ."))
    return out
