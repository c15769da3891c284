"""Inference off the event loop: a worker thread pool behind a bounded admission count.

The event loop only parses requests and writes answers; every model call runs
on one of ``workers`` threads. At most ``workers + queue_size`` requests are
admitted at a time (running or waiting for a thread; a streaming generation
counts until its stream ends). One more is refused at once with :class:`Busy`,
which the server answers with 503 and ``Retry-After``, instead of letting a
backlog pile up in memory and every client's latency grow without bound.

Torch releases the GIL inside its kernels, so threads overlap real work; the
models are only read (``eval`` mode, no gradients), which is safe to share.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["Busy", "WorkerPool"]

T = TypeVar("T")


class Busy(Exception):
    """Every slot is taken: the server answers 503 with ``Retry-After``."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the server is busy; retry in {retry_after} s")
        self.retry_after = retry_after


class WorkerPool:
    """``workers`` threads; at most ``workers + queue_size`` admitted requests."""

    def __init__(self, workers: int = 2, queue_size: int = 64, *, retry_after: int = 1) -> None:
        if workers < 1 or queue_size < 0:
            raise ValueError(
                f"workers must be >= 1 and queue_size >= 0, got {workers}, {queue_size}"
            )
        self.workers = workers
        self.queue_size = queue_size
        self.retry_after = retry_after
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="rnnkit-serve")
        self._lock = threading.Lock()
        self._admitted = 0
        self.served = 0
        self.rejected = 0

    @property
    def capacity(self) -> int:
        return self.workers + self.queue_size

    @property
    def admitted(self) -> int:
        """Requests holding a slot now (running or waiting)."""
        return self._admitted

    def acquire(self) -> None:
        """Take a slot or raise :class:`Busy` (never waits)."""
        with self._lock:
            if self._admitted >= self.capacity:
                self.rejected += 1
                raise Busy(self.retry_after)
            self._admitted += 1

    def release(self) -> None:
        with self._lock:
            self._admitted -= 1
            self.served += 1

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on a worker thread (no admission: the caller holds a slot)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Admit, run ``fn(*args)`` on a worker thread, return its result.

        The slot is given back when the work ends on its thread, so a client
        that disconnects does not free a slot while its work still runs.
        """
        self.acquire()

        def job() -> T:
            try:
                return fn(*args)
            finally:
                self.release()

        return await self.run(job)

    def stats(self) -> dict[str, int]:
        return {
            "workers": self.workers,
            "queue_size": self.queue_size,
            "admitted": self._admitted,
            "served": self.served,
            "rejected": self.rejected,
        }

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
