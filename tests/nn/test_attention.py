"""Attention against an explicit per-position float64 computation of the paper's equations."""

from __future__ import annotations

import math

import pytest
import torch

from rnnkit.nn.attention import AdditiveAttention, MultiplicativeAttention, build_attention


@torch.no_grad()
def _oracle(kind: str, att: torch.nn.Module, q: torch.Tensor, m: torch.Tensor, mask: torch.Tensor):
    """Scores position by position with plain Python sums, softmax by hand."""
    B, S, _ = m.shape
    ctx = torch.zeros(B, m.size(2), dtype=torch.float64)
    weights = torch.zeros(B, S, dtype=torch.float64)
    for b in range(B):
        e = []
        for j in range(S):
            if kind == "additive":
                Wq, Wm, bm, v = (
                    att.query_proj.weight,
                    att.memory_proj.weight,
                    att.memory_proj.bias,
                    att.v,
                )
                e.append(float(v @ torch.tanh(Wq @ q[b] + Wm @ m[b, j] + bm)))
            else:
                e.append(float(q[b] @ (att.memory_proj.weight @ m[b, j])))
        live = [j for j in range(S) if mask[b, j]]
        top = max(e[j] for j in live)
        z = sum(math.exp(e[j] - top) for j in live)
        for j in live:
            weights[b, j] = math.exp(e[j] - top) / z
            ctx[b] += weights[b, j] * m[b, j]
    return ctx, weights


@pytest.mark.parametrize("kind", ["additive", "multiplicative"])
def test_matches_equations_with_padding_mask(kind: str) -> None:
    torch.manual_seed(0)
    att = build_attention(kind, 5, 6).double()
    q = torch.randn(3, 5, dtype=torch.float64)
    m = torch.randn(3, 4, 6, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    ctx, w = att(q, m, mask)
    ref_ctx, ref_w = _oracle(kind, att, q, m, mask)
    torch.testing.assert_close(w, ref_w)
    torch.testing.assert_close(ctx, ref_ctx)
    assert bool((w[~mask] == 0).all())  # padding gets exactly zero weight
    torch.testing.assert_close(w.sum(-1), torch.ones(3, dtype=torch.float64))
    # cached keys give the same result
    ctx2, w2 = att(q, m, mask, keys=att.keys(m))
    torch.testing.assert_close(ctx2, ctx)


def test_gradients_match_finite_differences() -> None:
    torch.manual_seed(1)
    for att in (AdditiveAttention(3, 4, 5).double(), MultiplicativeAttention(3, 4).double()):
        q = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
        m = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
        mask = torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=torch.bool)
        assert torch.autograd.gradcheck(lambda q, m, a=att, k=mask: a(q, m, k)[0], (q, m))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="attention must be one of additive, multiplicative"):
        build_attention("dot-product", 4, 4)
    with pytest.raises(ValueError, match="query_size must be > 0, got 0"):
        MultiplicativeAttention(0, 4)
