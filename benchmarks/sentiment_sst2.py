"""SST-2 from scratch: rnnkit's sentiment pipeline vs TF-IDF + logistic regression.

Both sides see the same data: the training examples of the preset (``--preset``;
``sst2``: the 6,920 SST-2 training sentences; ``sst2_phrases``: GLUE's 67,349
phrases less those inside the held-out selection sentences) and SST-2's 872 dev
sentences, downloaded through :func:`rnnkit.data.fetch` (the canonical download,
sha256-checked; set ``RNNKIT_DATA_MIRROR`` to use a mirror).

- baseline: scikit-learn ``TfidfVectorizer`` (word 1-2 grams, sublinear tf,
  min_df 1) + ``LogisticRegression`` (C=``--lr-c``), fitted on the preset's
  training examples, scored on dev;
- rnnkit: ``SentimentClassifier(preset=PRESET).fit(jobs=JOBS)``, i.e.
  ``rnnkit sentiment train --preset PRESET --jobs JOBS`` (no pretrained
  vectors). ``sst2`` is an ensemble of 3 models (seeds ``--seed``, +1, +2)
  trained two at a time in separate processes; ``sst2_phrases`` is one model.
  Each model keeps its best validation evaluation. Validation is what the
  preset's ``data.select_on`` says: ``dev`` (``sst2``: the dev figure is then
  optimistic, chosen on dev) or ``train`` (``sst2_phrases``: held-out training
  sentences, so the dev figure is untouched until the end).

The report gives, per model and evaluation, the validation accuracy and the
wall-clock time since the start of training (from ``metrics.jsonl``); the
validation accuracy of the kept model; then the dev accuracy of the whole
model, measured once at the end after loading the run directory; the training
time, the load average at the start and the end (``os.getloadavg``) and the
torch threads. Wall-clock times depend on the load of the machine: run it on a
quiet one, or say how loaded it was.

    pip install -e '.[bench]'      # scikit-learn for the baseline
    python benchmarks/sentiment_sst2.py --out runs/bench-sst2
    python benchmarks/sentiment_sst2.py --ensemble 1             # one model
    python benchmarks/sentiment_sst2.py --preset sst2_phrases --out runs/bench-sst2-phrases
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from rnnkit import SentimentClassifier
from rnnkit.sentiment import load_config
from rnnkit.sentiment.data import prepare_examples, validation_name
from rnnkit.sentiment.readers import read_examples
from rnnkit.training import read_metrics


def tfidf_baseline(train, dev, c: float) -> dict[str, float]:
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        sys.exit(
            "the baseline needs scikit-learn: pip install -e '.[bench]' (or pip install "
            "scikit-learn)"
        )
    t0 = time.perf_counter()
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"\S+")
    x_train = vec.fit_transform([e.text for e in train])
    clf = LogisticRegression(C=c, max_iter=2000)
    clf.fit(x_train, [e.label for e in train])
    pred = clf.predict(vec.transform([e.text for e in dev]))
    acc = sum(int(p == e.label) for p, e in zip(pred, dev, strict=True)) / len(dev)
    return {"dev_accuracy": acc, "seconds": time.perf_counter() - t0}


def member_report(
    run_dir: Path, batch_size: int, n_train: int, dev: list | None
) -> dict[str, object]:
    """Validation accuracy per evaluation (from metrics.jsonl) and of the kept model;
    ``dev``: also re-score the kept model on dev (only where validation is dev anyway)."""
    records = read_metrics(run_dir / "metrics.jsonl")
    step_time = {r["step"]: r["time"] for r in records if "loss" in r}
    per_epoch = -(-n_train // batch_size)  # batches per epoch
    evals = [
        {
            "epoch": round(r["step"] / per_epoch, 2),
            "step": r["step"],
            "val_accuracy": r["val_accuracy"],
            "val_macro_f1": r["val_macro_f1"],
            "seconds": step_time.get(r["step"]),
        }
        for r in records
        if r.get("kind") == "eval"
    ]
    best = max(evals, key=lambda e: e["val_accuracy"])
    loaded = SentimentClassifier.load(run_dir, verbose=False)
    out: dict[str, object] = {
        "seed": loaded.config.train.seed,
        "evals": evals,
        "best_val_accuracy": best["val_accuracy"],
        "best_epoch": best["epoch"],
        "seconds_per_epoch": (evals[-1]["seconds"] / evals[-1]["epoch"]) if evals else None,
    }
    if dev is not None:  # the kept model, re-scored from its checkpoint through the public API
        rep = loaded.evaluate([e.text for e in dev], [e.label for e in dev])
        out["kept_model_dev_accuracy"] = rep["accuracy"]
        out["kept_model_dev_macro_f1"] = rep["macro_f1"]
    return out


def combine(run_dirs: list[str], out: Path) -> None:
    """Average the probabilities of separately trained single models; score sst2:dev once."""
    members = [SentimentClassifier.load(d, threads=1, verbose=False) for d in run_dirs]
    singles = {d: m.evaluate()["accuracy"] for d, m in zip(run_dirs, members, strict=True)}
    ens = SentimentClassifier.from_members(members).evaluate()  # sst2:dev
    result = {"members": singles, "ensemble_dev_accuracy": ens["accuracy"], "dev": "sst2:dev"}
    out.mkdir(parents=True, exist_ok=True)
    Path(out, "ensemble.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="sst2", help="sst2 | sst2_phrases (sentiment presets)")
    p.add_argument("--seed", type=int, default=1, help="seed of the first member (+1 each)")
    p.add_argument("--ensemble", type=int, default=None, help="members (default: the preset's)")
    p.add_argument("--jobs", type=int, default=2, help="members trained at a time (processes)")
    p.add_argument("--override", nargs="*", default=[], help="config overrides key=value")
    p.add_argument("--budget-seconds", type=float, default=None,
                   help="per member training cap (default: the preset's train.max_seconds, "
                   "else 600)")  # fmt: skip
    p.add_argument("--lr-c", type=float, default=4.0, help="inverse regularisation of the LR")
    p.add_argument("--threads", type=int, default=1, help="torch threads in this process")
    p.add_argument("--out", default="runs/bench-sst2", help="run directories and results.json")
    p.add_argument("--combine", nargs="+", metavar="RUN_DIR",
                   help="no training: the ensemble of these trained single models (their "
                   "probabilities averaged), scored once on sst2:dev")  # fmt: skip
    args = p.parse_args()
    if args.combine:
        combine(args.combine, Path(args.out))
        return
    load_start = os.getloadavg()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    overrides = list(args.override)
    if args.ensemble is not None:
        overrides.append(f"ensemble={args.ensemble}")
    cfg = load_config(preset=args.preset, overrides=overrides)
    budget = args.budget_seconds
    if budget is None:
        budget = cfg.train.max_seconds or 600.0
    train_cfg = replace(cfg.train, seed=args.seed, max_seconds=budget, progress="none")
    cfg = replace(cfg, train=train_cfg, run_dir=str(out))
    # The training examples the model sees (the same seeded split as fit's), for the baseline.
    train, val = prepare_examples(cfg.data, cfg.train.seed)
    dev = list(read_examples("sst2:dev"))
    on_dev = validation_name(cfg.data) == "sst2:dev"
    results: dict[str, object] = {
        "preset": args.preset,
        "load_average_start": load_start,
        "threads": torch.get_num_threads(),
        "jobs": args.jobs,
        "torch": torch.__version__,
        "train_examples": len(train),
        "validation": f"{validation_name(cfg.data)} ({len(val)} texts)",
    }
    base = tfidf_baseline(train, dev, args.lr_c)
    results["tfidf_logreg"] = base
    print(f"TF-IDF (1-2 grams) + logistic regression on the same {len(train):,} training "
          f"examples: dev accuracy {base['dev_accuracy']:.4f} ({base['seconds']:.1f} s)",
          flush=True)  # fmt: skip

    t0 = time.perf_counter()
    # An ensemble when cfg.ensemble > 1; --out is replaced if it holds an earlier run.
    clf = SentimentClassifier(config=cfg).fit(run_dir=out, overwrite=True, jobs=args.jobs)
    total = time.perf_counter() - t0
    member_dirs = (
        [out / f"member{k + 1}" for k in range(cfg.ensemble)] if cfg.ensemble > 1 else [out]
    )
    members = [
        member_report(d, cfg.data.batch_size, len(train), dev if on_dev else None)
        for d in member_dirs
    ]
    print(f"validation: {results['validation']}", flush=True)
    for r in members:
        for e in r["evals"]:
            print(f"  seed {r['seed']} epoch {e['epoch']:>5}: val accuracy {e['val_accuracy']:.4f} "
                  f"at {e['seconds']:.0f} s", flush=True)  # fmt: skip
        dev_part = f", kept model dev {r['kept_model_dev_accuracy']:.4f}" if on_dev else ""
        print(f"seed {r['seed']}: best val accuracy {r['best_val_accuracy']:.4f} (epoch "
              f"{r['best_epoch']}){dev_part}, {r['seconds_per_epoch']:.1f} s/epoch",
              flush=True)  # fmt: skip
    val_acc = clf.metrics_["val_accuracy"]  # the kept model (or ensemble) on validation
    # Dev, once: the whole model as a user gets it, re-scored after loading the run directory.
    loaded = SentimentClassifier.load(out, verbose=False)
    rep = loaded.evaluate([e.text for e in dev], [e.label for e in dev])
    load_end = os.getloadavg()
    results["members"] = members
    results["summary"] = {
        "ensemble_size": cfg.ensemble,
        "val_accuracy": val_acc,
        "measured_on": clf.metrics_.get("measured_on"),
        "dev_accuracy": rep["accuracy"],
        "dev_macro_f1": rep["macro_f1"],
        "train_seconds_total": total,
        # one model: max_steps (its epochs ran out), max_seconds (the budget) or early_stopping
        "stop_reason": getattr(clf.result_, "stop_reason", None),
        "load_average_end": load_end,
    }
    if on_dev:
        accs = [r["kept_model_dev_accuracy"] for r in members]
        results["summary"].update(
            member_mean_dev_accuracy=statistics.mean(accs),
            member_min_dev_accuracy=min(accs),
            member_max_dev_accuracy=max(accs),
        )
    jobs = f", {args.jobs} job(s)" if cfg.ensemble > 1 else ""
    reason = results["summary"]["stop_reason"]
    stop = f" (ended by {reason})" if reason else ""
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"the model ({cfg.ensemble} member(s)): validation accuracy {val_acc:.4f} on "
          f"{results['validation']}; dev accuracy {rep['accuracy']:.4f} (sst2:dev, "
          f"{'also the validation data' if on_dev else 'measured once, here'}); trained in "
          f"{total:.0f} s{stop}, {results['threads']} thread(s){jobs}; TF-IDF+LR "
          f"{base['dev_accuracy']:.4f}; load average {load_start[0]:.1f} at the start, "
          f"{load_end[0]:.1f} at the end; results in {out / 'results.json'}")  # fmt: skip


if __name__ == "__main__":
    main()
