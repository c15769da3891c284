"""Character-level language model: embedding -> recurrent stack -> linear head.

For input ids x (B, T)::

    e_t = E[x_t]                          (B, T, D)    embedding
    h_t, state = RNN(e_t, state)          (B, T, H)    rnnkit RNN / LSTM / GRU stack
    logits_t = W dropout(h_t) + b         (B, T, V)    p(x_{t+1} | x_{<=t}) = softmax(logits_t)

With ``tie_embeddings`` the head reuses the embedding matrix (W = E, needs
D == H; Press & Wolf 2017). :meth:`CharLM.step` runs one character with the
recurrent module's O(1) ``step()``, which is what generation uses: the prompt
goes through ``forward`` once, then each new character costs one step.

Also here: :func:`lm_loss` (the training loss for :class:`rnnkit.training.Trainer`)
and :func:`evaluate_ids` (nats/char, bits/char and perplexity of a whole text).
The model's config, :class:`~rnnkit.textgen.config.CharLMConfig`, is the
``model`` section of the textgen config tree.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.errors import UserError
from rnnkit.textgen.config import CharLMConfig
from rnnkit.textgen.data import TextBatch
from rnnkit.training import StepResult

__all__ = [
    "CharLM",
    "CharLMConfig",
    "CharLMOutput",
    "build_model",
    "check_sampling",
    "evaluate_ids",
    "lm_loss",
    "sample_next",
]


class CharLMOutput(NamedTuple):
    """``logits`` (B, T, V) from forward or (B, V) from step; ``state`` to carry."""

    logits: Tensor
    state: Any


class CharLM(nn.Module):
    """See the module docstring."""

    def __init__(self, config: CharLMConfig) -> None:
        super().__init__()
        from rnnkit.nn import build_recurrent

        config.validate()
        self.config = config
        V, D, H = config.vocab_size, config.embed_dim, config.hidden_size
        self.embed = nn.Embedding(V, D)
        self.rnn = build_recurrent(
            config.cell, D, H, num_layers=config.num_layers, dropout=config.dropout
        )
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(H, V)
        if config.tie_embeddings:
            self.head.weight = self.embed.weight  # (V, H) == (V, D)

    def forward(self, x: Tensor, state: Any = None) -> CharLMOutput:
        """x (B, T) int64 -> logits (B, T, V) and the final state."""
        h, state = self.rnn(self.embed(x), state)  # (B, T, H)
        return CharLMOutput(self.head(self.drop(h)), state)

    def step(self, x_t: Tensor, state: Any = None) -> CharLMOutput:
        """x_t (B,) int64 -> logits (B, V) for the next character; O(1) in the past length."""
        h, state = self.rnn.step(self.embed(x_t), state)  # (B, H)
        return CharLMOutput(self.head(self.drop(h)), state)

    @torch.no_grad()
    def generate(
        self,
        prompt: Tensor,
        length: int,
        *,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Iterator[int]:
        """Yield ``length`` sampled ids, one at a time, after the prompt ids (P,).

        The prompt runs through ``forward`` once; every new id costs one ``step``.
        """
        if prompt.dim() != 1 or prompt.numel() == 0:
            raise UserError("the prompt must contain at least one character")
        was_training = self.training
        self.eval()
        try:
            out = self(prompt[None])  # logits (1, P, V)
            logits, state = out.logits[:, -1], out.state  # (1, V)
            for _ in range(length):
                nxt = sample_next(
                    logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator
                )  # (1,)
                yield int(nxt)
                logits, state = self.step(nxt, state)
        finally:
            self.train(was_training)


def check_sampling(*, temperature: float, top_k: int, top_p: float) -> None:
    """Raise a one-line :class:`UserError` for sampling options out of range."""
    if not math.isfinite(temperature):
        raise UserError(f"temperature must be a finite number >= 0, got {temperature}")
    if temperature < 0:
        raise UserError(f"temperature must be >= 0, got {temperature}")
    if 0 < temperature < 1e-6:  # logits / temperature could overflow float32: use greedy
        raise UserError(f"temperature must be 0 (greedy) or >= 1e-6, got {temperature}")
    if isinstance(top_k, bool) or not isinstance(top_k, int):
        raise UserError(f"top_k must be an integer >= 0 (0 = all), got {top_k!r}")
    if top_k < 0:
        raise UserError(f"top_k must be >= 0, got {top_k}")
    if not 0.0 < top_p <= 1.0:  # also false for NaN
        raise UserError(f"top_p must be in (0, 1], got {top_p}")


def sample_next(
    logits: Tensor,
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Sample one id per row of ``logits`` (B, V) -> (B,).

    ``temperature`` 0 is greedy (argmax). Otherwise p = softmax(logits / temperature),
    restricted to the ``top_k`` most likely ids (0 = all) and to the smallest set
    whose probability reaches ``top_p`` (nucleus sampling, Holtzman et al. 2020),
    then renormalised.
    """
    check_sampling(temperature=temperature, top_k=top_k, top_p=top_p)
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if top_k:
        kth = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1).values[..., -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (B, V)
        probs = sorted_logits.softmax(-1)
        # Drop an id when the ids before it already reach top_p; the first always stays.
        drop = probs.cumsum(-1) - probs >= top_p
        drop[..., 0] = False  # also when top_p underflows to 0 in float32
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (B,)


def build_model(cfg: CharLMConfig, vocab_size: int) -> CharLM:
    """A :class:`CharLM` of shape ``cfg`` for a vocabulary of ``vocab_size`` characters."""
    return CharLM(replace(cfg, vocab_size=vocab_size))


def lm_loss(model: nn.Module, batch: TextBatch, state: Any) -> StepResult:
    """Mean next-character cross-entropy (nats/char) of one batch."""
    out = model(batch.x, state)  # logits (B, T, V)
    loss = F.cross_entropy(out.logits.flatten(0, 1), batch.y.flatten())  # (B*T, V) vs (B*T,)
    return StepResult(loss, out.state, batch.y.numel())


@torch.no_grad()
def evaluate_ids(
    model: CharLM, ids: Tensor, *, batch_size: int = 32, seq_len: int = 256
) -> dict[str, float]:
    """Next-character loss over a whole id stream, state carried chunk to chunk.

    Returns ``loss`` (nats/char), ``bits_per_char`` (= loss / ln 2) and
    ``perplexity`` (= exp(loss)), over the ``characters`` predicted.
    """
    if len(ids) < 2:
        raise UserError("the text to evaluate needs at least 2 characters")
    if batch_size < 1 or seq_len < 1:
        raise UserError(f"batch_size and seq_len must be >= 1, got {batch_size} and {seq_len}")
    model.eval()
    ids = ids.to(next(model.parameters()).device)
    rows = max(1, min(batch_size, (len(ids) - 1) // seq_len))
    L = (len(ids) - 1) // rows
    x = ids[: rows * L].view(rows, L)  # (rows, L)
    y = ids[1 : rows * L + 1].view(rows, L)
    total, state = 0.0, None
    for s in range(0, L, seq_len):
        out = model(x[:, s : s + seq_len], state)  # (rows, t, V)
        state = out.state
        total += F.cross_entropy(
            out.logits.flatten(0, 1), y[:, s : s + seq_len].flatten(), reduction="sum"
        ).item()
    n = rows * L
    loss = total / n
    return {
        "loss": loss,
        "bits_per_char": loss / math.log(2),
        "perplexity": math.exp(loss),
        "characters": n,
    }
