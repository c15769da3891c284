"""Where and how fast rnnkit computes: the device check, the thread policy, the allocator.

Shared by every estimator, the training loop and the experiments, so ``--device``
and ``--threads`` mean the same everywhere. rnnkit's work on the CPU runs inside
:func:`use_threads`, which sets torch's thread count for the block and, once per
process, tunes glibc's allocator (:func:`tune_allocator`).

Thread policy (``threads=None``, the default of every estimator and command, or
``threads="auto"``): just before the work starts, measure how many cores other
processes keep busy, then

- on a quiet machine keep torch's own thread count (its default, or what
  ``torch.set_num_threads`` set before);
- where other work keeps cores busy, use only the cores left free, rounded to the
  nearest whole core and at least one: on a 2-core machine, one thread as soon as
  more than half a core is taken by others.

Why: torch's threads wait for each other at the end of every parallel region, so
one thread that shares its core with another process slows them all. Measured on
the project's 2-core machine with both cores busy, two threads ran several times
slower per step than one (a translation training fell from ~2,300 to 300-900
target tokens/s); on a quiet machine one thread costs at most what the second core
would have added. ``benchmarks/threads_policy.py`` times the policy against one
thread and torch's default, quiet and under a background load.

The measurement: on Linux, the busy time of this process's CPUs (``/proc/stat``)
minus this process's own CPU time, in cores, over 0.1 s of waiting the first time
and afterwards over the time since the previous reading (up to two minutes; so a
stream of ``predict`` calls never pauses); elsewhere the 1-minute load average.
A decision is reused for 30 s. When
``OMP_NUM_THREADS`` is set, the user has chosen: ``None`` leaves torch's count as
it is. An integer is used as given.

Allocator: glibc's ``malloc`` returns large freed blocks to the operating system
and faults them in again on the next step (18k-45k page faults per nn.LSTM
forward + backward on the project's machine). Raising its thresholds made nn.LSTM
training 1.24x-1.73x faster there. ``RNNKIT_MALLOC_TUNING=0`` in the environment
turns it off (freed memory then goes back to the system sooner).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import torch

from rnnkit.errors import UserError

__all__ = [
    "MALLOC_TUNING_ENV",
    "auto_threads",
    "check_threads",
    "choose_threads",
    "malloc_tuning_enabled",
    "measure_busy_cores",
    "resolve_device",
    "resolve_threads",
    "tune_allocator",
    "use_threads",
]

MALLOC_TUNING_ENV = "RNNKIT_MALLOC_TUNING"
SAMPLE_SECONDS = 0.1  # how long the load is measured before a decision
REUSE_SECONDS = 30.0  # how long a decision is reused


def resolve_device(name: str | torch.device) -> torch.device:
    """``name`` as a ``torch.device``, checked to exist on this machine (one-line error)."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise UserError(f"unknown device {name!r}; use cpu, cuda, cuda:N or mps") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(
                f"device {name!r} is not available: this torch sees no CUDA GPU; use --device cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(
                f"device {name!r} does not exist: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s); use cuda:0 ... or cpu"
            )
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UserError(f"device {name!r} is not available on this machine; use --device cpu")
    elif device.type != "cpu":
        raise UserError(f"unsupported device {name!r}; use cpu, cuda, cuda:N or mps")
    return device


# --------------------------------------------------------------------------
# Threads
# --------------------------------------------------------------------------


def choose_threads(*, cpus: int, busy: float, default: int) -> int:
    """The policy: threads for ``busy`` cores of other work on ``cpus`` usable CPUs.

    ``default`` (torch's count) when the others leave all but half a core of its
    share free; else the free share rounded to the nearest core, at least 1. With
    more CPUs than ``default`` (hyper-threads) the free CPUs count ``default / cpus``
    each.
    """
    cpus = max(cpus, 1)
    free = max(0.0, cpus - busy) * min(1.0, default / cpus)
    if free >= min(default, cpus) - 0.5:
        return default
    return max(1, min(default, math.floor(free + 0.5)))


def _usable_cpus() -> list[int] | None:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return None


def _cpu_ticks(cpus: Sequence[int], text: str) -> tuple[int, int]:
    """(busy, total) clock ticks of ``cpus`` summed, from the text of /proc/stat."""
    busy = total = 0
    wanted = {f"cpu{i}" for i in cpus}
    for line in text.splitlines():
        name, *fields = line.split()
        if name in wanted:
            # user nice system idle iowait irq softirq steal (guest is inside user)
            ticks = [int(f) for f in fields[:8]]
            total += sum(ticks)
            busy += sum(ticks) - ticks[3] - ticks[4]  # not idle, not waiting on I/O
    return busy, total


def busy_cores(
    before: tuple[int, int], after: tuple[int, int], n_cpus: int, own_cores: float
) -> float:
    """Cores kept busy by others between two /proc/stat readings, less our own use."""
    d_busy, d_total = after[0] - before[0], after[1] - before[1]
    if d_total <= 0:
        return 0.0
    return max(0.0, d_busy / d_total * n_cpus - own_cores)


class _Reading(NamedTuple):
    wall: float  # time.perf_counter()
    ticks: tuple[int, int]  # (busy, total) of our CPUs, /proc/stat
    own: float  # this process's CPU seconds, all threads
    n_cpus: int


def _read() -> _Reading | None:
    cpus = _usable_cpus()
    if cpus is None:
        return None
    try:
        with open("/proc/stat") as f:
            ticks = _cpu_ticks(cpus, f.read())
    except (OSError, ValueError, IndexError):
        return None
    return _Reading(time.perf_counter(), ticks, time.process_time(), len(cpus))


def _between(a: _Reading, b: _Reading) -> float:
    own = (b.own - a.own) / max(b.wall - a.wall, 1e-9)  # our own cores' worth
    return busy_cores(a.ticks, b.ticks, b.n_cpus, own)


_last: _Reading | None = None  # the latest reading, the start of the next window


def measure_busy_cores(seconds: float = SAMPLE_SECONDS) -> float | None:
    """Cores that other processes keep busy now (see the module docstring); None: unknown.

    Over the window since the previous reading when that began 0.1-120 s ago (no
    waiting: a stream of calls never pauses), else over ``seconds`` of waiting.
    """
    global _last
    now = _read()
    if now is None:
        try:
            return os.getloadavg()[0]
        except (AttributeError, OSError):  # Windows
            return None
    previous, _last = _last, now
    if previous is not None and seconds <= now.wall - previous.wall <= 120.0:
        return _between(previous, now)
    time.sleep(seconds)
    _last = _read() or now
    return _between(now, _last)


_decision_lock = threading.Lock()
_decision: tuple[float, int, int] | None = None  # (time, default, choice)


def auto_threads(
    *, busy: float | None = None, cpus: int | None = None, default: int | None = None
) -> int:
    """The thread count the policy picks now (``busy``, ``cpus``, ``default`` injectable).

    ``busy``: cores kept busy by others (measured over 0.1 s when None; that
    decision is reused for 30 s); ``cpus``: usable CPUs (this process's affinity);
    ``default``: torch's current thread count.
    """
    global _decision
    default = torch.get_num_threads() if default is None else default
    cpus = cpus or len(_usable_cpus() or []) or os.cpu_count() or 1
    if busy is not None:
        return choose_threads(cpus=cpus, busy=busy, default=default)
    with _decision_lock:
        now = time.monotonic()
        # Reused for the same default, or inside a block that set our choice (nested).
        if (
            _decision is not None
            and now - _decision[0] < REUSE_SECONDS
            and default in (_decision[1], _decision[2])
        ):
            return _decision[2]
        measured = measure_busy_cores()
        choice = (
            default
            if measured is None
            else choose_threads(cpus=cpus, busy=measured, default=default)
        )
        _decision = (now, default, choice)
        return choice


def resolve_threads(threads: int | str | None) -> int | None:
    """The torch thread count ``threads`` means now; None: leave torch's count as it is.

    An int is itself; ``"auto"`` is the policy; ``None`` is the policy unless
    ``OMP_NUM_THREADS`` is set (then the user has chosen). Bad values raise UserError.
    """
    if threads is None or threads == "auto":
        if threads is None and os.environ.get("OMP_NUM_THREADS"):
            return None
        return auto_threads()
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise UserError(f"threads must be a positive integer, 'auto' or None, got {threads!r}")
    return threads


def check_threads(threads: object) -> None:
    """Raise UserError for a value :func:`resolve_threads` would refuse (measures nothing)."""
    if threads is None or threads == "auto":
        return
    resolve_threads(threads)  # type: ignore[arg-type]


@contextlib.contextmanager
def use_threads(n: int | str | None) -> Iterator[None]:
    """Run with ``n`` torch CPU threads (None or "auto": the policy), then restore the count.

    Also tunes the allocator, once per process (:func:`tune_allocator`).
    """
    count = resolve_threads(n)
    tune_allocator()
    if count is None:
        yield
        return
    previous = torch.get_num_threads()
    if count != previous:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


# --------------------------------------------------------------------------
# Allocator
# --------------------------------------------------------------------------

_allocator_tuned = False


def malloc_tuning_enabled() -> bool:
    """False when ``RNNKIT_MALLOC_TUNING`` is 0, false, no or off."""
    value = os.environ.get(MALLOC_TUNING_ENV, "1").strip().lower()
    return value not in ("0", "false", "no", "off")


def tune_allocator() -> bool:
    """Keep glibc from returning big blocks to the OS after every step; True when in effect.

    Same effect as ``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=2147483647
    MALLOC_TOP_PAD_=268435456``: nn.LSTM training measured 1.24x-1.73x faster on the
    project's 2-core machine. Applied once per process; a no-op off glibc and when
    ``RNNKIT_MALLOC_TUNING=0``.
    """
    global _allocator_tuned
    if _allocator_tuned:
        return True
    if not malloc_tuning_enabled() or not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no glibc mallopt
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3  # <malloc.h>
    ok = mallopt(m_mmap_threshold, 32 * 1024 * 1024)
    ok &= mallopt(m_trim_threshold, 2**31 - 1)
    ok &= mallopt(m_top_pad, 256 * 1024 * 1024)
    _allocator_tuned = bool(ok)
    return _allocator_tuned
