"""Encoder-decoder with attention and input feeding (Bahdanau et al. 2015; Luong et al. 2015).

Shapes: B batch, S source length, T target length, E embedding size, H hidden
size, L decoder layers, N encoder layers (``encoder_layers``, default L), V target
vocabulary::

    encoder:  x_j = dropout(E_src[src_j])                         (B, S, E)
              m_1..m_S = BiRNN(x) (rnnkit GRU/LSTM, N layers)     (B, S, 2H)
              s_0^l = tanh(W_b [h_fwd_final; h_bwd_final]^k(l))   (L, B, H) (and c)
    decoder step t (Luong 2015, sec. 3.3 "input feeding"):
              u_t = [dropout(E_tgt[y_{t-1}]); h~_{t-1}]          (B, E + H)
              h_t, s_t = RNN.step(u_t, s_{t-1})                   (B, H), O(1) state
              c_t, a_t = attention(h_t, m, mask)                  (B, 2H), (B, S)
              h~_t = tanh(W_c [h_t; c_t])                         (B, H)
              logits_t = W_o dropout(h~_t) + b_o                  (B, V)

Both attention scores (additive and multiplicative, :mod:`rnnkit.nn.attention`)
use the current decoder state h_t as the query, as in Luong et al.; the
additive score is Bahdanau's MLP. With ``tie_embeddings`` the output matrix
W_o is the target embedding matrix (Press & Wolf 2017; needs E == H).

Decoder layer l starts from encoder layer k(l) = max(0, l + N - L): layer by
layer when N == L, the top L encoder layers when the encoder is deeper, and the
bottom encoder layer for the decoder layers below the encoder's when it is
shallower. ``W_b`` is shared by the layers, so its shape does not depend on N.

Token ids: 0 is padding, 1 unknown (the tokenizer's), and the last two ids
of the target vocabulary are BOS and EOS (``bos_id``, ``eos_id``).

Training runs the same :meth:`Seq2Seq.step` as decoding, with the reference
token fed back (teacher forcing) or, with probability
``sampling_ratio``, the model's own previous prediction (scheduled sampling,
Bengio et al. 2015).

The model's options, :class:`~rnnkit.translate.config.Seq2SeqConfig`, sit in
the application's config module (the config tree imports nothing of the
application); it is re-exported here.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.nn import build_recurrent
from rnnkit.nn.attention import build_attention
from rnnkit.translate.config import Seq2SeqConfig

__all__ = ["DecoderState", "Memory", "Seq2Seq", "Seq2SeqConfig", "Seq2SeqOutput", "PAD_ID"]

PAD_ID = 0


class Memory(NamedTuple):
    """The encoded source, fixed for a whole decode."""

    out: Tensor  # (B, S, 2H) encoder outputs m_j
    keys: Tensor  # attention.keys(out), cached
    mask: Tensor  # (B, S) bool, True at real tokens


class DecoderState(NamedTuple):
    """Everything the decoder carries between steps: O(1) in the output length."""

    rnn: Any  # (L, B, H), or (h, c) for LSTM
    feed: Tensor  # (B, H) the previous attentional vector h~_{t-1}


class Seq2SeqOutput(NamedTuple):
    logits: Tensor  # (B, T, V)
    attention: Tensor  # (B, T, S)


class Seq2Seq(nn.Module):
    """The encoder-decoder; see the module docstring for the equations."""

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        config.validate()
        self.config = c = config
        H, E, L = c.hidden_size, c.embed_dim, c.num_layers
        N = c.encoder_layers or L
        self.bos_id = c.tgt_vocab_size - 2
        self.eos_id = c.tgt_vocab_size - 1
        self.src_embed = nn.Embedding(c.src_vocab_size, E, padding_idx=PAD_ID)
        self.tgt_embed = nn.Embedding(c.tgt_vocab_size, E, padding_idx=PAD_ID)
        self.encoder = build_recurrent(
            c.cell, E, H, num_layers=N, bidirectional=True, dropout=c.dropout if N > 1 else 0.0
        )
        # The encoder layer whose final states start each decoder layer (module docstring).
        self.bridge_layers = [max(0, layer + N - L) for layer in range(L)]
        rnn_dropout = c.dropout if L > 1 else 0.0
        n_state = 2 if c.cell == "lstm" else 1
        self.bridge = nn.ModuleList(nn.Linear(2 * H, H) for _ in range(n_state))
        self.decoder = build_recurrent(
            c.cell, E + (H if c.input_feeding else 0), H, num_layers=L, dropout=rnn_dropout
        )
        self.attention = build_attention(c.attention, H, 2 * H)
        self.combine = nn.Linear(H + 2 * H, H, bias=False)
        self.out = nn.Linear(H, c.tgt_vocab_size)
        if c.tie_embeddings:
            self.out.weight = self.tgt_embed.weight
        self.drop = nn.Dropout(c.dropout)

    # ---------------------------------------------------------------- encoder

    def encode(self, src: Tensor, src_len: Tensor) -> tuple[Memory, DecoderState]:
        """src (B, S) ids, src_len (B,) -> the memory and the decoder's initial state."""
        H, picked = self.config.hidden_size, self.bridge_layers
        N = self.config.encoder_layers or self.config.num_layers
        x = self.drop(self.src_embed(src))  # (B, S, E)
        out, state = self.encoder(x, lengths=src_len)  # (B, S, 2H); (2N, B, H) or (h, c)
        parts = state if isinstance(state, tuple) else (state,)
        init = []
        for part, bridge in zip(parts, self.bridge, strict=True):
            B = part.size(1)
            # (2N, B, H) -> (N, 2, B, H): torch orders layer-major, direction-minor.
            both = part.view(N, 2, B, H)
            if picked != list(range(N)):
                both = both[picked]  # (L, 2, B, H): encoder layer k(l) for decoder layer l
            both = torch.cat([both[:, 0], both[:, 1]], dim=-1)  # (L, B, 2H)
            init.append(torch.tanh(bridge(both)))  # (L, B, H)
        rnn_state = tuple(init) if len(init) > 1 else init[0]
        mask = (
            torch.arange(src.size(1), device=src.device)[None, :] < src_len.to(src.device)[:, None]
        )  # (B, S)
        memory = Memory(out, self.attention.keys(out), mask)
        return memory, DecoderState(rnn_state, out.new_zeros(src.size(0), H))

    # ---------------------------------------------------------------- decoder

    def _advance(
        self, y_prev: Tensor, state: DecoderState, memory: Memory
    ) -> tuple[DecoderState, Tensor]:
        """The step up to h~_t: y_prev (B,) -> (new state with feed = h~_t (B, H), attention)."""
        e = self.drop(self.tgt_embed(y_prev))  # (B, E)
        u = torch.cat([e, state.feed], dim=-1) if self.config.input_feeding else e  # (B, E+H)
        h, rnn_state = self.decoder.step(u, state.rnn)  # (B, H)
        context, weights = self.attention(h, memory.out, memory.mask, keys=memory.keys)
        feed = torch.tanh(self.combine(torch.cat([h, context], dim=-1)))  # (B, H)
        return DecoderState(rnn_state, feed), weights

    def step(
        self, y_prev: Tensor, state: DecoderState, memory: Memory
    ) -> tuple[Tensor, DecoderState, Tensor]:
        """One decoder step: y_prev (B,) ids -> (logits (B, V), new state, attention (B, S))."""
        state, weights = self._advance(y_prev, state, memory)
        return self.out(self.drop(state.feed)), state, weights  # logits (B, V)

    def forward(
        self, src: Tensor, src_len: Tensor, tgt_in: Tensor, *, sampling_ratio: float = 0.0
    ) -> Seq2SeqOutput:
        """Teacher-forced decoding of ``tgt_in`` (B, T) = BOS y_1 ... (padded with 0).

        The same computation as calling :meth:`step` T times, except that the
        output layer runs once on all T attentional vectors (one large matrix
        product instead of T small ones).

        ``sampling_ratio`` > 0 (training only): each row, at each step after the
        first, feeds the model's own previous argmax (of the logits without
        dropout) instead of the reference with that probability (scheduled
        sampling).
        """
        memory, state = self.encode(src, src_len)
        feeds, attn = [], []
        y = tgt_in[:, 0]
        for t in range(tgt_in.size(1)):
            if t > 0:
                y = tgt_in[:, t]
                if sampling_ratio > 0 and self.training:
                    with torch.no_grad():
                        own = self.out(feeds[-1]).argmax(-1)  # (B,)
                    coin = torch.rand(y.shape, device=y.device) < sampling_ratio
                    y = torch.where(coin & (y != PAD_ID), own, y)
            state, w = self._advance(y, state, memory)
            feeds.append(state.feed)
            attn.append(w)
        logits = self.out(self.drop(torch.stack(feeds, dim=1)))  # (B, T, H) -> (B, T, V)
        return Seq2SeqOutput(logits, torch.stack(attn, dim=1))

    @staticmethod
    def reorder(state: DecoderState, index: Tensor) -> DecoderState:
        """Pick batch rows ``index`` (beam search: the surviving hypotheses' parents)."""
        rnn = state.rnn
        if isinstance(rnn, tuple):
            rnn = tuple(t.index_select(1, index) for t in rnn)  # (L, B', H) each
        else:
            rnn = rnn.index_select(1, index)
        return DecoderState(rnn, state.feed.index_select(0, index))

    @staticmethod
    def repeat_memory(memory: Memory, k: int) -> Memory:
        """Each source row repeated ``k`` times in a row (B*k rows: b0 b0 .. b1 b1 ..)."""
        return Memory(*(t.repeat_interleave(k, dim=0) for t in memory))

    def loss(
        self,
        src: Tensor,
        src_len: Tensor,
        tgt_in: Tensor,
        tgt_out: Tensor,
        *,
        label_smoothing: float = 0.0,
        sampling_ratio: float = 0.0,
    ) -> Tensor:
        """Mean token cross-entropy over non-padding targets (with label smoothing)."""
        out = self(src, src_len, tgt_in, sampling_ratio=sampling_ratio)
        return F.cross_entropy(
            out.logits.flatten(0, 1),  # (B*T, V)
            tgt_out.flatten(),  # (B*T,)
            ignore_index=PAD_ID,
            label_smoothing=label_smoothing,
        )
