"""Stopping a run safely: SIGINT (Ctrl-C) and SIGTERM (``kill``, systemd, SLURM,
container runtimes) end training at the next step boundary, after a checkpoint.

The first signal only sets a flag: the loop finishes the step it is in, writes
``checkpoint/`` and raises :class:`TrainingInterrupted`. A second signal stops
at once (``KeyboardInterrupt``) without writing anything, so the previous
checkpoint stays as it was (checkpoint writes are atomic either way). The
command line exits with 128 + the signal number (130 for SIGINT, 143 for
SIGTERM), the shell convention for "ended by this signal".
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["StopNow", "StopSignals", "TrainingInterrupted"]


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on a signal at a step boundary.

    Attributes:
        signum: the signal (``signal.SIGINT`` or ``signal.SIGTERM``).
        step: the optimizer step the run stopped after.
        checkpoint: the checkpoint written there (``None`` without a run directory).
        exit_status: 128 + ``signum``, what the command line exits with.
    """

    def __init__(self, signum: int, step: int, checkpoint: Path | None) -> None:
        name = signal.Signals(signum).name
        where = (
            f"checkpoint written to {checkpoint}; continue with --resume"
            if checkpoint is not None
            else "nothing was saved (no run directory)"
        )
        super().__init__(f"stopped by {name} after step {step}; {where}")
        self.signum = signum
        self.step = step
        self.checkpoint = checkpoint
        self.exit_status = 128 + signum


class StopNow(KeyboardInterrupt):
    """The second signal: stop at once, write nothing (``exit_status``: 128 + signal)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"{signal.Signals(signum).name} again: stopped at once")
        self.signum = signum
        self.exit_status = 128 + signum


class StopSignals:
    """``with StopSignals() as stop:`` turns SIGINT/SIGTERM into ``stop.signum``.

    Outside the main thread (where Python cannot install handlers) it does
    nothing and Ctrl-C raises ``KeyboardInterrupt`` as usual.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:  # the second signal: stop now
            self._restore()
            raise StopNow(signum)
        self.signum = signum
        print(
            f"\n{signal.Signals(signum).name}: stopping after this step and writing a checkpoint "
            "(send it again to stop at once)",
            file=sys.stderr,
        )

    def _restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()
