"""Data-parallel training with ``torch.distributed`` (DDP), launched by ``torchrun``.

``torchrun --nproc_per_node N script.py`` starts N processes and sets
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``.
:func:`init_distributed` reads them and joins the process group (``gloo`` on
CPU, ``nccl`` on CUDA); without them it returns a single-process context, so
the same script runs with and without ``torchrun``.

Each rank must see different data (the batching classes in
:mod:`rnnkit.textgen.data` take ``rank`` and ``world_size``). DDP averages
gradients across ranks during ``backward()``; rank 0 alone logs and writes
checkpoints (see :class:`rnnkit.training.Trainer`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistContext", "cleanup_distributed", "init_distributed"]


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size``; ``is_main`` for rank 0."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | torch.device | None = None) -> DistContext:
    """Join the process group described by torchrun's environment variables.

    Returns a single-process :class:`DistContext` when ``WORLD_SIZE`` is unset or 1.
    Calling it again after the group is up returns the same context.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        dev = torch.device(device) if device is not None else torch.device("cpu")
        return DistContext(device=dev)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and (device is None or str(device).startswith("cuda"))
    if use_cuda:
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def cleanup_distributed() -> None:
    """Leave the process group if one is up."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
