"""The one training loop: :class:`TrainConfig` + :class:`Trainer`.

Longer than 400 lines: it is the one training loop, read top to bottom like nanoGPT's
train.py; splitting it would scatter one sequence of steps.

The loop knows nothing about the task. It takes

- ``model``: any ``torch.nn.Module``;
- ``loss_fn(model, batch, state) -> StepResult(loss, state, num_tokens)``: runs
  the model on one batch and returns the mean loss; ``state`` is the recurrent
  state carried from the previous chunk in truncated-BPTT mode (``None`` at
  the start, after a reset, or when state is not carried). A loss function may
  also return just the loss tensor;
- ``train_data``: an iterable of batches (anything ``loss_fn`` understands).
  When it is exhausted a new epoch starts (``train_data.set_epoch(e)`` is
  called first if it exists, as with ``DistributedSampler``). Iterating it
  again must give the same batches for the same epoch: that is how a resumed
  run finds its place (``train_data.iter_from(k)`` is used if it exists,
  otherwise the first ``k`` batches are skipped);
- ``val_data`` (optional): an iterable of batches, scored with the same
  ``loss_fn`` under ``torch.no_grad()`` -> metric ``val_loss``; and/or
  ``evaluate(model) -> dict[str, float]`` for other metrics.

Usage::

    from rnnkit.training import StepResult, TrainConfig, Trainer

    def loss_fn(model, batch, state):
        out = model(batch.x, state)                       # logits (B, T, V)
        loss = F.cross_entropy(out.logits.flatten(0, 1), batch.y.flatten())
        return StepResult(loss, out.state, batch.y.numel())

    cfg = TrainConfig(max_steps=2000, lr=2e-3, warmup_steps=100, grad_clip=1.0,
                      eval_interval=200, checkpoint_interval=500)
    trainer = Trainer(model, loss_fn, train_batches, val_data=val_batches,
                      config=cfg, run_dir="runs/shakespeare",
                      save_config={"model": asdict(model_cfg)},   # -> config.json
                      extra_json={"vocab.json": vocab.to_dict()})
    result = trainer.fit()              # Trainer(..., resume=True).fit() continues a run

Truncated BPTT: with ``carry_state=True`` the state returned by ``loss_fn`` is
detached (gradients stop at the chunk boundary) and passed to the next call.
A batch with a boolean ``reset`` attribute of shape (B,) zeroes the state of
the rows marked True first (document boundaries); a new epoch starts from
``None``. With ``carry_state=False`` every batch starts from ``None``
(random-window training).

Each optimizer step: learning rate from :func:`lr_at` (linear warm-up, then
cosine decay to ``min_lr``), ``grad_accum_steps`` micro-batches of forward +
backward (loss divided by the number of micro-batches), gradient clipping by
global norm (the pre-clip norm is logged every step), optimizer step.

Run directory (rank 0 only): ``metrics.jsonl`` (one record per step and per
evaluation), ``checkpoint/`` (latest, every ``checkpoint_interval`` steps and
at the end), ``best/`` (best ``eval_metric`` so far), ``curves.png``.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.errors import UserError
from rnnkit.runtime import tune_allocator  # re-exported: rnnkit.training.tune_allocator
from rnnkit.training import checkpoint as ckpt
from rnnkit.training import state as train_state
from rnnkit.training.distributed import DistContext, init_distributed
from rnnkit.training.interrupt import StopNow, StopSignals, TrainingInterrupted
from rnnkit.training.progress import MetricsLog, Progress
from rnnkit.training.rundir import check_run_dir, run_lock

__all__ = [
    "StepResult",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "TrainingInterrupted",
    "build_optimizer",
    "detach_state",
    "lr_at",
    "reset_state_rows",
    "seed_everything",
    "tune_allocator",
]


@dataclass(kw_only=True)
class TrainConfig:
    """Hyper-parameters of the loop. Steps count optimizer updates.

    Learning rate at step s (0-based), W = ``warmup_steps``, S = ``max_steps``::

        s < W:  lr * (s + 1) / W
        else:   min_lr + (lr - min_lr) * (1 + cos(pi * (s - W) / (S - W))) / 2    (cosine)
                lr                                                                  (constant)

    With a time budget (``max_seconds`` > 0) the schedule is planned to end at
    the budget: S is the number of steps the run is expected to reach by then
    (re-estimated every step from the measured speed, at most ``max_steps``),
    so the learning rate has decayed to ``min_lr`` when time runs out instead
    of being cut off near its peak.
    """

    max_steps: int = 2000
    max_seconds: float = 0.0  # wall-clock budget; 0 = none
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 2e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    lr_decay: str = "cosine"  # cosine | constant
    weight_decay: float = 0.0  # applied to matrices only (dim >= 2)
    beta1: float = 0.9
    beta2: float = 0.99
    momentum: float = 0.9  # sgd only
    grad_clip: float = 1.0  # max global grad norm; 0 = no clipping (norm still logged)
    grad_accum_steps: int = 1
    carry_state: bool = True  # truncated BPTT: carry the detached state across batches
    state_batch_dim: int = 1  # batch axis of state tensors ((L, B, H) -> 1)
    eval_interval: int = 200  # steps between evaluations; 0 = only at the end
    eval_batches: int = 0  # max validation batches per evaluation; 0 = all
    eval_metric: str = "val_loss"  # drives best/ and early stopping
    eval_mode: str = "min"  # min: lower is better (losses) | max: higher is better (accuracy)
    early_stopping_patience: int = 0  # evaluations without improvement; 0 = off
    min_delta: float = 0.0  # improvement smaller than this does not count
    checkpoint_interval: int = 500  # steps between checkpoints; 0 = only at the end
    log_interval: int = 10  # steps between plain log lines (non-TTY)
    progress: str = "auto"  # auto | bar | lines | none
    plot: bool = True  # write curves.png at the end
    seed: int = 1337
    device: str = "cpu"

    def validate(self) -> None:
        def positive(name: str, value: float, allow_zero: bool = False) -> None:
            if not math.isfinite(value):
                raise UserError(f"train.{name} must be a finite number, got {value}")
            if value < 0 or (value == 0 and not allow_zero):
                op = ">= 0" if allow_zero else "> 0"
                raise UserError(f"train.{name} must be {op}, got {value}")

        positive("max_steps", self.max_steps)
        positive("lr", self.lr)
        positive("grad_accum_steps", self.grad_accum_steps)
        for name in ("max_seconds", "min_lr", "warmup_steps", "weight_decay", "grad_clip"):
            positive(name, getattr(self, name), allow_zero=True)
        for name in ("beta1", "beta2", "momentum", "min_delta"):
            positive(name, getattr(self, name), allow_zero=True)
        for name in ("eval_interval", "eval_batches", "checkpoint_interval"):
            positive(name, getattr(self, name), allow_zero=True)
        if self.optimizer not in ("adamw", "sgd"):
            raise UserError(f"train.optimizer must be adamw or sgd, got {self.optimizer!r}")
        if self.eval_mode not in ("min", "max"):
            raise UserError(f"train.eval_mode must be min or max, got {self.eval_mode!r}")
        if self.lr_decay not in ("cosine", "constant"):
            raise UserError(f"train.lr_decay must be cosine or constant, got {self.lr_decay!r}")
        if self.progress not in ("auto", "bar", "lines", "none"):
            raise UserError(
                f"train.progress must be auto, bar, lines or none, got {self.progress!r}"
            )


class StepResult(NamedTuple):
    """What a loss function returns: mean ``loss``, the ``state`` to carry, ``num_tokens``."""

    loss: Tensor
    state: Any = None
    num_tokens: int = 0


class TrainResult(NamedTuple):
    """Summary of :meth:`Trainer.fit`."""

    step: int  # optimizer steps done (including those before a resume)
    losses: list[float]  # training loss of each step run in this call
    evals: list[dict[str, float]]  # each evaluation: {"step": ..., metric: ...}
    best_metric: float  # best eval_metric (+-inf if never evaluated)
    stop_reason: str  # max_steps | max_seconds | early_stopping
    tokens_per_s: float  # training throughput over this call (all ranks)
    run_dir: Path | None


class TrainingDiverged(UserError):
    """The loss or the gradient norm became NaN or Inf."""


# ---------------------------------------------------------------------------
# Small pieces, each usable on its own
# ---------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_at(step: int, cfg: TrainConfig, total_steps: int | None = None) -> float:
    """Learning rate of optimizer step ``step`` (0-based); see :class:`TrainConfig`.

    ``total_steps``: the schedule's length S (default ``max_steps``; the Trainer
    passes its estimate of the steps reachable within ``max_seconds``).
    """
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.lr_decay == "constant":
        return cfg.lr
    total = cfg.max_steps if total_steps is None else min(total_steps, cfg.max_steps)
    span = max(1, total - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW (weight decay on matrices only, as nanoGPT) or SGD with momentum."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


def _map_tensors(fn: Callable[[Tensor], Tensor], obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return fn(obj)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # NamedTuple
        return type(obj)(*(_map_tensors(fn, o) for o in obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(_map_tensors(fn, o) for o in obj)
    if isinstance(obj, dict):
        return {k: _map_tensors(fn, v) for k, v in obj.items()}
    return obj


def detach_state(state: Any) -> Any:
    """Detach every tensor of a (nested) state: gradients stop at the chunk boundary."""
    return _map_tensors(lambda t: t.detach(), state)


def reset_state_rows(state: Any, reset: Tensor, batch_dim: int = 1) -> Any:
    """Zero the rows of ``state`` where ``reset`` (B,) is True; ``None`` if all are.

    State tensors have their batch axis at ``batch_dim`` (``(L, B, H)`` -> 1).
    """
    if state is None or not bool(reset.any()):
        return state
    if bool(reset.all()):
        return None

    def apply(t: Tensor) -> Tensor:
        shape = [1] * t.dim()
        shape[batch_dim] = -1
        keep = (~reset).to(device=t.device, dtype=t.dtype).view(shape)  # (1, B, 1) for (L, B, H)
        return t * keep

    return _map_tensors(apply, state)


def _to_device(batch: Any, device: torch.device) -> Any:
    if device.type == "cpu":
        return batch
    if hasattr(batch, "to") and not isinstance(batch, Tensor):
        return batch.to(device)
    return _map_tensors(lambda t: t.to(device, non_blocking=True), batch)


def _as_result(out: Any) -> StepResult:
    if isinstance(out, StepResult):
        return out
    if isinstance(out, Tensor):
        return StepResult(out)
    if isinstance(out, tuple):
        return StepResult(*out)
    raise TypeError(
        f"loss_fn must return a StepResult, a (loss, state, num_tokens) tuple or a loss "
        f"tensor, got {type(out).__name__}"
    )


# ---------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------


class _BudgetPlan:
    """The learning rate of a run, planned to end at ``max_seconds`` when there is one.

    The schedule's length is the steps reachable in the budget: steps so far +
    remaining time x measured steps per second (evaluations included, since they
    spend the same budget), capped by ``max_steps``. The speed is measured from
    the ``MIN_STEPS``-th step of this call on (the first steps pay one-off costs).
    The estimate may grow as the run speeds up; after warm-up the learning rate
    never rises again (it waits until the schedule catches up), so it decays
    monotonically to ``min_lr`` at the budget. Without a budget: :func:`lr_at`.
    """

    MIN_STEPS = 5

    def __init__(self, cfg: TrainConfig, first_step: int, t_start: float) -> None:
        self.cfg, self.t_start = cfg, t_start
        self.first_step = first_step
        self.t_mark: float | None = None  # when MIN_STEPS steps of this call were done
        self.last_lr = math.inf
        self.planned = cfg.max_steps  # the latest estimate of the run's length

    def total_steps(self, step: int) -> int:
        cfg = self.cfg
        if not cfg.max_seconds:
            return cfg.max_steps
        now = time.perf_counter()
        done = step - self.first_step - self.MIN_STEPS
        if done < 0:
            return cfg.max_steps
        if self.t_mark is None:
            self.t_mark = now
            return cfg.max_steps
        rate = done / max(now - self.t_mark, 1e-9)
        estimate = step + int(max(0.0, cfg.max_seconds - (now - self.t_start)) * rate)
        return max(step + 1, min(cfg.max_steps, estimate))

    def lr(self, step: int) -> float:
        self.planned = self.total_steps(step)
        value = lr_at(step, self.cfg, self.planned)
        if self.cfg.max_seconds and step >= self.cfg.warmup_steps:
            value = min(value, self.last_lr)
            self.last_lr = value
        return value


# JSON files of a checkpoint that the loop itself writes (not the caller's artefacts).
_BOOKKEEPING_JSON = ("config.json", "trainer_state.json", "best.json", ckpt.MANIFEST)


@dataclass
class _Position:
    """Where training stands; everything needed to continue exactly."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_metric: float = math.inf
    best_step: int = -1
    bad_evals: int = 0
    rng: tuple[dict[str, Any], dict[str, Tensor]] | None = None
    carry: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


class Trainer:
    """Train ``model`` with ``loss_fn`` on ``train_data``; see the module docstring.

    Args:
        model: the module to train (moved to ``config.device``; wrapped in DDP
            when launched by torchrun with more than one process).
        loss_fn: ``(model, batch, state) -> StepResult | Tensor``.
        train_data: iterable of batches (re-iterable, deterministic per epoch).
        config: the loop's :class:`TrainConfig`.
        val_data: iterable of validation batches (metric ``val_loss``).
        evaluate: ``(model) -> dict[str, float]``, more validation metrics.
        run_dir: where metrics and checkpoints go (``None``: nothing is written).
        save_config: JSON-able dict written as ``config.json`` in every checkpoint.
        meta: more fields for every checkpoint's ``manifest.json`` (``app``,
            ``estimator``: what loads it; ``best/`` adds its ``metrics``).
        extra_json: more JSON files for every checkpoint (``{"vocab.json": {...}}``).
        resume: continue from ``run_dir/checkpoint`` (error if there is none).
        overwrite: replace a run already in ``run_dir`` (without it, and without
            ``resume``, a run directory that holds a run is refused:
            :func:`~rnnkit.training.rundir.check_run_dir`).
        optimizer: use this optimizer instead of :func:`build_optimizer`.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[nn.Module, Any, Any], StepResult | Tensor],
        train_data: Iterable[Any],
        *,
        config: TrainConfig,
        val_data: Iterable[Any] | None = None,
        evaluate: Callable[[nn.Module], Mapping[str, float]] | None = None,
        run_dir: str | os.PathLike[str] | None = None,
        save_config: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
        extra_json: Mapping[str, Any] | None = None,
        resume: bool = False,
        overwrite: bool = False,
        optimizer: torch.optim.Optimizer | None = None,
        dist: DistContext | None = None,
    ) -> None:
        config.validate()
        self.overwrite = overwrite
        self.config = config
        self.dist = dist if dist is not None else init_distributed(config.device)
        self.device = torch.device(config.device) if not self.dist.enabled else self.dist.device
        self.raw_model = model.to(self.device)
        self.model: nn.Module = self.raw_model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.raw_model, device_ids=ids)
        self.loss_fn = loss_fn
        self.train_data = train_data
        self.val_data = val_data
        self.evaluate_fn = evaluate
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.save_config = dict(save_config or {})
        self.meta = dict(meta or {})
        self.extra_json = dict(extra_json or {})
        self.resume = resume
        self.optimizer = optimizer if optimizer is not None else build_optimizer(model, config)
        self.pos = _Position()
        self._iter: Iterator[Any] | None = None
        self._snapshot = _Position()
        self._in_optimizer_step = False
        self.progress: Progress | None = None

    # -- data ---------------------------------------------------------------

    def _next_batch(self) -> tuple[Any, bool]:
        """The next training batch and whether it starts an epoch."""
        new_epoch = False
        while True:
            if self._iter is None:
                if hasattr(self.train_data, "set_epoch"):
                    self.train_data.set_epoch(self.pos.epoch)
                k = self.pos.batch_in_epoch
                if k and hasattr(self.train_data, "iter_from"):
                    self._iter = iter(self.train_data.iter_from(k))
                else:
                    self._iter = iter(self.train_data)
                    for _ in range(k):  # fast-forward to where a resumed run stopped
                        next(self._iter)
                new_epoch = k == 0
            try:
                batch = next(self._iter)
            except StopIteration:
                if self.pos.batch_in_epoch == 0:
                    raise UserError(
                        "the training data produced no batches; use more data or a smaller "
                        "batch size / sequence length"
                    ) from None
                self.pos.epoch += 1
                self.pos.batch_in_epoch = 0
                self._iter = None
                continue
            self.pos.batch_in_epoch += 1
            return batch, new_epoch

    # -- checkpoints ---------------------------------------------------------

    def _take_snapshot(self) -> None:
        """Remember the state at a step boundary (what a checkpoint must hold)."""
        p = self.pos
        self._snapshot = _Position(
            step=p.step,
            epoch=p.epoch,
            batch_in_epoch=p.batch_in_epoch,
            best_metric=p.best_metric,
            best_step=p.best_step,
            bad_evals=p.bad_evals,
            rng=train_state.get_rng_state(),
            carry=p.carry,
        )

    def checkpoint_dir(self) -> Path | None:
        return self.run_dir / "checkpoint" if self.run_dir is not None else None

    def save_checkpoint(self) -> Path | None:
        """Write ``run_dir/checkpoint`` from the last step boundary (rank 0 only)."""
        target = self.checkpoint_dir()
        if target is None or not self.dist.is_main:
            return None
        s = self._snapshot
        rng_json, rng_tensors = s.rng if s.rng is not None else train_state.get_rng_state()
        opt_json, opt_tensors = train_state.optimizer_state_to_files(self.optimizer)
        carry_spec, carry_tensors = train_state.flatten_state(s.carry, "carry")
        state = {
            "step": s.step,
            "epoch": s.epoch,
            "batch_in_epoch": s.batch_in_epoch,
            "best_metric": s.best_metric if math.isfinite(s.best_metric) else None,
            "best_step": s.best_step,
            "bad_evals": s.bad_evals,
            "rng": rng_json,
            "optimizer": opt_json,
            "carry": carry_spec,
            "train_config": asdict(self.config),
        }
        return ckpt.write_checkpoint(
            target,
            model=self.raw_model,
            config=self.save_config,
            extra_json=self.extra_json,
            tensors={
                "optimizer.safetensors": opt_tensors,
                "rng.safetensors": rng_tensors,
                "carry.safetensors": carry_tensors,
            },
            json_files={"trainer_state.json": state},
            meta=self.meta,
        )

    def _load_checkpoint(self) -> None:
        target = self.checkpoint_dir()
        if target is None:
            raise UserError("resume needs a run directory; pass run_dir")
        d = ckpt.resolve_checkpoint(
            target,
            required=ckpt.MODEL_FILES + ckpt.TRAINING_FILES + ("rng.safetensors",),
        )
        state = ckpt.read_json(d / "trainer_state.json")
        # What the run saved beside its weights comes along, so a resume that did not
        # repeat save_config/extra_json still writes checkpoints one can sample from.
        if not self.save_config:
            self.save_config = dict(ckpt.read_json(d / "config.json"))
        if not self.meta:
            saved = ckpt.read_manifest(d) or {}
            self.meta = {k: saved[k] for k in ("app", "estimator") if k in saved}
        for f in sorted(d.glob("*.json")):
            if f.name not in _BOOKKEEPING_JSON and f.name not in self.extra_json:
                self.extra_json[f.name] = ckpt.read_json(f)
        ckpt.load_model_weights(self.raw_model, d)
        train_state.load_optimizer_state(
            self.optimizer, state["optimizer"], ckpt.load_tensors(d / "optimizer.safetensors")
        )
        carry_file = d / "carry.safetensors"
        carry_tensors = ckpt.load_tensors(carry_file) if carry_file.exists() else {}
        carry = train_state.unflatten_state(state["carry"], carry_tensors)
        carry = _map_tensors(lambda t: t.to(self.device), carry)
        best = state["best_metric"]
        self.pos = _Position(
            step=state["step"],
            epoch=state["epoch"],
            batch_in_epoch=state["batch_in_epoch"],
            best_metric=math.inf if best is None else best,
            best_step=state["best_step"],
            bad_evals=state["bad_evals"],
            carry=carry,
        )
        train_state.set_rng_state(state["rng"], ckpt.load_tensors(d / "rng.safetensors"))

    def _save_best(self, metrics: Mapping[str, float]) -> None:
        if self.run_dir is None or not self.dist.is_main:
            return
        ckpt.write_checkpoint(
            self.run_dir / "best",
            model=self.raw_model,
            config=self.save_config,
            extra_json=self.extra_json,
            json_files={"best.json": {"step": self.pos.step, **dict(metrics)}},
            meta={**self.meta, "metrics": {"step": self.pos.step, **dict(metrics)}},
        )

    # -- evaluation ----------------------------------------------------------

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Validation metrics (averaged over ranks); the model is left in train mode."""
        cfg = self.config
        model = self.raw_model
        model.eval()
        out: dict[str, float] = {}
        try:
            if self.val_data is not None:
                total, count, state = 0.0, 0, None
                for i, batch in enumerate(self.val_data):
                    if cfg.eval_batches and i >= cfg.eval_batches:
                        break
                    batch = _to_device(batch, self.device)
                    reset = getattr(batch, "reset", None)
                    if isinstance(reset, Tensor):
                        state = reset_state_rows(state, reset, cfg.state_batch_dim)
                    res = _as_result(self.loss_fn(model, batch, state))
                    weight = res.num_tokens or 1  # token-weighted mean over batches
                    total += float(res.loss) * weight
                    count += weight
                    state = res.state if cfg.carry_state else None
                if count == 0:
                    raise UserError(
                        "the validation data produced no batches; use a larger validation "
                        "split or a shorter sequence length"
                    )
                out["val_loss"] = total / count
            if self.evaluate_fn is not None:
                out.update({k: float(v) for k, v in self.evaluate_fn(model).items()})
        finally:
            model.train()
        if self.dist.enabled and out:
            import torch.distributed as torch_dist

            keys = sorted(out)
            vec = torch.tensor([out[k] for k in keys], dtype=torch.float64)
            torch_dist.all_reduce(vec)
            out = {k: float(v) / self.dist.world_size for k, v in zip(keys, vec, strict=True)}
        return out

    # -- the loop ------------------------------------------------------------

    def _diverged(self, what: str, value: float) -> TrainingDiverged:
        cfg = self.config
        last = self.checkpoint_dir()
        keep = (
            f"the last good checkpoint {last} is kept"
            if last is not None and last.exists()
            else "no checkpoint was written yet"
        )
        return TrainingDiverged(
            f"{what} is {value} at step {self.pos.step + 1}; training stopped and {keep}. "
            f"Lower the learning rate (train.lr, now {cfg.lr:g}) or clip gradients harder "
            f"(train.grad_clip, now {cfg.grad_clip:g}) and train again"
        )

    def fit(self) -> TrainResult:
        """Run the loop until ``max_steps``, ``max_seconds`` or early stopping.

        The run directory is locked for the whole call (a second process writing
        it is refused). SIGINT or SIGTERM stops the run at the next step boundary
        with a checkpoint and raises :class:`TrainingInterrupted`.
        """
        main = self.dist.is_main
        tune_allocator()
        if main:  # before the lock: a refused run must not create the directory
            check_run_dir(self.run_dir, resume=self.resume, overwrite=self.overwrite)
        with run_lock(self.run_dir if main else None), StopSignals() as stop:
            return self._fit(stop)

    def _stop_requested(self, stop: StopSignals) -> bool:
        """A signal arrived (on any rank: all ranks stop at the same step)."""
        requested = stop.signum is not None
        if self.dist.enabled:
            import torch.distributed as torch_dist

            flag = torch.tensor([int(requested)], device=self.device)
            torch_dist.all_reduce(flag, op=torch_dist.ReduceOp.MAX)
            requested = bool(flag.item())
        return requested

    def _fit(self, stop: StopSignals) -> TrainResult:
        cfg = self.config
        main = self.dist.is_main
        if cfg.warmup_steps > cfg.max_steps and main:
            print(
                f"warning: train.warmup_steps ({cfg.warmup_steps}) is longer than the run "
                f"({cfg.max_steps} steps): the learning rate never reaches train.lr "
                f"({cfg.lr}); lower --train.warmup_steps",
                file=sys.stderr,
            )
        if self.resume:
            self._load_checkpoint()
        else:
            # Different dropout masks per rank; model init is identical anyway (DDP
            # broadcasts rank 0's parameters).
            seed_everything(cfg.seed + self.dist.rank)
        self._take_snapshot()
        self.progress = Progress(
            cfg.max_steps,
            initial=self.pos.step,
            mode=cfg.progress if main else "none",
            log_interval=cfg.log_interval,
            max_seconds=cfg.max_seconds,
        )
        metrics = None
        if main and self.run_dir is not None:
            metrics = MetricsLog(
                self.run_dir / "metrics.jsonl",
                truncate_after=self.pos.step if self.resume else None,
            )
        losses: list[float] = []
        evals: list[dict[str, float]] = []
        stop_reason = "max_steps"
        tokens_total, train_time = 0, 0.0
        t_start = time.perf_counter()
        budget = _BudgetPlan(cfg, self.pos.step, t_start)
        params = [p for p in self.raw_model.parameters() if p.requires_grad]
        accum = cfg.grad_accum_steps
        self.model.train()
        try:
            while self.pos.step < cfg.max_steps:
                if cfg.max_seconds and time.perf_counter() - t_start >= cfg.max_seconds:
                    stop_reason = "max_seconds"
                    has_eval = self.val_data is not None or self.evaluate_fn is not None
                    if has_eval and losses and (not evals or evals[-1]["step"] != self.pos.step):
                        # Out of time: score the model as it stands, like at max_steps.
                        result = self.evaluate()
                        evals.append({"step": self.pos.step, **result})
                        if metrics is not None:
                            metrics.write({"kind": "eval", "step": self.pos.step, **result})
                        self._after_eval(result)
                        self._take_snapshot()
                    break
                t0 = time.perf_counter()
                lr = budget.lr(self.pos.step)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                loss_sum, tokens = 0.0, 0
                for micro in range(accum):
                    batch, new_epoch = self._next_batch()
                    batch = _to_device(batch, self.device)
                    state = None if (new_epoch or not cfg.carry_state) else self.pos.carry
                    reset = getattr(batch, "reset", None)
                    if isinstance(reset, Tensor):
                        state = reset_state_rows(state, reset, cfg.state_batch_dim)
                    # DDP: all-reduce gradients only on the last micro-batch.
                    sync = micro == accum - 1 or not self.dist.enabled
                    with nullcontext() if sync else self.model.no_sync():
                        res = _as_result(self.loss_fn(self.model, batch, state))
                        value = res.loss.detach().item()
                        if not math.isfinite(value):
                            raise self._diverged("the training loss", value)
                        (res.loss / accum).backward()
                    self.pos.carry = detach_state(res.state) if cfg.carry_state else None
                    loss_sum += value
                    tokens += res.num_tokens
                clip = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
                grad_norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
                if not math.isfinite(grad_norm):
                    raise self._diverged("the gradient norm", grad_norm)
                self._in_optimizer_step = True
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.pos.step += 1
                self._in_optimizer_step = False
                self._take_snapshot()

                loss = loss_sum / accum
                losses.append(loss)
                dt = time.perf_counter() - t0
                train_time += dt
                tokens_total += tokens * self.dist.world_size
                tok_s = tokens * self.dist.world_size / dt if dt > 0 else 0.0
                if metrics is not None:
                    metrics.write(
                        {
                            "step": self.pos.step,
                            "loss": loss,
                            "lr": lr,
                            "grad_norm": grad_norm,
                            "tokens_per_s": tok_s,
                            "time": time.perf_counter() - t_start,
                        }
                    )
                self.progress.update(
                    self.pos.step,
                    loss=loss,
                    tokens_per_s=tok_s,
                    total=budget.planned,
                    lr=lr,
                    grad_norm=grad_norm,
                )

                last = self.pos.step >= cfg.max_steps
                due = cfg.eval_interval and self.pos.step % cfg.eval_interval == 0
                has_eval = self.val_data is not None or self.evaluate_fn is not None
                if has_eval and (due or last):
                    result = self.evaluate()
                    evals.append({"step": self.pos.step, **result})
                    if metrics is not None:
                        metrics.write({"kind": "eval", "step": self.pos.step, **result})
                    shown = ", ".join(f"{k} {v:.4f}" for k, v in result.items())
                    self.progress.message(f"step {self.pos.step}: {shown}")
                    if self._after_eval(result):
                        stop_reason = "early_stopping"
                        self._take_snapshot()
                        break
                    self._take_snapshot()
                if cfg.checkpoint_interval and self.pos.step % cfg.checkpoint_interval == 0:
                    self.save_checkpoint()
                if self._stop_requested(stop):
                    signum = stop.signum if stop.signum is not None else 15
                    written = self.save_checkpoint()
                    self.progress.close()
                    raise TrainingInterrupted(signum, self.pos.step, written)
        except TrainingInterrupted as exc:
            if main:
                print(str(exc), file=sys.stderr)
            raise
        except StopNow:
            self._on_interrupt(write=False)
            raise
        except KeyboardInterrupt:
            self._on_interrupt(write=True)
            raise
        finally:
            self.progress.close()
            if metrics is not None:
                metrics.close()
        self.save_checkpoint()
        if main and self.run_dir is not None and cfg.plot and losses:
            from rnnkit.training.plots import plot_curves

            plot_curves(self.run_dir / "metrics.jsonl")
        if main and stop_reason != "max_steps":
            print(f"stopped at step {self.pos.step}: {stop_reason}", file=sys.stderr)
        return TrainResult(
            step=self.pos.step,
            losses=losses,
            evals=evals,
            best_metric=self.pos.best_metric * (1 if cfg.eval_mode == "min" else -1),
            stop_reason=stop_reason,
            tokens_per_s=tokens_total / train_time if train_time > 0 else 0.0,
            run_dir=self.run_dir,
        )

    def _after_eval(self, result: Mapping[str, float]) -> bool:
        """Track the best metric; save ``best/``; return True to stop early."""
        cfg = self.config
        if cfg.eval_metric not in result:
            raise UserError(
                f"eval_metric {cfg.eval_metric!r} is not among the evaluation results "
                f"{sorted(result)}; set train.eval_metric to one of them"
            )
        # Tracked as a score to minimise: the metric itself, or minus it in max mode.
        score = result[cfg.eval_metric] * (1 if cfg.eval_mode == "min" else -1)
        if score < self.pos.best_metric - cfg.min_delta:
            self.pos.best_metric = score
            self.pos.best_step = self.pos.step
            self.pos.bad_evals = 0
            self._save_best(result)
            return False
        self.pos.bad_evals += 1
        patience = cfg.early_stopping_patience
        return bool(patience) and self.pos.bad_evals >= patience

    def _on_interrupt(self, *, write: bool) -> None:
        """A KeyboardInterrupt mid-step: write the last step boundary's checkpoint
        (``write``, when not inside an optimizer step) and say truthfully what is kept."""
        msg = "interrupted"
        target = self.checkpoint_dir()
        if target is not None and self.dist.is_main:
            if write and not self._in_optimizer_step:
                self.save_checkpoint()
                msg += f" at step {self._snapshot.step}; checkpoint written to {target}"
            elif (target / "trainer_state.json").is_file():
                step = ckpt.read_json(target / "trainer_state.json").get("step", "?")
                msg += f"; the last checkpoint ({target}, step {step}) is kept"
            else:
                msg += "; no checkpoint had been written yet, so nothing was saved"
            if (target / "trainer_state.json").is_file():
                msg += "; continue with --resume (Trainer(..., resume=True))"
        if self.progress is not None:
            self.progress.close()
        print(msg, file=sys.stderr)
