"""SST-2 from scratch: rnnkit's sentiment pipeline vs TF-IDF + logistic regression.

Both sides see the same data: the 6,920 SST-2 training sentences and the 872
dev sentences (``sst2`` through :func:`rnnkit.data.fetch`, i.e. the canonical
download, sha256-checked; set ``RNNKIT_DATA_MIRROR`` to use a mirror).

- baseline: scikit-learn ``TfidfVectorizer`` (word 1-2 grams, sublinear tf,
  min_df 1) + ``LogisticRegression`` (C=``--lr-c``), fitted on train, scored on dev;
- rnnkit: ``SentimentClassifier(preset="sst2").fit(jobs=2)``, i.e.
  ``rnnkit sentiment train --preset sst2 --jobs 2`` (no pretrained
  vectors): the preset is an ensemble of 3 models (seeds ``--seed``, +1, +2),
  trained two at a time in separate processes, each capped at
  ``--budget-seconds``. Each member keeps its best dev evaluation (early
  stopping on dev accuracy, as the preset says), so its dev figure is
  optimistic in the usual way; the ensemble averages their probabilities.
  The report gives every member's figures and the ensemble's, and the
  wall-clock time of the whole training.

Per evaluation it reports dev accuracy and the wall-clock time since the start
of training (from ``metrics.jsonl``). Wall-clock times depend on the load of
the machine: run it on a quiet one, or say how loaded it was (the load
average is recorded in the results).

    pip install -e '.[bench]'      # scikit-learn for the baseline
    python benchmarks/sentiment_sst2.py --out runs/bench-sst2
    python benchmarks/sentiment_sst2.py --override ensemble=1   # one model
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


def member_report(run_dir: Path, batch_size: int, dev: list) -> dict[str, object]:
    """Dev accuracy per evaluation (from metrics.jsonl) and of the kept model."""
    records = read_metrics(run_dir / "metrics.jsonl")
    step_time = {r["step"]: r["time"] for r in records if "loss" in r}
    per_epoch = -(-6920 // batch_size)  # batches per epoch of the 6,920 sentences
    evals = [
        {
            "epoch": round(r["step"] / per_epoch, 2),
            "step": r["step"],
            "dev_accuracy": r["val_accuracy"],
            "dev_macro_f1": r["val_macro_f1"],
            "seconds": step_time.get(r["step"]),
        }
        for r in records
        if r.get("kind") == "eval"
    ]
    best = max(evals, key=lambda e: e["dev_accuracy"])
    # The kept model, re-scored from its checkpoint through the public API.
    loaded = SentimentClassifier.load(run_dir)
    rep = loaded.evaluate([e.text for e in dev], [e.label for e in dev])
    return {
        "seed": loaded.config.train.seed,
        "evals": evals,
        "best_dev_accuracy": best["dev_accuracy"],
        "best_epoch": best["epoch"],
        "kept_model_dev_accuracy": rep["accuracy"],
        "kept_model_dev_macro_f1": rep["macro_f1"],
        "seconds_per_epoch": (evals[-1]["seconds"] / evals[-1]["epoch"]) if evals else None,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=1, help="seed of the first member (+1 each)")
    p.add_argument("--preset", default="sst2", help="src/rnnkit/sentiment/presets preset")
    p.add_argument("--override", nargs="*", default=[], help="config overrides key=value")
    p.add_argument("--budget-seconds", type=float, default=600.0, help="per member training cap")
    p.add_argument("--jobs", type=int, default=2, help="members trained at a time (processes)")
    p.add_argument("--lr-c", type=float, default=4.0, help="inverse regularisation of the LR")
    p.add_argument("--threads", type=int, default=1, help="torch threads in this process")
    p.add_argument("--out", default="runs/bench-sst2", help="run directories and results.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train = list(read_examples("sst2"))
    dev = list(read_examples("sst2:dev"))
    results: dict[str, object] = {
        "load_average_start": os.getloadavg(),
        "jobs": args.jobs,
        "torch": torch.__version__,
    }
    base = tfidf_baseline(train, dev, args.lr_c)
    results["tfidf_logreg"] = base
    print(f"TF-IDF (1-2 grams) + logistic regression: dev accuracy {base['dev_accuracy']:.4f} "
          f"({base['seconds']:.1f} s)", flush=True)  # fmt: skip

    cfg = load_config(preset=args.preset, overrides=args.override)
    train_cfg = replace(cfg.train, seed=args.seed, max_seconds=args.budget_seconds, progress="none")
    cfg = replace(cfg, train=train_cfg, run_dir=str(out))
    t0 = time.perf_counter()
    # An ensemble when cfg.ensemble > 1; --out is replaced if it holds an earlier run.
    SentimentClassifier(config=cfg).fit(run_dir=out, overwrite=True, jobs=args.jobs)
    total = time.perf_counter() - t0
    member_dirs = (
        [out / f"member{k + 1}" for k in range(cfg.ensemble)] if cfg.ensemble > 1 else [out]
    )
    members = [member_report(d, cfg.data.batch_size, dev) for d in member_dirs]
    for r in members:
        for e in r["evals"]:
            print(f"  seed {r['seed']} epoch {e['epoch']:>5}: dev accuracy {e['dev_accuracy']:.4f} "
                  f"at {e['seconds']:.0f} s", flush=True)  # fmt: skip
        print(f"seed {r['seed']}: best dev accuracy {r['best_dev_accuracy']:.4f} (epoch "
              f"{r['best_epoch']}), kept model {r['kept_model_dev_accuracy']:.4f}, "
              f"{r['seconds_per_epoch']:.1f} s/epoch", flush=True)  # fmt: skip
    # The whole model as a user gets it, re-scored after loading the run directory.
    loaded = SentimentClassifier.load(out)
    rep = loaded.evaluate([e.text for e in dev], [e.label for e in dev])
    accs = [r["kept_model_dev_accuracy"] for r in members]
    results["members"] = members
    results["summary"] = {
        "ensemble_size": cfg.ensemble,
        "dev_accuracy": rep["accuracy"],
        "dev_macro_f1": rep["macro_f1"],
        "train_seconds_total": total,
        "member_mean_dev_accuracy": statistics.mean(accs),
        "member_min_dev_accuracy": min(accs),
        "member_max_dev_accuracy": max(accs),
        "load_average_end": os.getloadavg(),
    }
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"members' dev accuracy: {', '.join(f'{a:.4f}' for a in accs)} "
          f"(mean {statistics.mean(accs):.4f}); the model ({cfg.ensemble} member(s)): "
          f"{rep['accuracy']:.4f}, trained in {total:.0f} s with {args.jobs} job(s); "
          f"TF-IDF+LR {base['dev_accuracy']:.4f}; load average {os.getloadavg()[0]:.1f}; "
          f"results in {out / 'results.json'}")  # fmt: skip


if __name__ == "__main__":
    main()
