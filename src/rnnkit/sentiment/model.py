"""Text classifier: embedding -> (bi)directional recurrent stack -> pooling -> linear head.

For token ids x (B, T) with lengths n (B,) (steps t >= n_b are padding)::

    e_t = dropout_w(E[x_t])                 (B, T, D)   embedding (+ word dropout)
    h_t = RNN(e_t; lengths=n)               (B, T, K)   K = dirs * H; padding -> 0
    p   = pool(h, n)                        (B, P)      see below
    logits = W2 relu(W1 dropout(p)) + b     (B, C)      (one Linear when head_hidden == 0)

Pooling over the real steps only, so padding never changes a result:

- ``last``: the final state of the top layer, [h_fwd at step n-1 ; h_bwd at step 0];
- ``mean``: sum_t h_t / n;  ``max``: max over t < n of h_t;  ``maxmean``: [max ; mean];
- ``attention``: additive attention (Bahdanau et al. 2015, eq. 6; Yang et al.
  2016, sec. 2.2 for classification): u_t = v^T tanh(W h_t + b),
  a = softmax_{t<n}(u), p = sum_t a_t h_t. The weights a are returned for
  explanations.

Regularisation for small data: ``embed_dropout`` drops whole word vectors
(Gal & Ghahramani 2016, sec. 4: embedding dropout), ``word_dropout`` replaces
tokens by ``<unk>``, and ``dropout`` acts between recurrent layers and before
the head.

The model's config, :class:`~rnnkit.sentiment.config.TextClassifierConfig`, is
in the config tree (``model.*``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor, nn

from rnnkit.errors import UserError
from rnnkit.nn import build_recurrent
from rnnkit.sentiment.config import TextClassifierConfig
from rnnkit.sentiment.data import BucketBatches

__all__ = [
    "ClassifierOutput",
    "TextClassifier",
    "load_word_vectors",
    "predict_batches",
]


class ClassifierOutput(NamedTuple):
    """``logits`` (B, C); ``attention`` (B, T) weights for ``pooling="attention"``,
    otherwise an empty (B, 0) tensor (so the type never changes)."""

    logits: Tensor
    attention: Tensor


class TextClassifier(nn.Module):
    """See the module docstring."""

    def __init__(self, config: TextClassifierConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        D, H = config.embed_dim, config.hidden_size
        K = H * (2 if config.bidirectional else 1)
        self.embed = nn.Embedding(config.vocab_size, D, padding_idx=0)
        kwargs = {"num_layers": config.num_layers, "bidirectional": config.bidirectional}
        if config.num_layers > 1:
            kwargs["dropout"] = config.dropout
        self.rnn = build_recurrent(config.cell, D, H, **kwargs)
        if config.pooling == "attention":
            self.att_proj = nn.Linear(K, K)
            self.att_v = nn.Linear(K, 1, bias=False)
        self.drop = nn.Dropout(config.dropout)
        P, C = config.pooled_size, config.num_classes
        if config.head_hidden:
            self.head = nn.Sequential(
                nn.Linear(P, config.head_hidden), nn.ReLU(), nn.Linear(config.head_hidden, C)
            )
        else:
            self.head = nn.Linear(P, C)

    def embed_tokens(self, ids: Tensor) -> Tensor:
        """ids (B, T) -> embeddings (B, T, D), with embedding dropout in training."""
        q = self.config.word_dropout
        if self.training and q > 0:
            # Word dropout (Iyyer et al. 2015, sec. 3.1; here to <unk>, so the <unk> vector
            # learns to stand for words never seen in training). Padding stays padding.
            hit = (torch.rand(ids.shape, device=ids.device) < q) & (ids != 0)  # (B, T)
            ids = ids.masked_fill(hit, 1)
        e = self.embed(ids)  # (B, T, D)
        p = self.config.embed_dropout
        if self.training and p > 0:
            # One Bernoulli draw per (row, token): the whole word vector is dropped.
            keep = torch.empty(e.shape[:2], device=e.device).bernoulli_(1 - p)  # (B, T)
            e = e * (keep / (1 - p)).unsqueeze(-1).to(e.dtype)
        return e

    def forward(
        self, ids: Tensor, lengths: Tensor | None = None, *, embeddings: Tensor | None = None
    ) -> ClassifierOutput:
        """ids (B, T), lengths (B,) (None: no padding) -> logits (B, C).

        ``embeddings`` (B, T, D) replaces ``embed_tokens(ids)`` (gradient x input
        explanations differentiate with respect to it).
        """
        B, T = ids.shape
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long)
        e = self.embed_tokens(ids) if embeddings is None else embeddings  # (B, T, D)
        h, state = self.rnn(e, lengths=lengths)  # (B, T, K), zero past each length
        valid = torch.arange(T, device=ids.device) < lengths.to(ids.device)[:, None]  # (B, T)
        att = h.new_zeros(B, 0)
        pooling = self.config.pooling
        if pooling == "last":
            h_n = state[0] if isinstance(state, tuple) else state  # (L*dirs, B, H)
            dirs = 2 if self.config.bidirectional else 1
            # The top layer's directions, side by side: [fwd ; bwd].
            pooled = h_n[-dirs:].transpose(0, 1).reshape(B, -1)  # (dirs, B, H) -> (B, dirs*H)
        elif pooling == "attention":
            u = self.att_v(torch.tanh(self.att_proj(h))).squeeze(-1)  # (B, T)
            att = u.masked_fill(~valid, float("-inf")).softmax(-1)  # (B, T)
            pooled = torch.einsum("bt,btk->bk", att, h)  # (B, K)
        else:
            n = lengths.to(h.device, h.dtype)[:, None]  # (B, 1)
            mean = h.sum(1) / n  # (B, K): padding is zero
            mx = h.masked_fill(~valid.unsqueeze(-1), float("-inf")).amax(1)  # (B, K)
            pooled = {"mean": mean, "max": mx}.get(pooling)
            if pooled is None:
                pooled = torch.cat([mx, mean], dim=-1)  # (B, 2K)
        return ClassifierOutput(self.head(self.drop(pooled)), att)

    @torch.no_grad()
    def set_pretrained(self, vectors: Tensor, found: Tensor) -> None:
        """Copy rows of ``vectors`` (V, D) where ``found`` (V,) is True into the embedding."""
        if vectors.shape != self.embed.weight.shape:
            raise UserError(
                f"word vectors have shape {tuple(vectors.shape)} but the embedding is "
                f"{tuple(self.embed.weight.shape)}; set model.embed_dim to the vectors' dimension"
            )
        self.embed.weight[found] = vectors[found].to(self.embed.weight.dtype)


def load_word_vectors(
    path: str | os.PathLike[str], itos: list[str], dim: int
) -> tuple[Tensor, Tensor]:
    """Vectors for the words ``itos`` from a GloVe / word2vec text file.

    Lines are ``word v1 v2 ... vD`` (a word2vec header line ``N D`` is skipped).
    Words are matched as is, then lower-cased. Returns ``vectors`` (V, D) with
    zeros for the words not found and ``found`` (V,) bool. Streams the file:
    only the vocabulary's rows are kept.

    Raises:
        UserError: missing file, a vector of the wrong dimension, no word found.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"word vector file {p} not found; pass a GloVe/word2vec text file")
    index: dict[str, int] = {}
    for i, w in enumerate(itos):
        index.setdefault(w, i)
    vectors = torch.zeros(len(itos), dim)
    found = torch.zeros(len(itos), dtype=torch.bool)
    with open(p, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip().split(" ")
            if n == 1 and len(parts) == 2 and all(x.isdigit() for x in parts):
                continue  # word2vec header
            if len(parts) < 2:
                continue
            word = parts[0]
            i = index.get(word)
            if i is None:
                i = index.get(word.lower())
                if i is None or found[i]:
                    continue
            if len(parts) - 1 != dim:
                raise UserError(
                    f"{p}, line {n}: the vector has {len(parts) - 1} values but model.embed_dim "
                    f"is {dim}; set --model.embed_dim={len(parts) - 1}"
                )
            try:
                vectors[i] = torch.tensor([float(x) for x in parts[1:]])
            except ValueError as exc:
                raise UserError(f"{p}, line {n}: not a word vector line ({exc})") from exc
            found[i] = True
    if not bool(found[2:].any()):
        raise UserError(f"{p} has a vector for none of the {len(itos) - 2} vocabulary words")
    # Found vectors may have any scale; the rest keep the embedding's own random init.
    if not math.isfinite(float(vectors.abs().max())):
        raise UserError(f"{p} holds non-finite values")
    return vectors, found


@torch.no_grad()
def predict_batches(model: TextClassifier, batches: BucketBatches) -> tuple[Tensor, list[int]]:
    """Probabilities (N, C) in the original order, and the labels (if any) in that order."""
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        rows, outs = [], []
        for idx, batch in zip(batches.batch_indices(), batches, strict=True):
            logits = model(batch.ids.to(device), batch.lengths).logits  # (B, C)
            outs.append(logits.float().softmax(-1).cpu())
            rows.append(idx)
        order = torch.cat(rows)  # position in the sorted batches -> original index
        probs = torch.empty(len(order), outs[0].size(1))
        probs[order] = torch.cat(outs)  # (N, C) back in input order
    finally:
        model.train(was_training)
    labels = list(batches.labels) if batches.labels is not None else []
    return probs, labels
