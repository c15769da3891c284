"""The log-space parallel scan against its sequential twin, closed forms and finite differences."""

from __future__ import annotations

import math

import pytest
import torch

from rnnkit.nn import scan
from rnnkit.nn.scan import parallel_scan_log, sequential_scan

# float64 checks the algebra tightly. float32 checks that the log-space route keeps ~4 digits:
# the scan adds A_t to log b_s - A_s with |A_t| ~ t, and logcumsumexp's backward
# rounds likewise, so its error grows with T (up to ~5e-5 relative at T = 300).
TOL = {torch.float32: dict(rtol=1e-3, atol=1e-3), torch.float64: dict(rtol=1e-10, atol=1e-12)}


def _inputs(B: int, T: int, H: int, dtype: torch.dtype, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    # log a in (-3, 0): a in (0.05, 1), the range of a sigmoid gate; log b anywhere sensible.
    log_a = -3 * torch.rand(B, T, H, generator=gen, dtype=dtype)
    log_b = torch.randn(B, T, H, generator=gen, dtype=dtype)
    h0 = torch.randn(B, H, generator=gen, dtype=dtype)  # both signs, as a user may pass
    return log_a, log_b, h0


def _closed_form(log_a, log_b, h0):
    """h_t = (prod_{s<=t} a_s) h_0 + sum_{s<=t} (prod_{s<r<=t} a_r) b_s, with explicit
    products in float64: no scan, no recurrence, an independent oracle."""
    a, b = log_a.double().exp(), log_b.double().exp()
    B, T, H = a.shape
    out = torch.zeros(B, T, H, dtype=torch.float64)
    for t in range(T):
        acc = a[:, : t + 1].prod(1) * (0 if h0 is None else h0.double())
        for s in range(t + 1):
            acc = acc + a[:, s + 1 : t + 1].prod(1) * b[:, s]
        out[:, t] = acc
    return out


@pytest.mark.parametrize("with_h0", [False, True])
def test_both_paths_match_closed_form(with_h0):
    log_a, log_b, h0 = _inputs(2, 9, 3, torch.float64)
    h0 = h0 if with_h0 else None
    want = _closed_form(log_a, log_b, h0)
    torch.testing.assert_close(parallel_scan_log(log_a, log_b, h0), want)
    torch.testing.assert_close(sequential_scan(log_a.exp(), log_b.exp(), h0), want)
    # chunked: 9 steps in chunks of 4, 4, 1, the state carried across boundaries
    torch.testing.assert_close(parallel_scan_log(log_a, log_b, h0, chunk_size=4), want)


def test_initial_state_enters_once():
    """The public-implementation pitfall: with h0 given, h_1 must be a_1 h_0 + b_1 exactly."""
    log_a = torch.tensor([[[math.log(0.25)], [math.log(0.5)]]], dtype=torch.float64)
    log_b = torch.tensor([[[math.log(2.0)], [math.log(3.0)]]], dtype=torch.float64)
    h0 = torch.tensor([[-8.0]], dtype=torch.float64)
    h = parallel_scan_log(log_a, log_b, h0)
    assert h[0, 0, 0].item() == pytest.approx(0.25 * -8.0 + 2.0)  # 0
    assert h[0, 1, 0].item() == pytest.approx(0.5 * 0.0 + 3.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("T", [1, 7, 300])
@pytest.mark.parametrize("h0_kind", ["none", "random", "zeros"])
@pytest.mark.parametrize("chunk_size", [None, 64, "at once"])
def test_parallel_matches_sequential_outputs_and_gradients(
    dtype, T, h0_kind, chunk_size, monkeypatch
):
    if chunk_size == "at once":  # the GPU's way of running chunks, here on the CPU
        monkeypatch.setattr(scan, "_scan_chunks_in_turn", scan._scan_chunks_at_once)
        chunk_size = 64
    log_a, log_b, h0 = _inputs(3, T, 5, dtype, seed=T)
    h0 = {"none": None, "random": h0, "zeros": torch.zeros_like(h0)}[h0_kind]
    leaves = [log_a, log_b] + ([h0] if h0 is not None else [])
    for t in leaves:
        t.requires_grad_(True)
    weights = torch.randn(3, T, 5, dtype=dtype)  # a loss that weights every step differently

    hp = parallel_scan_log(log_a, log_b, h0, chunk_size=chunk_size)
    gp = torch.autograd.grad((hp * weights).sum(), leaves)
    hs = sequential_scan(log_a.exp(), log_b.exp(), h0)
    gs = torch.autograd.grad((hs * weights).sum(), leaves)

    torch.testing.assert_close(hp, hs, **TOL[dtype])
    torch.testing.assert_close(hp[:, -1], hs[:, -1], **TOL[dtype])  # final state
    for a, b in zip(gp, gs, strict=True):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, **TOL[dtype])


def test_gradcheck_against_finite_differences():
    log_a, log_b, h0 = _inputs(2, 6, 3, torch.float64)
    for t in (log_a, log_b, h0):
        t.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda la, lb, h: parallel_scan_log(la, lb, h, chunk_size=4), (log_a, log_b, h0)
    )
    for h in (h0, None):  # all chunks at once (the GPU's way), 6 steps in chunks of 4 + pad
        assert torch.autograd.gradcheck(
            lambda la, lb, h=h: scan._scan_chunks_at_once(la, lb, h, 4), (log_a, log_b)
        )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_long_sequence_with_extreme_gates_stays_finite_and_accurate(dtype):
    """T = 10000 with log a down to -60 and log b in [-40, 40]: without chunking
    |A_t| reaches ~1e5; the chunked scan stays finite and close to float64's loop."""
    gen = torch.Generator().manual_seed(1)
    B, T, H = 2, 10_000, 4
    log_a = (-60 * torch.rand(B, T, H, generator=gen)).to(dtype)
    log_a[:, ::7] = 0.0  # some steps with no decay at all (a = 1)
    log_b = (80 * torch.rand(B, T, H, generator=gen) - 40).to(dtype)
    h0 = torch.full((B, H), 3.0, dtype=dtype)
    for t in (log_a, log_b):
        t.requires_grad_(True)
    h = parallel_scan_log(log_a, log_b, h0)
    assert torch.isfinite(h).all()
    # b up to e^40 overflows float32 (max ~e^88.7) only if summed; compare in log space.
    want = sequential_scan(
        log_a.detach().double().exp(), log_b.detach().double().exp(), h0.double()
    )
    torch.testing.assert_close(h.double().log(), want.log(), rtol=0, atol=2e-3)
    h.log().mean().backward()
    assert torch.isfinite(log_a.grad).all() and torch.isfinite(log_b.grad).all()


def test_unchunked_float32_loses_precision_chunked_does_not():
    """Why chunks: the single-pass scan's error grows with |A_t|; the chunked one's does not."""
    gen = torch.Generator().manual_seed(2)
    log_a = -20 * torch.rand(1, 4000, 8, generator=gen)  # |A_T| ~ 4e4
    log_b = torch.randn(1, 4000, 8, generator=gen)
    want = sequential_scan(log_a.double().exp(), log_b.double().exp())
    err = {
        c: ((parallel_scan_log(log_a, log_b, chunk_size=c).double() - want).abs() / want)
        .max()
        .item()
        for c in (None, 32)
    }
    assert err[32] < 1e-4
    assert err[None] > 10 * err[32]


def test_padding_steps_freeze_the_state():
    """log a = 0, log b = -1e4 (what the modules use past a length) leaves h unchanged."""
    log_a, log_b, h0 = _inputs(2, 10, 3, torch.float64)
    log_a[:, 6:] = 0.0
    log_b[:, 6:] = -1.0e4
    for t in (log_a, log_b):
        t.requires_grad_(True)
    h = parallel_scan_log(log_a, log_b, h0, chunk_size=4)
    torch.testing.assert_close(h[:, 6:], h[:, 5:6].expand(-1, 4, -1))
    h.sum().backward()
    assert torch.isfinite(log_b.grad).all()
    assert (log_b.grad[:, 6:].abs() < 1e-300).all()


def test_errors_name_the_problem():
    x = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match=r"shape \(B, T, H\) and match"):
        parallel_scan_log(x, torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match=r"h0 must have shape \(B, H\) = \(2, 4\)"):
        parallel_scan_log(x, x, torch.zeros(4))
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        parallel_scan_log(x, x, chunk_size=0)
    with pytest.raises(ValueError, match="must both have shape"):
        sequential_scan(torch.zeros(3, 4), torch.zeros(3, 4))
