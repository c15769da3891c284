"""Recurrent acoustic model for CTC: conv front end -> (bi)directional RNN stack -> labels.

For log-mel features x (B, T, M)::

    [spec_channels > 0: x = ReLU(Conv2d_3x3(ReLU(Conv2d_3x3(x))))  over (time, mel), stride 2
     on mel each, so (B, T, K * ceil(ceil(M/2)/2)): patterns that may move across mel channels
     (another speaker's formants) meet the same filters]
    z = ReLU(Conv1d_{k=s, stride=s}(x))   (B, T', C)   T' = T // s (time subsampling by s)
    h, state = RNN(z, lengths=T')          (B, T', dirs*H)   rnnkit LSTM / GRU / RNN stack
    log p(label | frame) = log_softmax(W dropout(h) + b)   (B, T', V)   label 0 = CTC blank

The front end's kernel equals its stride (non-overlapping groups of ``s``
frames), so a stream of frames can be processed in groups of ``s`` and gives
the same output as the whole utterance: with ``bidirectional=False``,
:meth:`CTCASR.forward` called chunk by chunk with the returned ``state``
equals one call on the whole input (streaming, O(1) state per chunk).
``conv_channels=0`` drops the front end (and the subsampling).

CTC (Graves et al. 2006) needs T' >= len(target) + repeats; :func:`ctc_loss`
checks it and raises instead of returning an infinite or NaN loss.

The model's config, :class:`~rnnkit.speech.config.CTCASRConfig` (the ``model``
section), sits with the rest of the config tree (imports run config <- model).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.errors import UserError
from rnnkit.nn import build_recurrent
from rnnkit.speech.config import CTCASRConfig

__all__ = ["CTCASR", "CTCOutput", "ctc_loss"]


class CTCOutput(NamedTuple):
    """``log_probs`` (B, T', V), ``lengths`` (B,) valid frames after subsampling, ``state``."""

    log_probs: Tensor
    lengths: Tensor
    state: Any


class CTCASR(nn.Module):
    """See the module docstring."""

    def __init__(self, config: CTCASRConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        c = config
        width = c.input_size
        self.spec: nn.Sequential | None = None
        if c.spec_channels:
            k = c.spec_channels
            self.spec = nn.Sequential(
                nn.Conv2d(1, k, 3, stride=(1, 2), padding=1),
                nn.ReLU(),
                nn.Conv2d(k, k, 3, stride=(1, 2), padding=1),
                nn.ReLU(),
            )
            width = k * (((c.input_size + 1) // 2 + 1) // 2)  # mel: ceil(ceil(M / 2) / 2)
        self.conv: nn.Conv1d | None = None
        if c.conv_channels:
            self.conv = nn.Conv1d(width, c.conv_channels, c.subsample, stride=c.subsample)
            width = c.conv_channels
        self.rnn = build_recurrent(
            c.cell,
            width,
            c.hidden_size,
            num_layers=c.num_layers,
            dropout=c.dropout if c.num_layers > 1 else 0.0,
            bidirectional=c.bidirectional,
        )
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden_size * (2 if c.bidirectional else 1), c.vocab_size)

    @property
    def subsample(self) -> int:
        return self.config.subsample if self.conv is not None else 1

    def frontend(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Features (B, T, M) -> the recurrent stack's input (B, T', C).

        ``lengths`` (B,): frames past each length are zeroed between the 2-D
        convolutions, so a padded utterance sees the zero padding a lone one sees.
        """
        if self.spec is not None:
            B, T, _ = x.shape
            y = x[:, None]  # (B, 1, T, M)
            keep = None
            if lengths is not None:
                t = torch.arange(T, device=x.device)
                keep = (t[None, :] < lengths.to(x.device)[:, None]).to(x.dtype)[:, None, :, None]
            for layer in self.spec:
                y = layer(y)
                if keep is not None and isinstance(layer, nn.ReLU):
                    y = y * keep
            x = y.permute(0, 2, 1, 3).reshape(B, T, -1)  # (B, T, K * M'')
        if self.conv is not None:
            x = F.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)  # (B, C, T) -> (B, T', C)
        return x

    def forward(self, x: Tensor, lengths: Tensor | None = None, state: Any = None) -> CTCOutput:
        """``x`` (B, T, M) features, ``lengths`` (B,) valid frames (None = all T)."""
        B, T, _ = x.shape
        s = self.subsample
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long)
        out_lens = torch.div(lengths.cpu(), s, rounding_mode="floor")  # (B,)
        if T // s == 0 or bool((out_lens == 0).any()):
            raise UserError(
                f"an utterance has fewer than {s} feature frames (model.subsample); the audio "
                "is too short to transcribe - remove it or use a smaller subsample"
            )
        z = self.frontend(x, lengths)
        h, state = self.rnn(z, state, lengths=out_lens)  # (B, T', dirs*H)
        logits = self.head(self.drop(h))  # (B, T', V)
        return CTCOutput(F.log_softmax(logits, dim=-1), out_lens, state)


def ctc_loss(out: CTCOutput, targets: Tensor, target_lens: Tensor) -> Tensor:
    """Mean CTC loss per target label (torch ``reduction='mean'``), with length checks.

    ``targets`` (B, S) labels in 1..V-1 (0 is the blank, used as padding).

    Raises:
        UserError: an utterance has fewer frames than its transcript needs under CTC.
    """
    labels = [targets[b, : int(n)].tolist() for b, n in enumerate(target_lens)]
    need = torch.tensor(
        [len(t) + sum(1 for a, b in zip(t, t[1:], strict=False) if a == b) for t in labels]
    )
    short = (out.lengths < need).nonzero().flatten()
    if len(short):
        b = int(short[0])
        raise UserError(
            f"{len(short)} utterance(s) have fewer frames than their transcript needs under CTC "
            f"(e.g. {int(out.lengths[b])} frames for {int(need[b])} labels incl. repeats); "
            "drop them or use a smaller model.subsample / features.hop_ms"
        )
    if bool((target_lens == 0).any()):
        raise UserError("an utterance has an empty transcript; give every utterance its text")
    return F.ctc_loss(
        out.log_probs.transpose(0, 1),  # (T', B, V) as torch expects
        targets,
        out.lengths,
        target_lens.cpu(),
        blank=0,
        reduction="mean",
        zero_infinity=False,
    )
