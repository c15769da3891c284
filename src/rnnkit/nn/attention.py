"""Attention over an encoder's outputs: additive (Bahdanau) and multiplicative (Luong).

Both score a decoder query q (B, Q) against every memory vector m_j (B, S, M)
and return the softmax-weighted context::

    additive (Bahdanau et al. 2015, eq. 6):   e_j = v^T tanh(W_q q + W_m m_j)
    multiplicative (Luong et al. 2015, "general", eq. 8):   e_j = q^T W_m m_j
    a = softmax(e) over the unmasked j;   context = sum_j a_j m_j

The memory projection ``W_m m_j`` does not depend on the query, so it is
computed once per source sentence (:meth:`keys`) and reused at every decoder
step: each step then costs O(S) for the scores, not a matrix product over the
whole memory again.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["ATTENTION_TYPES", "AdditiveAttention", "MultiplicativeAttention", "build_attention"]


class _Attention(nn.Module):
    """Shared masking and weighting; subclasses define ``keys`` and ``scores``."""

    def keys(self, memory: Tensor) -> Tensor:
        """Query-independent projection of ``memory`` (B, S, M)."""
        raise NotImplementedError  # each concrete class defines it

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        """Unnormalised scores e (B, S) of ``query`` (B, Q) against ``keys``."""
        raise NotImplementedError  # each concrete class defines it

    def forward(
        self, query: Tensor, memory: Tensor, mask: Tensor | None = None, keys: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Return ``(context (B, M), weights (B, S))``.

        Args:
            query: (B, Q) the decoder's current hidden state.
            memory: (B, S, M) the encoder outputs.
            mask: (B, S) bool, True at real (non-padding) source positions; padded
                positions get weight exactly 0. Every row needs one True.
            keys: ``self.keys(memory)`` if already computed (the decoder caches it).
        """
        if keys is None:
            keys = self.keys(memory)
        e = self.scores(query, keys)  # (B, S)
        if mask is not None:
            e = e.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(e, dim=-1)  # (B, S)
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)  # (B, 1, S) @ (B, S, M)
        return context, weights


class AdditiveAttention(_Attention):
    """Bahdanau attention: ``e_j = v^T tanh(W_q q + W_m m_j)``.

    Args:
        query_size: Q. memory_size: M. attn_size: A, the hidden size of the scorer.

    Attributes:
        query_proj: W_q (A, Q), no bias. memory_proj: W_m (A, M) with bias. v: (A,).
    """

    def __init__(self, query_size: int, memory_size: int, attn_size: int | None = None) -> None:
        super().__init__()
        attn_size = attn_size or query_size
        for name, value in (
            ("query_size", query_size),
            ("memory_size", memory_size),
            ("attn_size", attn_size),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        self.query_proj = nn.Linear(query_size, attn_size, bias=False)
        self.memory_proj = nn.Linear(memory_size, attn_size)
        self.v = nn.Parameter(torch.empty(attn_size).uniform_(-1, 1) / math.sqrt(attn_size))

    def keys(self, memory: Tensor) -> Tensor:
        return self.memory_proj(memory)  # (B, S, A)

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        hidden = torch.tanh(keys + self.query_proj(query).unsqueeze(1))  # (B, S, A)
        return hidden @ self.v  # (B, S)


class MultiplicativeAttention(_Attention):
    """Luong "general" attention: ``e_j = q^T W_m m_j``.

    Args:
        query_size: Q. memory_size: M.

    Attributes:
        memory_proj: W_m as a (Q, M) linear map without bias.
    """

    def __init__(self, query_size: int, memory_size: int) -> None:
        super().__init__()
        for name, value in (("query_size", query_size), ("memory_size", memory_size)):
            if value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        self.memory_proj = nn.Linear(memory_size, query_size, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        return self.memory_proj(memory)  # (B, S, Q)

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        return torch.bmm(keys, query.unsqueeze(2)).squeeze(2)  # (B, S, Q) @ (B, Q, 1) -> (B, S)


ATTENTION_TYPES = ("additive", "multiplicative")


def build_attention(kind: str, query_size: int, memory_size: int) -> _Attention:
    """``"additive"`` (Bahdanau) or ``"multiplicative"`` (Luong general)."""
    if kind == "additive":
        return AdditiveAttention(query_size, memory_size)
    if kind == "multiplicative":
        return MultiplicativeAttention(query_size, memory_size)
    raise ValueError(f"attention must be one of {', '.join(ATTENTION_TYPES)}, got {kind!r}")
