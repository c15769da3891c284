"""The linear recurrence ``h_t = a_t * h_{t-1} + b_t``: a log-space parallel scan and its twin.

minGRU and minLSTM (Feng et al., 2024, "Were RNNs All We Needed?", arXiv 2410.01201)
have gates that depend only on the input, so their whole recurrence is the
first-order linear recurrence

    h_t = a_t * h_{t-1} + b_t,        t = 1..T,   a_t in (0, 1),  b_t > 0,

which unrolls to a sum that needs no loop (Heinsen 2023, "Efficient
Parallelization of a Ubiquitous Sequential Computation", arXiv 2311.06281,
eq. 1-2):

    A_t = sum_{s<=t} log a_s                                 (cumulative sum)
    h_t = exp(A_t) * h_0 + sum_{s<=t} exp(A_t - A_s) * b_s
        = exp(A_t) * h_0 + exp(A_t + logcumsumexp_{s<=t}(log b_s - A_s)).

``cumsum`` and ``logcumsumexp`` are prefix scans: O(log T) depth on parallel
hardware and one vectorised pass on a CPU, instead of T dependent steps.

``parallel_scan_log`` computes this, with a hand-written backward that is
itself a log-space scan run backwards in time (see ``_LogScan``);
``sequential_scan`` is its naive twin, the textbook loop, used as the oracle
in tests and as the ``parallel=False`` path of the modules.

Cost on a CPU: a prefix scan buys depth, not work. It does ~30 elementwise
passes over (B, T, H) (torch's CPU ``logcumsumexp`` is a scalar loop with a
``log1p(exp(.))`` per element), where the sequential loop does a few tiny
operations per step. On 2 cores the loop is faster once B*H is in the
thousands; see docs/benchmarks/scan.md for the measured numbers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["parallel_scan_log", "sequential_scan"]


def _check(log_a: Tensor, log_b: Tensor, h0: Tensor | None) -> None:
    if log_a.dim() != 3 or log_a.shape != log_b.shape:
        raise ValueError(
            "a and b must both have shape (B, T, H) and match, got "
            f"{tuple(log_a.shape)} and {tuple(log_b.shape)}"
        )
    if h0 is not None and h0.shape != (log_a.shape[0], log_a.shape[2]):
        raise ValueError(
            f"h0 must have shape (B, H) = {(log_a.shape[0], log_a.shape[2])}, got {tuple(h0.shape)}"
        )


def parallel_scan_log(
    log_a: Tensor, log_b: Tensor, h0: Tensor | None = None, chunk_size: int | None = 256
) -> Tensor:
    """All states of ``h_t = a_t * h_{t-1} + b_t``, given ``log a_t`` and ``log b_t``.

    Heinsen (2023), eq. 2, written for a batch of channels:

        A_t = cumsum_t(log a),   h_t = exp(A_t) * h_0 + exp(A_t + logcumsumexp_t(log b - A)).

    The initial state enters as an extra step 0 in front of the sequence
    (``a_0 = 1``, ``b_0 = h_0``, so ``A_0 = 0``). Its term in the sum,
    ``exp(A_t - A_0) * h_0``, is kept in linear space rather than passed
    through ``log h_0``: that is the same sum, but ``h_0`` may be zero or
    negative (a zero state is the usual default, and ``log 0`` would make the
    gradient NaN). Public implementations that instead apply the first
    coefficient twice, or drop it, disagree with the sequential loop as soon
    as an ``h_0`` is given; the tests compare both paths with and without one.

    Long sequences: ``A_t`` grows like ``t * mean(log a)``, and float32 keeps
    only ~7 digits of it, so ``A_t + (log b_s - A_s)`` loses precision when
    ``|A_t|`` is large (at ``|A_t| = 1e4`` the relative error of ``h`` is
    ~1e-3). The sequence is therefore cut into chunks of ``chunk_size``
    steps, and ``A`` restarts at 0 in each, so ``|A|`` stays bounded by the
    chunk length; the state is carried between chunks in linear space. The
    depth is ``O(T / chunk_size + log chunk_size)``. ``chunk_size=None``
    scans the whole sequence at once. Two ways to run the chunks, the same
    sum (the tests check both against the sequential loop):

    - on a GPU, all chunks in one call on a (B * N, C, H) view from a zero
      state, then the state entering chunk ``k`` from the chunk ends by the
      same recurrence over the N chunks, ``s_k = P_(k-1) s_(k-1) + e_(k-1)``
      (``P`` a chunk's whole decay, ``e`` its last zero-start state; N small
      steps of ``sequential_scan``), and ``h_t = local_t + exp(A_t) s_k``: the
      kernel count does not grow with T (an H100 at B=8, T=4096: 7.2 ms
      against 16.0 ms for the loop below);
    - on a CPU, one chunk after another, each starting from the last state
      of the one before: the same work in cache-sized pieces, and measured
      1.4x faster with half the memory of the batched form at T=1024-4096.

    Args:
        log_a: (B, T, H) logs of the decay coefficients ``a_t`` (``<= 0`` for
            a contraction; any finite value works).
        log_b: (B, T, H) logs of the inputs ``b_t > 0``; ``-inf`` is not
            allowed, use a very negative finite value for ``b_t = 0``.
        h0: optional (B, H) initial state, any sign; zeros if None.
        chunk_size: steps per parallel chunk, or None for a single chunk.

    Returns:
        (B, T, H) the states ``h_1 .. h_T``.
    """
    _check(log_a, log_b, h0)
    T = log_a.shape[1]
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1 or None, got {chunk_size}")
    if chunk_size is None or chunk_size >= T:
        return _scan_chunk(log_a, log_b, h0)
    if log_a.device.type == "cpu":
        return _scan_chunks_in_turn(log_a, log_b, h0, chunk_size)
    return _scan_chunks_at_once(log_a, log_b, h0, chunk_size)


def _scan_chunks_in_turn(log_a: Tensor, log_b: Tensor, h0: Tensor | None, C: int) -> Tensor:
    """Chunks of C steps one after another, the state carried from each to the next."""
    outputs = []
    h = h0
    # (B, C, H) views along time; split keeps them views, no copies.
    for la, lb in zip(log_a.split(C, 1), log_b.split(C, 1), strict=True):
        hs = _scan_chunk(la, lb, h)
        outputs.append(hs)
        h = hs[:, -1]  # (B, H) carried into the next chunk
    return torch.cat(outputs, dim=1)  # (B, T, H)


def _scan_chunks_at_once(log_a: Tensor, log_b: Tensor, h0: Tensor | None, C: int) -> Tensor:
    """All chunks of C steps in one call, then the states entering them (see above)."""
    B, T, H = log_a.shape
    N = -(-T // C)  # chunks, the last one padded
    pad = N * C - T
    if pad:  # padding goes after the last step: nothing before it depends on it
        log_a = F.pad(log_a, (0, 0, 0, pad))
        log_b = F.pad(log_b, (0, 0, 0, pad))
    la = log_a.reshape(B * N, C, H)  # (B*N, C, H): chunk n of row b is row b*N + n
    # Every chunk from a zero start; A (restarted per chunk) comes back too.
    local, a_star = _LogScan.apply(la, log_b.reshape(B * N, C, H), None, True)
    decay = _exp(a_star)  # (B*N, C, H): exp(A_t)
    ends = local[:, -1].reshape(B, N, H)  # e_k
    whole = decay[:, -1].reshape(B, N, H)  # P_k
    # s_1..s_N: the state after each chunk; s_k enters chunk k (s_0 = h_0).
    after = sequential_scan(whole, ends, h0)  # (B, N, H), N = T / C small steps
    first = torch.zeros_like(after[:, :1]) if h0 is None else h0.unsqueeze(1)
    starts = torch.cat([first, after[:, :-1]], dim=1).reshape(B * N, 1, H)
    h = (local + decay * starts).reshape(B, N * C, H)
    return h[:, :T] if pad else h


def _scan_chunk(log_a: Tensor, log_b: Tensor, h0: Tensor | None) -> Tensor:
    """One parallel scan over all steps of ``log_a``/``log_b``, with its own backward."""
    if h0 is None:
        return _LogScan.apply(log_a, log_b)
    return _LogScan.apply(log_a, log_b, h0)


def _exp(x: Tensor) -> Tensor:
    """``exp(x)``, with results below the smallest normal number raised to it.

    torch's vectorised CPU exp takes a slow path (measured 15-50x slower here)
    for inputs whose result underflows (x below about -87 in float32), and
    decaying gates produce many of them. Raising those results from ~1e-40 or
    0 to ~1e-38 (float32; ~1e-307 in float64) changes nothing of consequence.
    """
    return torch.exp(x.clamp(min=math.log(torch.finfo(x.dtype).tiny) + 1.0))


def _log_scan(log_a: Tensor, log_b: Tensor) -> tuple[Tensor, Tensor]:
    """Heinsen (2023), eq. 2 from a zero state: ``(h, A)``, all (B, T, H)."""
    a_star = torch.cumsum(log_a, dim=1)  # (B, T, H): A_t = sum_{s<=t} log a_s
    # logcumsumexp subtracts the running maximum, so large |log b - A| cannot overflow;
    # log b = -inf (b = 0) is allowed here and gives (nearly) 0.
    return _exp(a_star + torch.logcumsumexp(log_b - a_star, dim=1)), a_star


class _LogScan(torch.autograd.Function):
    """The log-space scan with a hand-written backward.

    Forward: ``h_t = exp(A_t) h_0 + exp(A_t + logcumsumexp_{s<=t}(log b_s - A_s))``.

    Backward: the gradient reaching ``h_t`` from every later step is itself a
    linear recurrence run backwards in time,

        g_t = dL/dh_t (direct) + a_{t+1} * g_{t+1},        g_T = dL/dh_T,

    and then, with ``a_t h_{t-1} = h_t - b_t``,

        dL/dlog b_t = g_t * b_t,    dL/dlog a_t = g_t * a_t * h_{t-1},    dL/dh_0 = a_1 * g_1.

    ``g`` is computed with the same log-space scan on the time-reversed
    sequence; it has both signs, so its positive and negative parts are
    scanned separately (one call, stacked on the batch axis). Autograd through
    the forward instead differentiates ``A_t + logcumsumexp(log b - A)`` term by
    term: two large terms that nearly cancel, summed over T (in float32 about
    twice the error in the gradient of ``log a``, measured at T=300), and it
    keeps every intermediate alive (more memory).

    With ``return_a_star=True`` it also returns ``A`` (the cumulative sum of
    ``log a``), differentiable, for the chunked scan to reuse.
    """

    @staticmethod
    def forward(
        ctx, log_a: Tensor, log_b: Tensor, h0: Tensor | None = None, return_a_star: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        h, a_star = _log_scan(log_a, log_b)
        if h0 is not None:
            # Step 0 of the prepended sequence: its contribution to h_t is exp(A_t) * h_0.
            h = h + _exp(a_star) * h0.unsqueeze(1)  # h0: (B, H) -> (B, 1, H)
        ctx.save_for_backward(log_a, log_b, h, h0)
        return (h, a_star) if return_a_star else h

    @staticmethod
    def backward(
        ctx, grad_h: Tensor, grad_a_star: Tensor | None = None
    ) -> tuple[Tensor | None, ...]:
        log_a, log_b, h, h0 = ctx.saved_tensors
        B = log_a.shape[0]
        # Reversed time: g_u = c_u * g_{u-1} + grad_u with c = a shifted one step later;
        # the last step has no successor (its coefficient multiplies g_{T+1} = 0).
        log_c = torch.cat([log_a[:, 1:], torch.zeros_like(log_a[:, :1])], dim=1)  # (B, T, H)
        log_c = log_c.flip(1).repeat(2, 1, 1)  # (2B, T, H): reversed, for both signs
        # log|grad| without taking log 0 (another slow path); zeros and the other
        # sign's entries become -inf, i.e. no input at that step.
        log_abs = torch.log(torch.where(grad_h != 0, grad_h.abs(), 1.0))  # (B, T, H)
        parts = torch.cat(
            [
                log_abs.masked_fill(grad_h <= 0, -math.inf),
                log_abs.masked_fill(grad_h >= 0, -math.inf),
            ],
            dim=0,
        )  # (2B, T, H)
        g2, _ = _log_scan(log_c, parts.flip(1))
        g = (g2[:B] - g2[B:]).flip(1)  # (B, T, H): positive part - negative part, time order
        first = torch.zeros_like(h[:, :1]) if h0 is None else h0.unsqueeze(1)  # (B, 1, H)
        h_prev = torch.cat([first, h[:, :-1]], dim=1)  # (B, T, H): h_{t-1}
        a = _exp(log_a)
        grad_log_a = g * a * h_prev
        grad_log_b = g * _exp(log_b)
        grad_h0 = None if h0 is None else g[:, 0] * a[:, 0]
        if grad_a_star is not None:  # A_t = sum_{s<=t} log a_s: a reversed cumulative sum
            grad_log_a = grad_log_a + grad_a_star.flip(1).cumsum(1).flip(1)
        return grad_log_a, grad_log_b, grad_h0, None


def sequential_scan(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """The naive twin: ``h_t = a_t * h_{t-1} + b_t`` one step at a time.

    Args:
        a: (B, T, H) coefficients (linear space, any sign).
        b: (B, T, H) inputs (linear space, any sign).
        h0: optional (B, H) initial state; zeros if None.

    Returns:
        (B, T, H) the states ``h_1 .. h_T``.
    """
    _check(a, b, h0)
    h = torch.zeros_like(a[:, 0]) if h0 is None else h0  # (B, H)
    states = []
    # unbind gives T views once; indexing a[:, t] in the loop would make each
    # step's backward touch the whole tensor (its backward then grows with T^2).
    for a_t, b_t in zip(a.unbind(1), b.unbind(1), strict=True):
        h = a_t * h + b_t
        states.append(h)
    return torch.stack(states, dim=1)  # (B, T, H)
