"""Ensembles of sentiment classifiers: N models trained alike, probabilities averaged.

``rnnkit sentiment train --ensemble N [--jobs J]`` (or ``ensemble = N`` in a
preset) calls :func:`train_ensemble`: members with seeds ``train.seed``, +1,
... train into ``RUN_DIR/member<k>`` on one shared train/validation split,
``J`` at a time in separate processes (one torch thread each). The run
directory's ``ensemble.json`` lists the members, and
``SentimentClassifier.load(RUN_DIR)`` returns a :class:`SentimentEnsemble`,
which has the classifier's API (predict, predict_proba, evaluate, explain,
save), so ``eval``/``predict``/``explain`` take the ensemble's directory.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit import config as house_config
from rnnkit.errors import UserError
from rnnkit.pipelines.sentiment import (
    ENSEMBLE_FILE,
    SentimentClassifier,
    SentimentConfig,
    _fit_from_config,
    prepare_examples,
)
from rnnkit.pipelines.textcls_report import Explanation
from rnnkit.training import read_json

__all__ = ["SentimentEnsemble", "train_ensemble"]


class SentimentEnsemble(SentimentClassifier):
    """Several classifiers trained alike (different seeds); probabilities are averaged.

    Built by ``train`` when ``config.ensemble > 1``, or from fitted members. The
    members share the tokenizer and labels (they are fitted on the same data), so
    ``classes_`` and explanations line up. A saved ensemble is a directory with
    ``ensemble.json`` (the config and the member directories) and one run (or
    checkpoint) directory per member; ``SentimentClassifier.load`` recognises it.
    """

    def __init__(self, members: Sequence[SentimentClassifier]) -> None:
        if not members:
            raise UserError("an ensemble needs at least one member")
        first = members[0]
        super().__init__(first.config)
        self.members_ = list(members)
        self.model_, self.tokenizer_, self.labels_ = first.model_, first.tokenizer_, first.labels_
        for m in self.members_[1:]:
            if m.classes_ != first.classes_:
                raise UserError(
                    f"ensemble members disagree on the classes ({m.classes_} vs {first.classes_})"
                )

    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 128) -> np.ndarray:
        """The members' class probabilities (N, C), averaged."""
        probs = [m.predict_proba(texts, batch_size=batch_size) for m in self.members_]
        return np.mean(probs, axis=0)

    def explain(self, text: str, *, method: str = "grad_input", target: Any = None) -> Explanation:
        """The members' token scores for the ensemble's label, averaged."""
        label = self.predict([text])[0] if target is None else target
        exps = [m.explain(text, method=method, target=label) for m in self.members_]
        scores = np.mean([e.scores for e in exps], axis=0).tolist()
        prob = float(self.predict_proba([text])[0][self.classes_.index(label)])
        first = exps[0]
        return Explanation(text, label, prob, first.tokens, first.spans, scores, method)

    def save(self, path: str | Path) -> Path:
        """``path/ensemble.json`` and ``path/member<k>/`` (checkpoint directories)."""
        path = Path(path)
        names = [f"member{k + 1}" for k in range(len(self.members_))]
        for name, m in zip(names, self.members_, strict=True):
            m.save(path / name)
        _write_ensemble_json(path, self.config, names)
        return path

    @classmethod
    def load(cls, path: str | Path) -> SentimentEnsemble:
        path = Path(path)
        info = read_json(path / ENSEMBLE_FILE)
        names = info.get("members") if isinstance(info, dict) else None
        if not isinstance(names, list) or not names:
            raise UserError(f"{path / ENSEMBLE_FILE} lists no members; the ensemble is damaged")
        return cls([SentimentClassifier.load(path / n) for n in names])


def _write_ensemble_json(path: Path, cfg: SentimentConfig, names: list[str]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    info = {"members": names, "config": house_config.to_dict(cfg)}
    (path / ENSEMBLE_FILE).write_text(json.dumps(info, indent=1), encoding="utf-8")


def _fit_member(
    cfg_dict: dict[str, Any], split_seed: int, resume: bool, threads: int
) -> dict[str, Any]:
    """Train one ensemble member (also in a worker process); its figures as a dict."""
    if threads:
        torch.set_num_threads(threads)
    cfg = house_config.from_dict(SentimentConfig, cfg_dict)
    # Every member sees the same train/validation split (the base seed's), so the
    # ensemble's validation data is held out from all of them.
    resume = resume and (Path(cfg.run_dir) / "checkpoint").is_dir()
    t0 = time.perf_counter()
    clf = _fit_from_config(cfg, split_seed, resume)
    evals = clf.result_.evals
    return {
        "run_dir": cfg.run_dir,
        "seed": cfg.train.seed,
        "steps": clf.result_.step,
        "seconds": time.perf_counter() - t0,
        "best_val_accuracy": max((e.get("val_accuracy", 0.0) for e in evals), default=None),
    }


def train_ensemble(
    cfg: SentimentConfig, *, resume: bool = False, jobs: int = 1
) -> SentimentEnsemble:
    """Train ``cfg.ensemble`` members into ``RUN_DIR/member<k>`` (seeds ``train.seed + k``),
    ``jobs`` at a time in separate processes (one torch thread each when ``jobs > 1``).

    ``result_`` of the returned ensemble is a dict: the members' figures and the
    ensemble's validation accuracy; it is also written to ``RUN_DIR/ensemble.json``.
    """
    if jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {jobs}")
    run_dir = Path(cfg.run_dir)
    names = [f"member{k + 1}" for k in range(cfg.ensemble)]
    _write_ensemble_json(run_dir, cfg, names)
    member_cfgs = [
        house_config.to_dict(
            replace(
                cfg,
                ensemble=1,
                run_dir=str(run_dir / name),
                train=replace(cfg.train, seed=cfg.train.seed + k),
            )
        )
        for k, name in enumerate(names)
    ]
    t0 = time.perf_counter()
    if jobs == 1:
        figures = [_fit_member(d, cfg.train.seed, resume, 0) for d in member_cfgs]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch state
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            futures = [pool.submit(_fit_member, d, cfg.train.seed, resume, 1) for d in member_cfgs]
            figures = [f.result() for f in futures]
    seconds = time.perf_counter() - t0
    ens = SentimentEnsemble([SentimentClassifier.load(run_dir / n) for n in names])
    _, val_ex = prepare_examples(cfg.data, cfg.train.seed)
    report = ens.evaluate([e.text for e in val_ex], [e.label for e in val_ex])
    ens.result_ = {
        "members": figures,
        "seconds": seconds,
        "jobs": jobs,
        "val_accuracy": report["accuracy"],
        "val_macro_f1": report["macro_f1"],
    }
    info = read_json(run_dir / ENSEMBLE_FILE)
    info["result"] = ens.result_
    (run_dir / ENSEMBLE_FILE).write_text(json.dumps(info, indent=1), encoding="utf-8")
    return ens
