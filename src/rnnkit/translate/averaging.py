"""Checkpoint averaging: the mean of the weights at the last K evaluation points of a run.

The parameters of the last few checkpoints of a run, averaged element-wise,
usually translate a little better than any one of them, at no training cost
(Junczys-Dowmunt et al. 2016; Vaswani et al. 2017, sec. 6.1 averaged the last
5 or 20). With ``average_last = K`` the translator keeps the weights at every
evaluation point in :class:`Snapshots` and, at the end of ``fit``, scores their
:func:`average_weights` on the validation data exactly as the training loop
scores an evaluation; the average is kept only when it beats the model that
would be kept otherwise (``best/``).

In a run directory: ``snapshots/`` (the last K evaluation points), ``average/``
(the average, kept or not), and, when the average is kept, ``best/`` holds it
and ``best_single/`` the best single evaluation point (:func:`keep_single_best`).
A resumed run first puts ``best_single/`` back into ``best/``, which is what the
loop's own record of its best metric refers to (:func:`prepare_run_dir`).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from rnnkit.training import load_model_weights, write_checkpoint
from rnnkit.training.checkpoint import MANIFEST

__all__ = ["Snapshots", "average_weights", "keep_single_best", "prepare_run_dir"]


def average_weights(states: Iterable[Mapping[str, Tensor]]) -> dict[str, Tensor]:
    """The element-wise arithmetic mean of state dicts with the same keys and shapes.

    Floating-point tensors are summed in float64 and the mean is cast back to
    their dtype (K identical states give that state exactly); other tensors
    (integer counters) are taken from the last state.
    """
    total: dict[str, Tensor] = {}
    last: Mapping[str, Tensor] = {}
    n = 0
    for state in states:
        if n and set(state) != set(total):
            odd = sorted(set(state) ^ set(total))
            raise ValueError(f"the state dicts to average differ in their keys: {odd[:3]}")
        for name, value in state.items():
            value = value.detach()
            if n == 0:
                is_float = value.is_floating_point()
                total[name] = value.to(torch.float64) if is_float else value
                total[name] = total[name].clone()
            elif value.shape != total[name].shape:
                raise ValueError(
                    f"{name} has shape {tuple(value.shape)} here but {tuple(total[name].shape)} "
                    "in the first state; only states of one model can be averaged"
                )
            elif value.is_floating_point():
                total[name] += value.to(total[name].device, torch.float64)
        last, n = state, n + 1
    if n == 0:
        raise ValueError("no state dicts to average")
    return {
        name: (total[name] / n).to(value.dtype) if value.is_floating_point() else value.clone()
        for name, value in ((k, v.detach()) for k, v in last.items())
    }


class Snapshots:
    """The weights at the last ``keep`` evaluation points, in memory or under ``directory``.

    With a ``directory`` (a run's ``snapshots/``) each is a checkpoint folder
    ``step-0000454`` (written atomically and verified on load, like ``best/``),
    so a resumed run averages the same weights as one never interrupted; without
    one, copies are held in memory.
    """

    def __init__(self, keep: int, directory: str | os.PathLike[str] | None = None) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.keep = keep
        self.directory = Path(directory) if directory is not None else None
        self._memory: list[tuple[int, dict[str, Tensor]]] = []

    def _folders(self) -> dict[int, Path]:
        """The snapshot folders on disk by step (only those a save completed)."""
        found: dict[int, Path] = {}
        if self.directory is not None and self.directory.is_dir():
            for child in self.directory.iterdir():
                m = re.fullmatch(r"step-(\d+)", child.name)
                if m and (child / MANIFEST).is_file():
                    found[int(m.group(1))] = child
        return found

    def steps(self) -> list[int]:
        """The steps of the snapshots kept, oldest first."""
        if self.directory is None:
            return [step for step, _ in self._memory]
        return sorted(self._folders())

    def add(self, model: nn.Module, step: int) -> None:
        """Keep ``model``'s weights at ``step``; only the last ``keep`` stay.

        Snapshots at ``step`` or later go first: a run resumed from an earlier
        checkpoint left them, and it is about to reach those steps again.
        """
        if self.directory is None:
            self._memory = [(s, w) for s, w in self._memory if s < step]
            weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            self._memory.append((step, weights))
            del self._memory[: -self.keep]
            return
        for s, folder in self._folders().items():
            if s >= step:
                shutil.rmtree(folder)
        write_checkpoint(self.directory / f"step-{step:07d}", model=model, meta={"step": step})
        for _, folder in sorted(self._folders().items())[: -self.keep]:
            shutil.rmtree(folder)

    def clear(self) -> None:
        """Forget every snapshot (a new run in the same directory)."""
        self._memory = []
        for folder in self._folders().values():
            shutil.rmtree(folder)
        if self.directory is not None and self.directory.is_dir():
            leftovers = [p for p in self.directory.iterdir() if p.name.startswith("step-")]
            for p in leftovers:  # half-written folders of a killed save
                shutil.rmtree(p, ignore_errors=True)
            if not any(self.directory.iterdir()):
                self.directory.rmdir()

    def states(self, model: nn.Module) -> Iterator[dict[str, Tensor]]:
        """Each snapshot's state dict, oldest first (``model`` gives the layout to load
        into from disk; its own weights are not changed)."""
        if self.directory is None:
            yield from (weights for _, weights in self._memory)
            return
        scratch = copy.deepcopy(model)
        for _, folder in sorted(self._folders().items()):
            load_model_weights(scratch, folder)
            yield {k: v.detach().clone() for k, v in scratch.state_dict().items()}


def prepare_run_dir(run: Path, *, resume: bool) -> None:
    """Before training in ``run``: drop an earlier ``average/``; a resumed run puts
    ``best_single/`` back into ``best/``, a new run drops it and the snapshots."""
    if (run / "average" / MANIFEST).is_file():
        shutil.rmtree(run / "average")
    single = run / "best_single"
    if resume:
        if (single / MANIFEST).is_file():
            if (run / "best").exists():
                shutil.rmtree(run / "best")
            os.replace(single, run / "best")  # a crash before this: the next resume redoes it
        return
    if (single / MANIFEST).is_file():
        shutil.rmtree(single)
    Snapshots(1, run / "snapshots").clear()


def keep_single_best(run: Path) -> None:
    """Copy ``best/`` to ``best_single/`` (before the average replaces ``best/``); a crash
    leaves ``best/`` whole and ``best_single/`` old, new or absent."""
    best, single = run / "best", run / "best_single"
    if not (best / MANIFEST).is_file():
        return
    tmp = single.with_name(single.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(best, tmp)
    if single.exists():
        shutil.rmtree(single)
    os.replace(tmp, single)
