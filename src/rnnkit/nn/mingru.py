"""minGRU and minLSTM (Feng et al., 2024, "Were RNNs All We Needed?", arXiv 2410.01201).

Both drop the hidden state from the gates, so each layer is the linear
recurrence ``h_t = a_t * h_{t-1} + b_t`` whose ``a_t`` and ``b_t`` depend on
``x_t`` alone:

    minGRU (paper, sec. 3.1):   z_t  = sigmoid(k_t),           h~_t = g(x_t W_h^T + b_h)
                                h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t
    minLSTM (paper, sec. 3.2):  f_t  = sigmoid(k^f_t),  i_t = sigmoid(k^i_t)
                                f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t)
                                h_t  = f'_t * h_{t-1} + i'_t * h~_t

with ``g(x) = x + 0.5`` for ``x >= 0`` and ``sigmoid(x)`` otherwise, which
keeps ``h~ > 0`` so the recurrence can be computed in log space (paper,
appendix B, "log-space" versions). Training runs all T steps at once with
``rnnkit.nn.scan.parallel_scan_log`` (Heinsen 2023); ``step()`` runs one step
in O(1) with the plain equations and the same weights; ``parallel=False``
runs the naive sequential twin (plain equations, ``sequential_scan``).

One fused projection per layer produces every gate and the candidate for all
steps: ``weight_ih_l{k}`` is (2H, D) for minGRU, rows ``[k; h~]``, and (3H, D)
for minLSTM, rows ``[k^f; k^i; h~]``; ``bias_ih_l{k}`` likewise.

Shape letters: B batch, T time, D input features, H hidden features, L layers.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.nn.cells import (
    check_dropout,
    check_input,
    check_lengths,
    check_size,
    check_state_shape,
)
from rnnkit.nn.scan import parallel_scan_log, sequential_scan

__all__ = ["MinGRU", "MinLSTM", "g", "log_g"]

# log b_t past a sequence's length: exp(-1e4) is 0 in float32 and float64, and
# unlike -inf it keeps logcumsumexp's backward free of inf - inf = NaN.
_LOG_ZERO = -1.0e4


def g(x: Tensor) -> Tensor:
    """The paper's activation for h~: ``x + 0.5`` if ``x >= 0`` else ``sigmoid(x)`` (> 0)."""
    return torch.where(x >= 0, F.relu(x) + 0.5, torch.sigmoid(x))


def log_g(x: Tensor) -> Tensor:
    """``log g(x)`` computed stably: ``log(x + 0.5)`` or ``-softplus(-x)`` (= log sigmoid x).

    Both branches are finite for every x (``relu`` keeps the log's argument
    >= 0.5), so ``torch.where`` has no NaN gradient to leak.
    """
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


class _MinRNN(nn.Module):
    """What MinGRU and MinLSTM share: parameters, checks, layers, lengths, ``step``."""

    parts: ClassVar[int]  # rows of the fused projection, in units of H
    _kind: ClassVar[str]

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        dropout: float = 0.0,
        batch_first: bool = True,
        *,
        parallel: bool = True,
        chunk_size: int | None = 256,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.input_size = check_size("input_size", input_size)
        self.hidden_size = check_size("hidden_size", hidden_size)
        self.num_layers = check_size("num_layers", num_layers)
        check_dropout(dropout, num_layers)
        for name, flag in (("bias", bias), ("batch_first", batch_first), ("parallel", parallel)):
            if not isinstance(flag, bool):
                raise ValueError(f"{name} must be True or False, got {flag!r}")
        if chunk_size is not None:
            check_size("chunk_size", chunk_size)
        self.bias = bias
        self.dropout = float(dropout)
        self.batch_first = batch_first
        self.parallel = parallel
        self.chunk_size = chunk_size
        kw = {"device": device, "dtype": dtype}
        G = self.parts * hidden_size
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else hidden_size
            w = nn.Parameter(torch.empty(G, layer_in, **kw))  # (G, D) rows as in the module doc
            self.register_parameter(f"weight_ih_l{layer}", w)
            b = nn.Parameter(torch.empty(G, **kw)) if bias else None
            self.register_parameter(f"bias_ih_l{layer}", b)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) per layer: torch.nn.Linear's default range,
        the paper's layers being plain nn.Linear."""
        for layer in range(self.num_layers):
            w, b = self.layer_params(layer)
            bound = 1.0 / math.sqrt(w.size(1))
            nn.init.uniform_(w, -bound, bound)
            if b is not None:
                nn.init.uniform_(b, -bound, bound)

    def layer_params(self, layer: int) -> tuple[Tensor, Tensor | None]:
        """``(weight_ih, bias_ih)`` of one layer: (G, D or H) and (G,) or None."""
        return getattr(self, f"weight_ih_l{layer}"), getattr(self, f"bias_ih_l{layer}")

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        defaults = {
            "num_layers": 1,
            "bias": True,
            "dropout": 0.0,
            "batch_first": True,
            "parallel": True,
            "chunk_size": 256,
        }
        for name, default in defaults.items():
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)!r}"
        return s

    def explain_fast_path(self) -> str:
        """Say in words which path ``forward()`` takes and why."""
        name = type(self).__name__
        if not self.parallel:
            return (
                f"{name}.forward() takes the sequential path: parallel=False was passed "
                f"(or set). It computes all gates with one matrix product per layer, then "
                f"runs h_t = a_t * h_(t-1) + b_t once per time step (sequential_scan), the "
                f"naive twin of the parallel scan. step() always runs one step directly."
            )
        chunks = (
            "the whole sequence at once"
            if self.chunk_size is None
            else f"chunks of {self.chunk_size} steps, the state carried between chunks"
        )
        return (
            f"{name}.forward() takes the parallel path: all gates come from one matrix "
            f"product per layer, and the recurrence is computed in log space with "
            f"cumsum + logcumsumexp (Heinsen 2023) over {chunks}. step() always runs one "
            f"step directly with the plain equations and the same weights."
        )

    # ------------------------------------------------ the two sets of equations

    def log_coefficients(self, proj: Tensor) -> tuple[Tensor, Tensor]:
        """``(log a_t, log b_t)`` from the projection (..., G), the log-space equations."""
        raise NotImplementedError

    def coefficients(self, proj: Tensor) -> tuple[Tensor, Tensor]:
        """``(a_t, b_t)`` from the projection (..., G), the paper's plain equations."""
        raise NotImplementedError

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        x: Tensor,
        state: Tensor | None = None,
        lengths: Tensor | list[int] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Run the sequence; return ``(output, final_state)``.

        Args:
            x: (B, T, D), or (T, B, D) with ``batch_first=False``, or unbatched (T, D).
            state: initial state (L, B, H) (unbatched: (L, H)), any sign; zeros when None.
            lengths: (B,) integers in [1, T], on the CPU or x's device. Steps at and
                past a sequence's length are padding: there ``a_t = 1`` and ``b_t = 0``
                (``log a = 0``, ``log b = -1e4``), so the state stays frozen; outputs
                there are zero and the final state is each sequence's own last state.

        Returns:
            output: (B, T, H) (or as x's layout), the last layer's h at every step.
            state: (L, B, H), the final state of every layer.
        """
        check_input("input", x, (2, 3), self.input_size, self.weight_ih_l0)
        batched = x.dim() == 3
        if not batched:
            if lengths is not None:
                raise ValueError(
                    "lengths needs a batched input (B, T, D); an unbatched "
                    "input (T, D) is one sequence: slice it to its length"
                )
            x = x.unsqueeze(0)  # (1, T, D)
        elif not self.batch_first:
            x = x.transpose(0, 1)  # (T, B, D) -> (B, T, D)
        B, T = x.shape[:2]
        if T == 0:
            raise ValueError(f"input has no time steps (shape {tuple(x.shape)})")
        h0 = self._check_state(state, B, batched, x)  # (L, B, H)
        valid = None
        if lengths is not None:
            lengths = check_lengths(lengths, B, T, x.device)
            if not bool((lengths == T).all()):
                valid = (torch.arange(T, device=x.device) < lengths[:, None]).unsqueeze(-1)
                # valid: (B, T, 1), True at real steps

        finals = []
        layer_in = x
        for layer in range(self.num_layers):
            w, b = self.layer_params(layer)
            proj = F.linear(layer_in, w, b)  # (B, T, G): every gate for every step at once
            h_init = None if h0 is None else h0[layer]  # (B, H)
            if self.parallel:
                log_a, log_b = self.log_coefficients(proj)  # (B, T, H) each
                if valid is not None:  # freeze the state past each length
                    log_a = log_a.masked_fill(~valid, 0.0)
                    log_b = log_b.masked_fill(~valid, _LOG_ZERO)
                h = parallel_scan_log(log_a, log_b, h_init, self.chunk_size)
            else:
                a, b_t = self.coefficients(proj)
                if valid is not None:
                    a = a.masked_fill(~valid, 1.0)
                    b_t = b_t.masked_fill(~valid, 0.0)
                h = sequential_scan(a, b_t, h_init)
            finals.append(h[:, -1])  # (B, H): frozen at each sequence's last real step
            if valid is not None:
                h = h.masked_fill(~valid, 0.0)  # zero outputs past the lengths
            layer_in = h
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_in = F.dropout(layer_in, self.dropout, training=True)
        output, final = layer_in, torch.stack(finals)  # (B, T, H), (L, B, H)
        if not batched:
            return output.squeeze(0), final.squeeze(1)
        if not self.batch_first:
            output = output.transpose(0, 1)  # (B, T, H) -> (T, B, H)
        return output, final

    def _check_state(self, state: Tensor | None, B: int, batched: bool, x: Tensor) -> Tensor | None:
        """The initial state as (L, B, H), or None for zeros."""
        if state is None:
            return None
        L, H = self.num_layers, self.hidden_size
        check_state_shape("state", state, (L, B, H) if batched else (L, H))
        if state.dtype != x.dtype:
            raise ValueError(f"state dtype {state.dtype} does not match the input's {x.dtype}")
        return state if batched else state.unsqueeze(1)  # (L, H) -> (L, 1, H)

    # --------------------------------------------------------------------- step

    def step(self, x_t: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One time step for streaming inference: ``(y_t, state)``, O(1) per step.

        ``h_t = a_t * h_{t-1} + b_t`` with the plain equations; running ``step``
        over a sequence gives ``forward``'s outputs and final state.

        Args:
            x_t: (B, D) or unbatched (D,).
            state: (L, B, H) (unbatched (L, H)) as returned by ``forward``/``step``,
                or None for zeros.

        Returns:
            y_t: (B, H), the last layer's new h; state: (L, B, H).
        """
        check_input("x_t", x_t, (1, 2), self.input_size, self.weight_ih_l0)
        batched = x_t.dim() == 2
        x = x_t if batched else x_t.unsqueeze(0)  # (B, D)
        h0 = self._check_state(state, x.size(0), batched, x)
        finals = []
        for layer in range(self.num_layers):
            w, b = self.layer_params(layer)
            a, b_t = self.coefficients(F.linear(x, w, b))  # (B, H) each
            h = b_t if h0 is None else a * h0[layer] + b_t
            finals.append(h)
            x = h
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        final = torch.stack(finals)  # (L, B, H)
        if not batched:
            return x.squeeze(0), final.squeeze(1)
        return x, final


class MinGRU(_MinRNN):
    r"""minGRU (Feng et al. 2024, sec. 3.1): a GRU whose gate ignores the hidden state.

    .. math::
        z_t = \sigma(k_t), \quad \tilde h_t = g(x_t W_h^T + b_h), \quad
        h_t = (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t,

    with ``[k_t; h~_t pre-activation] = x_t W_{ih}^T + b_{ih}``. In log space
    (paper, appendix B): ``log a_t = -softplus(k_t)`` (= log(1 - z_t)) and
    ``log b_t = log z_t + log g(.)`` with ``log z_t = k_t - softplus(k_t)``.

    Args:
        input_size, hidden_size, num_layers, bias, dropout, batch_first: as torch.nn.GRU.
        parallel: True for the log-space parallel scan, False for the sequential twin.
        chunk_size: steps per parallel chunk (see ``parallel_scan_log``), or None.

    Parameters: ``weight_ih_l{k}`` (2H, D or H), ``bias_ih_l{k}`` (2H,).
    """

    parts = 2
    _kind = "MinGRU"

    def log_coefficients(self, proj: Tensor) -> tuple[Tensor, Tensor]:
        k, pre = proj.chunk(2, dim=-1)  # (..., H) each: gate logits, candidate
        log_a = -F.softplus(k)  # log(1 - sigmoid(k))
        # log sigmoid(k) = k + log(1 - sigmoid(k)): reuses the softplus above.
        return log_a, k + log_a + log_g(pre)

    def coefficients(self, proj: Tensor) -> tuple[Tensor, Tensor]:
        k, pre = proj.chunk(2, dim=-1)  # (..., H) each
        z = torch.sigmoid(k)
        return 1 - z, z * g(pre)


class MinLSTM(_MinRNN):
    r"""minLSTM (Feng et al. 2024, sec. 3.2): normalised forget and input gates, no output gate.

    .. math::
        f_t = \sigma(k^f_t), \; i_t = \sigma(k^i_t), \;
        f'_t = \frac{f_t}{f_t + i_t}, \; i'_t = \frac{i_t}{f_t + i_t}, \;
        h_t = f'_t \odot h_{t-1} + i'_t \odot g(\cdot).

    In log space (paper, appendix B): with ``d = softplus(-k^f) - softplus(-k^i)``
    (= log(i/f)), ``log f' = -softplus(d)`` and ``log i' = -softplus(-d)``.

    Args: as ``MinGRU``. Parameters: ``weight_ih_l{k}`` (3H, D or H), rows
    ``[k^f; k^i; h~]``, and ``bias_ih_l{k}`` (3H,).
    """

    parts = 3
    _kind = "MinLSTM"

    def log_coefficients(self, proj: Tensor) -> tuple[Tensor, Tensor]:
        kf, ki, pre = proj.chunk(3, dim=-1)  # (..., H) each
        d = F.softplus(-kf) - F.softplus(-ki)  # log i - log f
        return -F.softplus(d), -F.softplus(-d) + log_g(pre)

    def coefficients(self, proj: Tensor) -> tuple[Tensor, Tensor]:
        kf, ki, pre = proj.chunk(3, dim=-1)  # (..., H) each
        # f / (f + i) = sigmoid(log f - log i): the same number, but when both gates
        # underflow to 0 (logits below ~-100) the quotient would be 0 / 0 = NaN.
        d = F.logsigmoid(kf) - F.logsigmoid(ki)
        return torch.sigmoid(d), torch.sigmoid(-d) * g(pre)
