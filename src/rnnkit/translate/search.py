"""Greedy and batched beam search over :class:`rnnkit.translate.model.Seq2Seq`.

Both advance the decoder one :meth:`Seq2Seq.step` at a time, carrying only
its O(1) state (the RNN state and the input-feeding vector), and both stop a
hypothesis at EOS or at its own length limit (EOS is then forced), so a
sentence decoded in a batch gets the same output as decoded alone.

Beam search (batched, B sentences x K hypotheses in one (B*K)-row decoder
batch): at each step every live hypothesis is extended by every token, the K
best of the K*V candidates per sentence (by summed log-probability) survive,
and the decoder state rows are re-gathered from their parents. A finished
hypothesis stays in the beam with its score frozen (its only continuation is
padding, at log-probability 0). At the end the best hypothesis maximises

    score / length ** alpha        (length normalisation; alpha = 0: none)

where length counts the tokens including EOS. With alpha = 1 (the default)
that is the mean log-probability per token. It is plain length normalisation,
not GNMT's length penalty ``((5 + length) / 6) ** alpha`` (Wu et al. 2016,
sec. 7); an alpha tuned for one does not carry over to the other. It only chooses among
the K hypotheses left at the end: pruning during the search ranks by summed
log-probability, and a finished hypothesis keeps its place in the beam, so a
long hypothesis that normalisation would prefer can be pruned before it ends.
With K = 1 this is greedy search.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from rnnkit.translate.model import PAD_ID, Seq2Seq

__all__ = ["beam_search", "greedy_search", "max_lengths"]


def max_lengths(src_len: Tensor, ratio: float, minimum: int = 10) -> Tensor:
    """Per-sentence output limit: ``max(minimum, ceil(ratio * source length))`` tokens."""
    if ratio <= 0:
        raise ValueError(f"max_len_ratio must be > 0, got {ratio}")
    return torch.clamp(torch.ceil(src_len.double() * ratio).long(), min=minimum)


def _strip(row: list[int], eos: int) -> list[int]:
    return row[: row.index(eos)] if eos in row else row


@torch.no_grad()
def greedy_search(model: Seq2Seq, src: Tensor, src_len: Tensor, max_len: Tensor) -> list[list[int]]:
    """The argmax token at every step; returns each sentence's ids without BOS/EOS."""
    B = src.size(0)
    memory, state = model.encode(src, src_len)
    y = torch.full((B,), model.bos_id, dtype=torch.long, device=src.device)
    limit = max_len.to(src.device)
    done = torch.zeros(B, dtype=torch.bool, device=src.device)
    out: list[Tensor] = []
    for t in range(int(limit.max()) + 1):
        logits, state, _ = model.step(y, state, memory)
        y = logits.argmax(-1)  # (B,)
        y = torch.where(t >= limit, torch.full_like(y, model.eos_id), y)  # at the limit: EOS
        y = torch.where(done, torch.full_like(y, PAD_ID), y)
        out.append(y)
        done = done | (y == model.eos_id)
        if bool(done.all()):
            break
    tokens = torch.stack(out, dim=1).tolist()  # (B, steps)
    return [_strip(row, model.eos_id) for row in tokens]


@torch.no_grad()
def beam_search(
    model: Seq2Seq,
    src: Tensor,
    src_len: Tensor,
    max_len: Tensor,
    *,
    beam: int = 5,
    alpha: float = 1.0,
) -> list[list[int]]:
    """Batched beam search (see the module docstring); ids without BOS/EOS per sentence."""
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    if alpha < 0:
        raise ValueError(f"length normalisation alpha must be >= 0, got {alpha}")
    B, K, dev = src.size(0), beam, src.device
    memory, state = model.encode(src, src_len)
    rows = torch.arange(B, device=dev).repeat_interleave(K)  # (B*K,): b0 b0 .. b1 b1 ..
    memory = Seq2Seq.repeat_memory(memory, K)
    state = Seq2Seq.reorder(state, rows)
    limit = max_len.to(dev).repeat_interleave(K)  # (B*K,)
    # Only the first hypothesis of each sentence is live at the start; the others
    # would duplicate it.
    scores = torch.full((B, K), -math.inf, device=dev)
    scores[:, 0] = 0.0
    tokens = torch.empty(B * K, 0, dtype=torch.long, device=dev)
    lengths = torch.zeros(B * K, dtype=torch.long, device=dev)
    finished = torch.zeros(B * K, dtype=torch.bool, device=dev)
    y = torch.full((B * K,), model.bos_id, dtype=torch.long, device=dev)
    for t in range(int(limit.max()) + 1):
        logits, state, _ = model.step(y, state, memory)
        logp = torch.log_softmax(logits.float(), dim=-1)  # (B*K, V)
        V = logp.size(1)
        vocab = torch.arange(V, device=dev)
        # At its length limit a hypothesis may only end.
        at_limit = (t >= limit)[:, None] & (vocab != model.eos_id)[None, :]  # (B*K, V)
        logp = logp.masked_fill(at_limit, -math.inf)
        # A finished hypothesis continues only with padding, at no cost.
        frozen = torch.full_like(logp, -math.inf)
        frozen[:, PAD_ID] = 0.0
        logp = torch.where(finished[:, None], frozen, logp)
        total = (scores.view(-1, 1) + logp).view(B, K * V)  # (B, K*V)
        scores, idx = total.topk(K, dim=1)  # (B, K)
        parent = torch.div(idx, V, rounding_mode="floor")  # (B, K)
        token = (idx % V).view(-1)  # (B*K,)
        origin = (torch.arange(B, device=dev)[:, None] * K + parent).view(-1)  # (B*K,)
        was_finished = finished[origin]
        tokens = torch.cat([tokens[origin], token[:, None]], dim=1)  # (B*K, t+1)
        lengths = lengths[origin] + (~was_finished).long()
        finished = was_finished | (token == model.eos_id)
        state = Seq2Seq.reorder(state, origin)
        y = token
        if bool(finished.all()):
            break
    norm = scores.view(-1) / lengths.clamp(min=1).double().pow(alpha).float()  # (B*K,)
    best = norm.view(B, K).argmax(dim=1)  # (B,)
    chosen = tokens.view(B, K, -1)[torch.arange(B, device=dev), best]  # (B, steps)
    return [_strip(row, model.eos_id) for row in chosen.tolist()]
