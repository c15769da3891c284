"""The lab's task generators (rnnkit.experiments.tasks): layouts, targets, seeding, errors."""

from __future__ import annotations

import pytest
import torch

from rnnkit.experiments.tasks import (
    ADDING_BASELINE_MSE,
    adding_problem,
    copy_memory,
    selective_copying,
)


def test_adding_problem_targets_are_the_sum_of_the_marked_values():
    x, y = adding_problem(256, 31, seed=0)
    assert x.shape == (256, 31, 2) and y.shape == (256, 1)
    values, markers = x[..., 0], x[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert (markers.sum(1) == 2).all() and set(markers.unique().tolist()) == {0.0, 1.0}
    # one marker in each half, [0, 15) and [15, 31)
    assert (markers[:, :15].sum(1) == 1).all() and (markers[:, 15:].sum(1) == 1).all()
    for i in range(256):  # the definition, row by row
        marked = [values[i, t].item() for t in range(31) if markers[i, t] == 1]
        assert y[i, 0].item() == pytest.approx(sum(marked))
    torch.testing.assert_close(adding_problem(256, 31, seed=0).inputs, x)  # seeded
    assert not torch.equal(adding_problem(256, 31, seed=1).inputs, x)


def test_adding_baseline_mse_is_one_sixth():
    _, y = adding_problem(200_000, 4, seed=3)
    # Var(u1 + u2) = 2/12 for independent U(0, 1): the published trivial baseline.
    assert float(((y - 1.0) ** 2).mean()) == pytest.approx(ADDING_BASELINE_MSE, abs=2e-3)


def test_copy_memory_layout():
    x, y = copy_memory(16, 20, num_symbols=5, memory_length=4, seed=0)
    assert x.shape == y.shape == (16, 28)
    assert ((x[:, :4] >= 1) & (x[:, :4] <= 5)).all()
    assert (x[:, 4:23] == 0).all() and (x[:, 23] == 6).all() and (x[:, 24:] == 0).all()
    assert (y[:, :24] == 0).all()
    assert torch.equal(y[:, 24:], x[:, :4])  # replay after the delimiter


def test_selective_copying_tokens_in_order():
    x, y = selective_copying(32, 50, num_tokens=6, num_symbols=9, seed=0)
    assert x.shape == (32, 56) and y.shape == (32, 6)
    assert (x[:, 50:] == 10).all()
    body = x[:, :50]
    assert ((body > 0).sum(1) == 6).all()
    for i in range(32):
        assert body[i][body[i] > 0].tolist() == y[i].tolist()
    # positions differ between rows (unlike copy memory)
    assert len({tuple((body[i] > 0).nonzero().flatten().tolist()) for i in range(32)}) > 1


def test_generator_errors():
    with pytest.raises(ValueError, match="length must be an integer >= 2"):
        adding_problem(4, 1)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        copy_memory(0, 5)
    with pytest.raises(ValueError, match="length must be an integer >= 8"):
        selective_copying(2, 5, num_tokens=8)
