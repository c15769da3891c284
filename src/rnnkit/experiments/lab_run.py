"""One run of the long-range dependency lab: config, model, training loop, result.

Three tasks from the literature, generated on the fly
(:mod:`rnnkit.experiments.tasks`):

- ``adding``: the adding problem (Hochreiter & Schmidhuber 1997). Regress the
  sum of two marked values from a (value, marker) sequence. Metric: MSE on a
  fixed held-out batch; the trivial baseline predicts 1.0 (MSE ~ 1/6).
- ``copy``: copy memory (Arjovsky et al. 2016). Replay ``M`` symbols after
  ``T`` blank steps. Metric: error rate on the replayed symbols; baseline
  ``1 - 1/K`` (a uniform guess).
- ``selective``: selective copying (Gu & Dao 2023; Feng et al. 2024). Replay
  ``N`` tokens scattered among noise, in order. Metric and baseline as copy.

A task counts as **solved** when the held-out metric falls below
``solved_ratio`` (default 0.01) times the baseline's. The model is
``(linear | embedding) -> rnnkit.nn.build_recurrent(cell) -> linear head``.

The training loop is written out here (~30 lines) rather than taken from
``rnnkit.training.Trainer``: the lab must stop the moment a task is solved,
and that loop stops on a step/time budget or on early stopping only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.errors import UserError
from rnnkit.experiments.tasks import Batch, adding_problem, copy_memory, selective_copying
from rnnkit.nn.registry import CELL_NAMES, build_recurrent
from rnnkit.runtime import resolve_device

__all__ = ["TASKS", "LabConfig", "LabModel", "LabResult", "run_lab"]

TASKS: tuple[str, ...] = ("adding", "copy", "selective")


@dataclass(kw_only=True)
class LabConfig:
    """One lab run: a task at one length, one cell, a training budget.

    Attributes:
        task: "adding", "copy" or "selective".
        cell: a name in ``rnnkit.nn.registry.RECURRENT``.
        length: T, the span the dependency must bridge.
        hidden_size, num_layers: of the recurrent module.
        embed_size: token embedding size (copy, selective).
        num_symbols: K data symbols (copy, selective).
        memory_length: M symbols to copy (copy).
        num_tokens: N tokens to pick out (selective).
        batch_size, lr, grad_clip: Adam on fresh batches every step.
        max_steps, max_seconds: the budget (0 seconds = no time limit).
        eval_every, eval_size: held-out evaluation cadence and batch size.
        solved_ratio: solved when metric < solved_ratio * baseline metric.
        seed: seeds weights, training batches and the held-out batch.
        device: where the model trains: cpu, cuda, cuda:N or mps. Batches are
            drawn on the CPU (the same numbers on every device) and moved there.
    """

    task: str = "adding"
    cell: str = "lstm"
    length: int = 100
    hidden_size: int = 64
    num_layers: int = 1
    embed_size: int = 32
    num_symbols: int = 8
    memory_length: int = 10
    num_tokens: int = 8
    batch_size: int = 64
    lr: float = 3e-3
    grad_clip: float = 1.0
    max_steps: int = 2000
    max_seconds: float = 0.0
    eval_every: int = 50
    eval_size: int = 512
    solved_ratio: float = 0.01
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise UserError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if self.cell not in CELL_NAMES:
            raise UserError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELL_NAMES)}")
        minimum = {
            "length": 2,
            "hidden_size": 1,
            "num_layers": 1,
            "embed_size": 1,
            "num_symbols": 2,
            "memory_length": 1,
            "num_tokens": 1,
            "batch_size": 1,
            "max_steps": 1,
            "eval_every": 1,
            "eval_size": 1,
        }
        for name, low in minimum.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise UserError(
                    f"{name.replace('_', '-')} must be an integer >= {low}, got {value!r}"
                )
        if self.task == "selective" and self.length < self.num_tokens:
            raise UserError(
                f"selective copying needs length >= num-tokens ({self.num_tokens}) "
                f"to scatter the tokens, got length {self.length}"
            )
        for name in ("lr", "solved_ratio"):
            if not getattr(self, name) > 0:
                raise UserError(f"{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        for name in ("grad_clip", "max_seconds"):
            if not getattr(self, name) >= 0:
                raise UserError(
                    f"{name.replace('_', '-')} must be >= 0 (0 = off), got {getattr(self, name)}"
                )
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError):
            raise UserError(
                f"unknown device {self.device!r}; use cpu, cuda, cuda:N or mps"
            ) from None

    def batch(self, size: int, seed: int | torch.Generator) -> Batch:
        """A batch of this task (on the CPU): inputs and targets as in :mod:`.tasks`."""
        if self.task == "adding":
            return adding_problem(size, self.length, seed)
        if self.task == "copy":
            return copy_memory(size, self.length, self.num_symbols, self.memory_length, seed)
        return selective_copying(size, self.length, self.num_tokens, self.num_symbols, seed)


class LabModel(nn.Module):
    """Input layer -> recurrent module -> linear head, for the three tasks.

    adding: (B, T, 2) -> recurrent -> the last step's output -> (B, 1).
    copy: (B, T') ids -> embedding -> recurrent -> (B, T', K + 1) logits at every step.
    selective: (B, T + N) ids -> ... -> (B, N, K + 1) logits at the N query steps.
    """

    def __init__(self, cfg: LabConfig) -> None:
        super().__init__()
        self.task = cfg.task
        self.num_tokens = cfg.num_tokens
        if cfg.task == "adding":
            self.embed: nn.Module = nn.Identity()  # the recurrent layer's W_ih is the input map
            input_size, out = 2, 1
        else:
            # ids 0..K+1: blank/noise, K symbols, the delimiter/query marker.
            self.embed = nn.Embedding(cfg.num_symbols + 2, cfg.embed_size)
            input_size, out = cfg.embed_size, cfg.num_symbols + 1
        self.rnn = build_recurrent(cfg.cell, input_size, cfg.hidden_size, num_layers=cfg.num_layers)
        self.head = nn.Linear(cfg.hidden_size, out)

    def forward(self, inputs: Tensor) -> Tensor:
        y, _ = self.rnn(self.embed(inputs))  # (B, T, H)
        if self.task == "adding":
            return self.head(y[:, -1])  # (B, 1)
        if self.task == "selective":
            y = y[:, -self.num_tokens :]  # (B, N, H): the query steps
        return self.head(y)  # (B, T or N, K + 1)


def _loss(cfg: LabConfig, pred: Tensor, targets: Tensor) -> Tensor:
    if cfg.task == "adding":
        return F.mse_loss(pred, targets)
    return F.cross_entropy(pred.flatten(0, 1), targets.flatten())  # (B*T, K+1) vs (B*T,)


@torch.no_grad()
def _metric(cfg: LabConfig, pred: Tensor, targets: Tensor) -> float:
    """Held-out metric: MSE (adding) or error rate on the symbols to recall (copy, selective)."""
    if cfg.task == "adding":
        return float(F.mse_loss(pred, targets))
    if cfg.task == "copy":  # only the replayed symbols count, not the blanks
        M = cfg.memory_length
        pred, targets = pred[:, -M:], targets[:, -M:]  # (B, M, K + 1), (B, M)
    return float((pred.argmax(-1) != targets).float().mean())


def _baseline(cfg: LabConfig, held_out: Batch) -> float:
    """The trivial baseline's metric: predict 1.0 (adding) or guess uniformly (1 - 1/K)."""
    if cfg.task == "adding":
        return float(F.mse_loss(torch.ones_like(held_out.targets), held_out.targets))
    return 1.0 - 1.0 / cfg.num_symbols


@dataclass
class LabResult:
    """What one run found. ``curve``: (step, train loss) each step; ``evals``: (step, metric)."""

    config: LabConfig
    metric_name: str
    baseline: float
    threshold: float
    solved_at: int | None
    best_metric: float
    steps: int
    seconds: float
    curve: list[tuple[int, float]] = field(default_factory=list)
    evals: list[tuple[int, float]] = field(default_factory=list)

    @property
    def solved(self) -> bool:
        return self.solved_at is not None

    def summary(self) -> str:
        if self.solved:
            return f"solved at step {self.solved_at}"
        return (
            f"not solved in {self.steps} steps (best {self.metric_name} "
            f"{self.best_metric:.4g} = {self.best_metric / self.baseline:.3g} x baseline)"
        )

    def as_dict(self) -> dict[str, Any]:
        """One row of the results table (plain numbers), with the held-out evaluations."""
        c = self.config
        return {
            "task": c.task,
            "cell": c.cell,
            "length": c.length,
            "solved": self.solved,
            "solved_at": self.solved_at,
            "metric": self.metric_name,
            "best_metric": self.best_metric,
            "baseline": self.baseline,
            "threshold": self.threshold,
            "best_ratio": self.best_metric / self.baseline,
            "steps": self.steps,
            "seconds": self.seconds,
            "evals": [[step, metric] for step, metric in self.evals],
        }


def run_lab(cfg: LabConfig, log: Callable[[str], None] | None = None) -> LabResult:
    """Train on fresh batches until solved or out of budget; evaluate on a fixed batch.

    ``log`` receives one line per evaluation (None: silent).
    """
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = LabModel(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    stream = torch.Generator().manual_seed(cfg.seed)  # training batches

    def draw(size: int, seed: int | torch.Generator) -> Batch:
        inputs, targets = cfg.batch(size, seed)
        return Batch(inputs.to(device), targets.to(device))

    held_out = draw(cfg.eval_size, cfg.seed + 1_000_003)  # never trained on
    baseline = _baseline(cfg, held_out)
    threshold = cfg.solved_ratio * baseline
    name = "mse" if cfg.task == "adding" else "error"
    res = LabResult(cfg, name, baseline, threshold, None, math.inf, 0, 0.0)
    start = time.perf_counter()
    for step in range(1, cfg.max_steps + 1):
        batch = draw(cfg.batch_size, stream)
        loss = _loss(cfg, model(batch.inputs), batch.targets)
        if not math.isfinite(loss.item()):
            raise UserError(
                f"the training loss is {loss.item()} at step {step} ({cfg.cell}, "
                f"length {cfg.length}); lower --lr (now {cfg.lr:g}) and run again"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        res.curve.append((step, loss.item()))
        res.steps, res.seconds = step, time.perf_counter() - start
        out_of_time = bool(cfg.max_seconds) and res.seconds >= cfg.max_seconds
        if step % cfg.eval_every and step != cfg.max_steps and not out_of_time:
            continue
        model.eval()
        with torch.no_grad():
            metric = _metric(cfg, model(held_out.inputs), held_out.targets)
        model.train()
        res.evals.append((step, metric))
        res.best_metric = min(res.best_metric, metric)
        if log is not None:
            log(
                f"{cfg.cell} T={cfg.length} step {step}: train loss {loss.item():.4g}, "
                f"held-out {name} {metric:.4g} ({metric / baseline:.3g} x baseline), "
                f"{step / res.seconds:.1f} steps/s"
            )
        if metric < threshold:
            res.solved_at = step
            break
        if out_of_time:
            break
    return res
