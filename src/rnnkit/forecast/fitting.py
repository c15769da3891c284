"""Fitting the forecaster: preparing the data, training one ensemble member (resumable).

:func:`prepare` checks the data against the config, fits the scalers on it
and cuts the windows. :func:`train_member` then trains each member.
A member trains in up to two phases through the shared loop
(:class:`rnnkit.training.Trainer`):

1. ``select``: AdamW on the training windows with early stopping on the
   validation windows (the last ``val_fraction`` of the window origins); the
   best weights and their epoch count are kept. Without validation windows
   (``val_fraction=0``) this phase trains all ``epochs`` on every window.
2. ``refit`` (``refit_full``): the validation split only chose the epoch
   count; a fresh network with the same seed now trains on every window,
   the most recent ones included, for that many epochs.

With a run directory each phase is an ordinary Trainer run directory
(``MEMBER/select/`` and ``MEMBER/refit/``: ``checkpoint/``, ``best/``,
``metrics.jsonl``), and a finished phase leaves ``MEMBER/<phase>.json`` (its
figures and which weights it kept). Resuming skips finished phases (their
weights are read back) and continues an interrupted one from its checkpoint.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.errors import UserError
from rnnkit.forecast.config import ForecasterConfig, ForecastTrainConfig
from rnnkit.forecast.model import ForecastNet
from rnnkit.forecast.scaling import StandardScaler, TargetTransform, check_scalable
from rnnkit.forecast.series import SeriesData
from rnnkit.forecast.windows import (
    Batches,
    Windows,
    min_length,
    model_inputs,
    split_windows,
    training_windows,
)
from rnnkit.training import (
    StepResult,
    TrainConfig,
    Trainer,
    load_model_weights,
    read_json,
    read_metrics,
    resolve_checkpoint,
)

__all__ = ["Prepared", "prepare", "prepare_run_dir", "train_member", "write_metrics"]


@dataclass
class Prepared:
    """What ``fit`` learns before training: the model config with the data's covariate
    counts, the scalers (target, past, known) and the windows."""

    config: ForecasterConfig
    scalers: tuple[StandardScaler, StandardScaler | None, StandardScaler | None]
    windows: Windows


def prepare(data: SeriesData, model: ForecasterConfig, tr: ForecastTrainConfig) -> Prepared:
    """Check the data against the config, fit the scalers on it, cut the windows."""
    c = replace(model, n_past=len(data.past_names), n_known=len(data.known_names))
    c.validate()
    transform = TargetTransform(tr.target_transform)
    transform.check(data.values)
    need = min_length(c.lookback, c.horizon, transform.differenced)
    if len(data) < need:
        raise UserError(
            f"series too short: {len(data)} steps, need at least {need} for lookback "
            f"{c.lookback} and horizon {c.horizon}; use a smaller --model.lookback or "
            "--horizon (Python: lookback=, horizon=)"
        )
    # Scalers see the fit data only. Changes have ~0 mean: scale them, do not center.
    after = f" (after the {transform.kind!r} transform)" if transform.kind != "none" else ""
    check_scalable(
        transform.model_series(data.values), [f"target column {n!r}" for n in data.names], after
    )
    check_scalable(data.past, [f"covariate column {n!r}" for n in data.past_names])
    check_scalable(data.known, [f"covariate column {n!r}" for n in data.known_names])
    target_scaler = StandardScaler(with_mean=not transform.differenced).fit(
        transform.model_series(data.values)
    )
    past_scaler = StandardScaler().fit(data.past) if data.past_names else None
    known_scaler = StandardScaler().fit(data.known) if data.known_names else None
    inputs, u, known = model_inputs(data, transform, target_scaler, past_scaler, known_scaler)
    arrays, origins = training_windows(c, inputs, u, known, transform.differenced)
    windows = split_windows(arrays, origins, c.horizon, tr.val_fraction)
    return Prepared(c, (target_scaler, past_scaler, known_scaler), windows)


def train_member(
    c: ForecasterConfig,
    tr: ForecastTrainConfig,
    windows: Windows,
    *,
    seed: int,
    run_dir: Path | None = None,
    resume: bool = False,
    save_config: dict[str, Any] | None = None,
) -> tuple[ForecastNet, dict[str, Any], list[dict[str, Any]]]:
    """Train one member; returns (network in eval mode, its log, its evaluations).

    The log holds ``epochs`` (run in the select phase), ``best_epoch``,
    ``best_val`` (the best validation loss; inf without validation),
    ``final_train`` (the last training loss) and ``seconds``.
    """
    kw: dict[str, Any] = {"resume": resume, "save_config": save_config}
    select_dir = run_dir / "select" if run_dir else None
    net, info = _phase(
        c, tr, windows.train, windows.val, seed=seed, epochs=tr.epochs, run_dir=select_dir, **kw
    )
    seconds = info["seconds"]
    if windows.val is not None and tr.refit_full:
        refit_dir = run_dir / "refit" if run_dir else None
        epochs = max(1, info["best_epoch"])
        net, refit = _phase(
            c, tr, windows.all, None, seed=seed, epochs=epochs, run_dir=refit_dir, **kw
        )
        seconds += refit["seconds"]
    log = {k: info[k] for k in ("epochs", "best_epoch", "best_val", "final_train")}
    log["seconds"] = seconds  # of the calls that ran each phase to its end
    return net, log, info["evals"]


def _phase(
    c: ForecasterConfig,
    tr: ForecastTrainConfig,
    train: tuple[Tensor, ...],
    val: tuple[Tensor, ...] | None,
    *,
    seed: int,
    epochs: int,
    run_dir: Path | None,
    resume: bool,
    save_config: dict[str, Any] | None,
) -> tuple[ForecastNet, dict[str, Any]]:
    record = run_dir.with_name(run_dir.name + ".json") if run_dir is not None else None
    if record is not None and resume and record.is_file():
        info = read_json(record)  # finished before the interruption: read it back
        net = ForecastNet(c)
        load_model_weights(net, resolve_checkpoint(run_dir / info["weights"]))
        return net.eval(), info
    start = time.perf_counter()
    net = _init_net(c, train, seed)
    batches = Batches(train, tr.batch_size, seed)
    n_batches = len(batches)
    best: dict[str, Any] = {"loss": math.inf, "state": None}
    val_dev = tuple(t.to(tr.device) for t in val) if val is not None else None

    def loss_fn(model: nn.Module, batch: tuple[Tensor, ...], state: Any) -> StepResult:
        x, kf, y = batch
        return StepResult(model.loss(model(x, kf), y), None, x.shape[0])

    def evaluate(model: nn.Module) -> dict[str, float]:
        x, kf, y = val_dev
        loss = float(model.loss(model(x, kf), y))
        if loss < best["loss"]:
            best.update(loss=loss, state=copy.deepcopy(model.state_dict()))
        return {"val_loss": loss}

    again = resume and run_dir is not None and (run_dir / "checkpoint").is_dir()
    cfg = TrainConfig(
        max_steps=epochs * n_batches,
        lr=tr.lr,
        min_lr=tr.lr / 10,
        warmup_steps=min(50, n_batches * 2),
        weight_decay=tr.weight_decay,
        grad_clip=tr.grad_clip,
        carry_state=False,
        eval_interval=n_batches,  # once per epoch
        early_stopping_patience=tr.patience if val is not None else 0,
        checkpoint_interval=10 * n_batches if run_dir is not None else 0,
        progress="none",
        plot=False,
        seed=seed,
        device=tr.device,
    )
    trainer = Trainer(
        net,
        loss_fn,
        batches,
        config=cfg,
        evaluate=evaluate if val is not None else None,
        run_dir=run_dir,
        save_config=save_config,
        resume=again,
        overwrite=not again,  # the member's own folder; fit checked the run directory's policy
    )
    result = trainer.fit()
    evals = result.evals
    if run_dir is not None and (run_dir / "metrics.jsonl").is_file():
        # the whole phase, also the part before an interruption
        evals = [r for r in read_metrics(run_dir / "metrics.jsonl") if r.get("kind") == "eval"]
    evals = [{"epoch": e["step"] // n_batches, "step": e["step"], **_vals(e)} for e in evals]
    info: dict[str, Any] = {
        "epochs": result.step // n_batches,
        "best_epoch": 0,
        "best_val": math.inf,
        "final_train": result.losses[-1] if result.losses else math.nan,
        "weights": "checkpoint",  # the weights at the end
    }
    if val is not None and evals:
        # The first minimum is what the loop keeps (an improvement must be strict).
        first_best = min(evals, key=lambda e: e["val_loss"])
        info.update(best_epoch=first_best["epoch"], best_val=first_best["val_loss"])
        info["weights"] = "best"
        if run_dir is not None:
            load_model_weights(net, resolve_checkpoint(run_dir / "best"))
        elif best["state"] is not None:
            net.load_state_dict(best["state"])
    info["seconds"] = time.perf_counter() - start
    info["evals"] = evals
    if record is not None:
        _write_json(record, info)
    return net.eval(), info


def _init_net(c: ForecasterConfig, train: tuple[Tensor, ...], seed: int) -> ForecastNet:
    torch.manual_seed(seed)
    net = ForecastNet(c)
    net.init_highway(train[0], train[2])
    return net


def _vals(record: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in record.items() if k not in ("kind", "step", "time")}


def _write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` whole or not at all (a temporary file renamed into place)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def prepare_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """After :func:`~rnnkit.training.check_run_dir`: a new run starts without the
    ``members/`` of an earlier one (removed with ``overwrite``, else refused)."""
    members = run_dir / "members"
    if resume or not members.exists():
        return
    if not overwrite:
        raise UserError(
            f"run directory {run_dir} holds ensemble members of an earlier run ({members}); "
            "pass --resume to continue it, --overwrite to replace it (Python: "
            "overwrite=True), or another --run-dir"
        )
    shutil.rmtree(members)


def write_metrics(path: Path, logs: list[dict[str, Any]], history: list[dict[str, Any]]) -> None:
    """The run's ``metrics.jsonl``: every evaluation, then one summary per finished member."""
    lines = [{"kind": "eval", **e} for e in history]
    lines += [{"kind": "member", "member": k + 1, **log} for k, log in enumerate(logs)]
    lines = [  # strict JSON: no inf/NaN (e.g. best_val without validation)
        {k: v if not isinstance(v, float) or math.isfinite(v) else None for k, v in r.items()}
        for r in lines
    ]
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    os.replace(tmp, path)
