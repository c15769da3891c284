"""The run-directory policy of every application, and the lock that keeps one writer.

- :func:`check_run_dir`: a directory that holds a run (``checkpoint/``,
  ``best/``, ``metrics.jsonl``) is continued with ``resume``, replaced with
  ``overwrite`` (rnnkit's files go, the user's stay) and otherwise refused,
  before any data is loaded.
- :func:`run_lock`: ``RUN_DIR/.rnnkit.lock`` (PID, host, start time) while a
  run writes there; a second writer is refused by name, and the lock of a
  process that no longer runs (``kill -9``) is taken over with a message.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from rnnkit.errors import UserError
from rnnkit.training.checkpoint import _owned_names, _pid_alive

__all__ = ["LOCK_FILE", "RUN_FILES", "check_run_dir", "run_lock"]

RUN_FILES = ("checkpoint", "best", "metrics.jsonl")


def check_run_dir(
    run_dir: str | os.PathLike[str] | None, *, resume: bool = False, overwrite: bool = False
) -> None:
    """The run-directory policy of every application, checked before any data is loaded.

    A directory holding a run (``checkpoint/``, ``best/`` or ``metrics.jsonl``) is
    continued with ``resume``, replaced with ``overwrite`` (its ``checkpoint/``,
    ``best/`` and metrics go; the user's own files stay), and otherwise refused.
    """
    if run_dir is None:
        if resume:
            raise UserError("resume needs a run directory; pass --run-dir (Python: run_dir=)")
        return
    d = Path(run_dir)
    if d.exists() and not d.is_dir():
        raise UserError(f"run directory {d} is a file; pass a directory path as --run-dir")
    if resume and overwrite:
        raise UserError("--resume and --overwrite contradict each other; pass one of them")
    _refuse_if_locked(d)
    held = [name for name in RUN_FILES if (d / name).exists()]
    if resume:
        if not (d / "checkpoint").exists() and not (d / "checkpoint.old").exists():
            raise UserError(
                f"{d} holds no checkpoint/ to resume from; drop --resume to start a new run there"
            )
        return
    if not held:
        return
    if not overwrite:
        raise UserError(
            f"run directory {d} already holds a run ({', '.join(held)}); pass --resume to "
            "continue it, --overwrite to replace it (Python: overwrite=True), or another --run-dir"
        )
    for name in ("checkpoint", "best", "checkpoint.old", "best.old"):
        sub = d / name
        if sub.is_dir() and (_owned_names(sub, set()) is not None or not any(sub.iterdir())):
            shutil.rmtree(sub)
    for name in ("metrics.jsonl", "curves.png"):
        (d / name).unlink(missing_ok=True)


LOCK_FILE = ".rnnkit.lock"


def _refuse_if_locked(d: Path) -> None:
    """A one-line error when a live process holds ``d``'s run lock."""
    try:
        other = json.loads((d / LOCK_FILE).read_text(encoding="utf-8"))
        pid, host = int(other["pid"]), str(other["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return  # no lock (or a damaged one: run_lock sorts that out)
    if host == socket.gethostname() and not _pid_alive(pid):
        return
    raise UserError(
        f"run directory {d} is in use by process {pid} on {host} (since "
        f"{other.get('started', '?')}); wait for it or stop it, or pass another --run-dir"
    )


@contextlib.contextmanager
def run_lock(run_dir: str | os.PathLike[str] | None) -> Iterator[None]:
    """Hold ``run_dir/.rnnkit.lock`` (PID, host, start time) while a run writes there.

    A second process is refused with a one-line error naming the holder. A lock
    left by a process that no longer runs on this host (killed with -9) is
    taken over with a message. ``None``: no run directory, nothing to lock.
    """
    if run_dir is None:
        yield
        return
    d = Path(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    lock = d / LOCK_FILE
    me = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                other = json.loads(lock.read_text(encoding="utf-8"))
                pid, host = int(other["pid"]), str(other["host"])
            except (OSError, ValueError, KeyError, TypeError):
                time.sleep(0.2)  # being written right now, or garbage: look again
                other, pid, host = {}, -1, me["host"]
                if lock.exists() and time.time() - lock.stat().st_mtime < 5:
                    continue
            if host == me["host"] and (pid == -1 or not _pid_alive(pid)):
                print(
                    f"{d}: taking over the lock of process {pid} on {host}, which no longer "
                    "runs (it was killed); its last checkpoint is intact",
                    file=sys.stderr,
                )
                lock.unlink(missing_ok=True)
                continue
            raise UserError(
                f"run directory {d} is in use by process {pid} on {host} (since "
                f"{other.get('started', '?')}); wait for it or stop it, or pass another "
                f"--run-dir (if that process is gone, delete {lock})"
            ) from None
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(me, f)
        break
    else:
        raise UserError(f"could not lock {d} ({lock} keeps changing); try again")
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(lock.read_text(encoding="utf-8")).get("pid") == me["pid"]:
                lock.unlink()
