"""Ensembles of sentiment classifiers: N models trained alike, probabilities averaged.

With ``ensemble = N`` in the config (the ``sst2`` preset uses 3),
:meth:`SentimentClassifier.fit <rnnkit.sentiment.SentimentClassifier.fit>` trains
N members with seeds ``train.seed``, +1, ... on one shared train/validation
split, each a run of its own in ``RUN_DIR/member<k>``, ``jobs`` at a time in
separate processes (one torch thread each). The fitted classifier holds the
members (``members_``); its predictions average their probabilities and its
explanations their token scores.

An ensemble on disk is a directory with ``ensemble.json`` (the config and the
member directories) and one run (or saved model) directory per member;
``SentimentClassifier.load`` recognises it. This module holds that format and
the training of the members (:func:`train_members`, with
:func:`rnnkit.sentiment.train.fit_classifier`); the estimator imports it, never
the reverse.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit import config as config_lib
from rnnkit.errors import UserError
from rnnkit.sentiment.config import SentimentConfig
from rnnkit.sentiment.data import FitData
from rnnkit.sentiment.report import Explanation
from rnnkit.sentiment.train import fit_classifier, plan_steps
from rnnkit.training import check_run_dir, read_json, read_metrics

__all__ = [
    "ENSEMBLE_FILE",
    "average_explanations",
    "check_ensemble_run_dir",
    "finished_member",
    "is_ensemble",
    "member_configs",
    "read_ensemble",
    "train_members",
    "write_ensemble",
]

# A directory holding this file is an ensemble.
ENSEMBLE_FILE = "ensemble.json"


def is_ensemble(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an ensemble's directory (it holds ``ensemble.json``)."""
    return (Path(path) / ENSEMBLE_FILE).is_file()


def read_ensemble(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``ensemble.json`` of ``path``: ``members`` (directory names), ``config`` (a dict)
    and, after training or saving, ``result`` and ``metrics``."""
    file = Path(path) / ENSEMBLE_FILE
    info = read_json(file)
    names = info.get("members") if isinstance(info, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise UserError(f"{file} lists no members; the ensemble is damaged")
    if not isinstance(info.get("config", {}), dict):
        raise UserError(f"{file} holds no config; the ensemble is damaged")
    return info


def write_ensemble(
    path: str | os.PathLike[str],
    cfg: SentimentConfig,
    names: Sequence[str],
    *,
    result: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Write ``path/ensemble.json`` whole or not at all; return its path.

    ``result``: the training figures (members, seconds, validation accuracy);
    ``metrics``: the ensemble's validation metrics (``metrics_``).
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {
        "app": "sentiment",
        "members": list(names),
        "config": config_lib.to_dict(cfg),
    }
    if result is not None:
        info["result"] = result
    if metrics is not None:
        info["metrics"] = metrics
    file = path / ENSEMBLE_FILE
    tmp = file.with_name(f".{ENSEMBLE_FILE}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(info, indent=1), encoding="utf-8")
    os.replace(tmp, file)
    return file


def member_configs(cfg: SentimentConfig, run_dir: Path) -> list[tuple[str, SentimentConfig]]:
    """``(name, config)`` of each member: seeds ``train.seed + k``, run ``run_dir/member<k>``."""
    out = []
    for k in range(cfg.ensemble):
        name = f"member{k + 1}"
        member = replace(
            cfg,
            ensemble=1,
            run_dir=str(run_dir / name),
            train=replace(cfg.train, seed=cfg.train.seed + k),
        )
        out.append((name, member))
    return out


def check_ensemble_run_dir(
    run_dir: str | os.PathLike[str] | None, *, resume: bool, overwrite: bool
) -> None:
    """The run-directory policy (:func:`rnnkit.training.check_run_dir`) for an ensemble.

    A directory holding an ensemble (``ensemble.json``) or a run is refused
    unless ``resume`` (an ensemble to continue) or ``overwrite`` (its members'
    runs are replaced, the user's own files stay).
    """
    if run_dir is None:
        check_run_dir(None, resume=resume, overwrite=overwrite)
        return
    d = Path(run_dir)
    if resume:
        if overwrite:
            check_run_dir(d, resume=True, overwrite=True)  # the one-line contradiction error
        if not is_ensemble(d):
            raise UserError(
                f"{d} holds no ensemble to resume ({ENSEMBLE_FILE} is missing); drop --resume "
                "to start a new run there"
            )
        return
    if is_ensemble(d) and not overwrite:
        raise UserError(
            f"run directory {d} already holds an ensemble ({ENSEMBLE_FILE}); pass --resume to "
            "continue it, --overwrite to replace it (Python: overwrite=True), or another --run-dir"
        )
    check_run_dir(d, overwrite=overwrite)  # a single run there: refused or replaced
    if overwrite and is_ensemble(d):
        for name in read_ensemble(d)["members"]:
            member = d / name
            if member.is_dir():
                check_run_dir(member, overwrite=True)
                if member.is_dir() and not any(member.iterdir()):
                    shutil.rmtree(member)
        (d / ENSEMBLE_FILE).unlink()


def train_members(
    cfg: SentimentConfig,
    data: FitData,
    root: Path,
    *,
    resume: bool,
    overwrite: bool,
    jobs: int,
    verbose: bool,
) -> list[dict[str, Any]]:
    """Train ``cfg.ensemble`` members on ``data`` (texts, labels, val_texts, val_labels)
    into ``root/member<k>``, ``jobs`` at a time in fresh processes (one torch thread
    each) when ``jobs > 1``. Writes ``root/ensemble.json``; returns each member's
    figures (run_dir, seed, steps, seconds, best_val_accuracy, evals).

    ``resume``: a member that had finished is kept as it is (:func:`finished_member`),
    one with a checkpoint continues from it, one without starts again.
    """
    if jobs < 1:
        raise UserError(f"jobs must be >= 1, got {jobs}")
    members = member_configs(cfg, root)
    write_ensemble(root, cfg, [name for name, _ in members])
    figures: dict[int, dict[str, Any]] = {}
    calls = []
    for k, (name, m) in enumerate(members):
        kept = finished_member(m, len(data[0])) if resume else None
        if kept is not None:
            if verbose:
                print(
                    f"sentiment: {name} had finished (step {kept['steps']}); kept as it is",
                    file=sys.stderr,
                )
            figures[k] = kept
            continue
        # A member that never wrote a checkpoint starts again from the beginning.
        m_resume = resume and (Path(m.run_dir) / "checkpoint").is_dir()
        m_overwrite = overwrite or (resume and not m_resume)
        calls.append((k, (m, data, m_resume, m_overwrite, 1 if jobs > 1 else 0, verbose)))
    if jobs == 1 or len(calls) <= 1:
        for k, args in calls:
            figures[k] = _fit_member(*args)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch state
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            futures = {k: pool.submit(_fit_member, *args) for k, args in calls}
            for k, future in futures.items():
                figures[k] = future.result()
    return [figures[k] for k in range(len(members))]


def finished_member(cfg: SentimentConfig, n_train: int) -> dict[str, Any] | None:
    """The figures of a member whose run is complete, read from its run directory, or
    None when it must (still) be trained.

    Complete: its last checkpoint is at the planned length
    (:func:`~rnnkit.sentiment.train.plan_steps` of ``cfg`` on ``n_train`` texts), or
    early stopping ended it, and it has a ``best/`` model. ``--resume`` keeps such
    a member as it is; a larger ``epochs`` or ``train.max_steps`` continues it.
    """
    d = Path(cfg.run_dir)
    state_file = d / "checkpoint" / "trainer_state.json"
    if not state_file.is_file() or not (d / "best" / "model.safetensors").is_file():
        return None
    try:
        state = read_json(state_file)
        step, bad = int(state["step"]), int(state["bad_evals"])
    except (UserError, KeyError, TypeError, ValueError):
        return None  # the resume itself reports a damaged checkpoint
    steps, _, _ = plan_steps(cfg, n_train)
    patience = cfg.train.early_stopping_patience
    if step < steps and not (patience > 0 and bad >= patience):
        return None
    metrics = d / "metrics.jsonl"
    records = read_metrics(metrics) if metrics.is_file() else []
    evals = [
        {k: v for k, v in r.items() if k != "kind"} for r in records if r.get("kind") == "eval"
    ]
    return {
        "run_dir": cfg.run_dir,
        "seed": cfg.train.seed,
        "steps": step,
        "seconds": 0.0,
        "best_val_accuracy": max((e.get("val_accuracy", 0.0) for e in evals), default=None),
        "evals": evals,
        "kept": True,
    }


def _fit_member(
    cfg: SentimentConfig,
    data: FitData,
    resume: bool,
    overwrite: bool,
    threads: int,
    verbose: bool,
) -> dict[str, Any]:
    """Train one member into ``cfg.run_dir`` (also in a worker process); its figures."""
    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    fitted = fit_classifier(
        cfg, *data, run_dir=cfg.run_dir, resume=resume, overwrite=overwrite, verbose=verbose
    )
    evals = fitted.result.evals
    return {
        "run_dir": cfg.run_dir,
        "seed": cfg.train.seed,
        "steps": fitted.result.step,
        "seconds": time.perf_counter() - t0,
        "best_val_accuracy": max((e.get("val_accuracy", 0.0) for e in evals), default=None),
        "evals": evals,
    }


def average_explanations(
    exps: Sequence[Explanation], label: Any, probability: float
) -> Explanation:
    """The members' explanations of one text for ``label``, scores averaged."""
    first = exps[0]
    scores = np.mean([e.scores for e in exps], axis=0).tolist()
    return Explanation(
        first.text, label, probability, first.tokens, first.spans, scores, first.method
    )
