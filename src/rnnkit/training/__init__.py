"""The one explicit training loop, checkpoints, progress and metrics logging.

See :mod:`rnnkit.training.loop` for the loop's contract and a usage example,
and ``docs/training.md`` for truncated BPTT, checkpoints, resume and DDP.
"""

from __future__ import annotations

from rnnkit.training.checkpoint import (
    load_model_weights,
    load_tensors,
    read_json,
    read_manifest,
    resolve_checkpoint,
    verify_checkpoint,
    write_checkpoint,
)
from rnnkit.training.distributed import DistContext, cleanup_distributed, init_distributed
from rnnkit.training.loop import (
    StepResult,
    TrainConfig,
    Trainer,
    TrainingDiverged,
    TrainingInterrupted,
    TrainResult,
    build_optimizer,
    detach_state,
    lr_at,
    reset_state_rows,
    seed_everything,
    tune_allocator,
)
from rnnkit.training.plots import plot_curves
from rnnkit.training.progress import MetricsLog, Progress, read_metrics
from rnnkit.training.rundir import check_run_dir, run_lock

__all__ = [
    "DistContext",
    "MetricsLog",
    "Progress",
    "StepResult",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "TrainingInterrupted",
    "build_optimizer",
    "check_run_dir",
    "cleanup_distributed",
    "detach_state",
    "init_distributed",
    "load_model_weights",
    "load_tensors",
    "lr_at",
    "plot_curves",
    "read_json",
    "read_manifest",
    "read_metrics",
    "reset_state_rows",
    "resolve_checkpoint",
    "run_lock",
    "seed_everything",
    "tune_allocator",
    "verify_checkpoint",
    "write_checkpoint",
]
