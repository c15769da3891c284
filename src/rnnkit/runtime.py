"""Where and how fast rnnkit computes: the device check and torch's thread count.

Shared by every estimator, the training loop's callers and the experiments, so
``--device`` and ``--threads`` mean the same everywhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from rnnkit.errors import UserError

__all__ = ["resolve_device", "use_threads"]


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


@contextlib.contextmanager
def use_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch CPU threads (``None``: leave as is), then restore the count."""
    if n is None:
        yield
        return
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise UserError(f"threads must be a positive integer or None, got {n!r}")
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
