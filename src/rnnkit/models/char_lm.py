"""Character-level language model: embedding -> recurrent stack -> linear head.

For input ids x (B, T)::

    e_t = E[x_t]                          (B, T, D)    embedding
    h_t, state = RNN(e_t, state)          (B, T, H)    rnnkit RNN / LSTM / GRU stack
    logits_t = W dropout(h_t) + b         (B, T, V)    p(x_{t+1} | x_{<=t}) = softmax(logits_t)

With ``tie_embeddings`` the head reuses the embedding matrix (W = E, needs
D == H; Press & Wolf 2017). :meth:`CharLM.step` runs one character with the
recurrent module's O(1) ``step()``, which is what generation uses: the prompt
goes through ``forward`` once, then each new character costs one step.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from rnnkit.errors import UserError

__all__ = ["CharLM", "CharLMConfig", "CharLMOutput", "sample_next"]


@dataclass(kw_only=True)
class CharLMConfig:
    """Shape of a :class:`CharLM`. ``vocab_size`` comes from the fitted vocabulary."""

    vocab_size: int = field(default=0, metadata={"derived": True})  # from the vocabulary
    cell: str = "lstm"  # any name in rnnkit.nn.registry.RECURRENT
    num_layers: int = 2
    hidden_size: int = 256
    embed_dim: int = 64  # D; must equal hidden_size when tie_embeddings
    dropout: float = 0.0  # between recurrent layers and before the head
    tie_embeddings: bool = False

    def validate(self) -> None:
        from rnnkit.nn.registry import RECURRENT

        if self.cell not in RECURRENT:
            raise UserError(f"model.cell must be one of {', '.join(RECURRENT)}, got {self.cell!r}")
        for name in ("vocab_size", "num_layers", "hidden_size", "embed_dim"):
            if getattr(self, name) < 1:
                raise UserError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"model.dropout must be in [0, 1), got {self.dropout}")
        if self.tie_embeddings and self.embed_dim != self.hidden_size:
            raise UserError(
                f"model.tie_embeddings needs model.embed_dim == model.hidden_size, got "
                f"{self.embed_dim} and {self.hidden_size}; set both to the same value"
            )


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
    if temperature < 0:
        raise UserError(f"temperature must be >= 0, got {temperature}")
    if top_k < 0:
        raise UserError(f"top_k must be >= 0, got {top_k}")
    if not 0.0 < top_p <= 1.0:
        raise UserError(f"top_p must be in (0, 1], got {top_p}")
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
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (B,)
