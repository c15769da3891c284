"""The lab's long-range dependency tasks from the literature, generated on the fly.

``rnnkit lab`` (:mod:`rnnkit.experiments.lab`) trains on these. Each
generator returns a fresh, seeded batch as torch tensors; the sequence length
is a parameter, so the same task can be made as hard as wanted.

- ``adding_problem`` (Hochreiter & Schmidhuber 1997, exp. 4; in the form of
  Le et al. 2015 / Arjovsky et al. 2016): two channels, random values and two
  markers; the target is the sum of the two marked values.
- ``copy_memory`` (Hochreiter & Schmidhuber 1997, exp. 2; in the form of
  Arjovsky et al. 2016): remember ``memory_length`` symbols over ``length``
  blank steps and replay them after a delimiter.
- ``selective_copying`` (Gu & Dao 2023, Mamba, sec. 3.1; used by Feng et al.
  2024 for minGRU/minLSTM): ``num_tokens`` data tokens scattered among noise
  at random positions; after the sequence, output them in order.

Token ids: 0 is the blank / noise token, ``1..num_symbols`` are data symbols,
and ``num_symbols + 1`` is the delimiter or query marker.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = [
    "ADDING_BASELINE_MSE",
    "Batch",
    "adding_problem",
    "copy_memory",
    "selective_copying",
]

# Predicting the mean target, 1.0, for u1 + u2 with u1, u2 ~ U(0, 1): Var = 2 / 12.
ADDING_BASELINE_MSE = 1.0 / 6.0


class Batch(NamedTuple):
    """One batch of a task: ``inputs`` and ``targets`` (shapes in each generator)."""

    inputs: Tensor
    targets: Tensor


def _check(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _generator(seed: int | torch.Generator | None) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    gen = torch.Generator()
    gen.manual_seed(torch.seed() if seed is None else int(seed))
    return gen


def adding_problem(
    batch_size: int,
    length: int,
    seed: int | torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> Batch:
    """The adding problem.

    Channel 0 holds values ``u_t ~ U(0, 1)``; channel 1 is 1 at exactly two
    steps, one drawn uniformly from the first half ``[0, T//2)`` and one from
    the second half ``[T//2, T)``, and 0 elsewhere. The target is the sum of
    the two marked values. Predicting the constant 1.0 gives an MSE of
    ``ADDING_BASELINE_MSE`` = 1/6; a model that has learnt the task does far
    better.

    Args:
        batch_size: B >= 1.
        length: T >= 2.
        seed: an int, a ``torch.Generator`` (advanced in place), or None.

    Returns:
        ``Batch(inputs (B, T, 2), targets (B, 1))``.
    """
    B = _check("batch_size", batch_size, 1)
    T = _check("length", length, 2)
    gen = _generator(seed)
    values = torch.rand(B, T, generator=gen, dtype=dtype)  # (B, T)
    half = T // 2
    first = torch.randint(0, half, (B,), generator=gen)
    second = torch.randint(half, T, (B,), generator=gen)
    markers = torch.zeros(B, T, dtype=dtype)
    rows = torch.arange(B)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = (values[rows, first] + values[rows, second]).unsqueeze(1)  # (B, 1)
    return Batch(torch.stack([values, markers], dim=-1), targets)  # (B, T, 2)


def copy_memory(
    batch_size: int,
    length: int,
    num_symbols: int = 8,
    memory_length: int = 10,
    seed: int | torch.Generator | None = None,
) -> Batch:
    """The copy-memory task: remember ``M`` symbols over ``T`` steps.

    Input: ``M`` symbols from ``1..K``, then ``T - 1`` blanks (0), then the
    delimiter ``K + 1``, then ``M`` more blanks; total ``T + 2M`` steps. Target:
    blanks for the first ``T + M`` steps, then the ``M`` symbols. Guessing
    blanks and then uniform symbols gives a cross-entropy of
    ``M log K / (T + 2M)`` per step (Arjovsky et al. 2016).

    Returns:
        ``Batch(inputs (B, T + 2M) int64, targets (B, T + 2M) int64)``.
    """
    B = _check("batch_size", batch_size, 1)
    T = _check("length", length, 1)
    K = _check("num_symbols", num_symbols, 1)
    M = _check("memory_length", memory_length, 1)
    gen = _generator(seed)
    symbols = torch.randint(1, K + 1, (B, M), generator=gen)
    inputs = torch.zeros(B, T + 2 * M, dtype=torch.int64)
    inputs[:, :M] = symbols
    inputs[:, M + T - 1] = K + 1  # the delimiter: "now replay"
    targets = torch.zeros_like(inputs)
    targets[:, T + M :] = symbols
    return Batch(inputs, targets)


def selective_copying(
    batch_size: int,
    length: int,
    num_tokens: int = 16,
    num_symbols: int = 16,
    seed: int | torch.Generator | None = None,
) -> Batch:
    """Selective copying: find ``N`` data tokens scattered in noise and replay them in order.

    Input: ``T`` steps of noise (0) with ``N`` data tokens from ``1..K`` at
    ``N`` distinct random positions, followed by ``N`` query markers ``K + 1``;
    total ``T + N`` steps. Target: the ``N`` data tokens in the order they
    appeared, to be read from the outputs at the ``N`` query steps. Unlike
    copy memory, the positions vary, so a fixed time delay cannot solve it.

    Returns:
        ``Batch(inputs (B, T + N) int64, targets (B, N) int64)``.
    """
    B = _check("batch_size", batch_size, 1)
    N = _check("num_tokens", num_tokens, 1)
    T = _check("length", length, N)
    K = _check("num_symbols", num_symbols, 1)
    gen = _generator(seed)
    tokens = torch.randint(1, K + 1, (B, N), generator=gen)
    # N distinct sorted positions per row: the first N of a random permutation.
    positions = torch.rand(B, T, generator=gen).argsort(dim=1)[:, :N].sort(dim=1).values
    inputs = torch.zeros(B, T + N, dtype=torch.int64)
    inputs.scatter_(1, positions, tokens)
    inputs[:, T:] = K + 1
    return Batch(inputs, tokens)
