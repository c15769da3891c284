"""Multi30k English->German: train within a wall-clock budget, then greedy vs beam BLEU.

Usage::

    # the issue-17 target: the whole measurement (data, training, decoding) in 60 minutes
    python benchmarks/translate_multi30k.py --preset multi30k_60min --budget-minutes 60 \\
        --threads 2 --run-dir /tmp/tr60
    python benchmarks/translate_multi30k.py --budget-minutes 10 --epochs 2  # a short check

Trains a translate preset (``--preset``, default ``multi30k``: 1-layer
bidirectional GRU 256 encoder, GRU 256 decoder with Luong attention and input
feeding, byte-level BPE 8000 per language), scoring validation BLEU (greedy)
after each epoch, then translates the 1,014 validation sentences with greedy
search and with beam search and scores both with sacrebleu (detokenised,
default 13a tokenisation; the signature is printed). With checkpoint averaging
(``average_last``) both the best single evaluation point and the average are
decoded, and the report says which one the run kept (``best/``).

``--budget-minutes M`` is the budget of the whole measurement, from the start of
this script to the last decoded sentence: training gets ``train.max_seconds =
M * 60 - reserve`` (``--reserve-minutes``, default 5: reading and tokenising the
data, scoring the average, decoding). Without it the preset's own
``train.max_seconds`` applies (``multi30k_60min``: 3300 s). The learning-rate
schedule is planned to end at the budget (``train.max_seconds``); ``--epochs``
(default: the preset's) caps the run in epochs.

Reports: wall time (whole, training), steps and epochs, stop reason, target
tokens/s, threads, the load average at start and end (the machine is shared:
read tokens/s with it), the BLEU curve per epoch, greedy and beam BLEU/chrF and
decoding time of each model. Writes ``<run-dir>/benchmark.json``. Nothing here
reads a test set: only Multi30k's training and validation splits.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rnnkit import Translator
from rnnkit.translate import load_config


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _decode(tr: Translator, beam: int) -> dict[str, dict[str, float]]:
    out = {}
    for name, k in (("greedy", 1), (f"beam{beam}", beam)):
        t1 = time.perf_counter()
        m = tr.evaluate(beam=k)  # the config's validation data: multi30k:val
        out[name] = {
            "bleu": m["bleu"],
            "chrf": m["chrf"],
            "seconds": time.perf_counter() - t1,
            "signature": m["bleu_signature"],
        }
    return out


def main() -> int:
    t_start = time.perf_counter()
    load_start = _load_average()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="multi30k", help="a translate preset (multi30k_60min)")
    ap.add_argument(
        "--budget-minutes",
        type=float,
        default=None,
        help="the whole measurement's wall-clock budget; default: the preset's max_seconds",
    )
    ap.add_argument(
        "--reserve-minutes",
        type=float,
        default=5.0,
        help="of the budget, kept for data preparation, averaging and decoding",
    )
    ap.add_argument("--epochs", type=int, default=None, help="default: the preset's")
    ap.add_argument("--src", default="en")
    ap.add_argument("--tgt", default="de")
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument(
        "--threads", type=int, default=0, help="torch threads; 0 = rnnkit's thread policy"
    )
    ap.add_argument("--run-dir", default="runs/bench-multi30k")
    ap.add_argument("overrides", nargs="*", help="config overrides, e.g. model.hidden_size=512")
    args = ap.parse_args()
    overrides = [
        f"data.src_lang={args.src}",
        f"data.tgt_lang={args.tgt}",
        "train.progress=lines",
        "train.log_interval=50",
    ]
    if args.epochs is not None:
        overrides.append(f"epochs={args.epochs}")
    if args.budget_minutes is not None:
        train_s = (args.budget_minutes - args.reserve_minutes) * 60
        if train_s <= 0:
            ap.error("--budget-minutes must be larger than --reserve-minutes")
        overrides.append(f"train.max_seconds={train_s}")
    cfg = load_config(preset=args.preset, overrides=[*overrides, *args.overrides])
    threads = args.threads or None
    print(
        f"preset {args.preset}: train.max_seconds {cfg.train.max_seconds:g}, epochs "
        f"{cfg.epochs}, threads {threads or 'policy'}, load average {load_start}",
        file=sys.stderr,
    )
    t0 = time.perf_counter()
    # A rerun replaces the previous run in the benchmark's own run directory.
    tr = Translator(cfg, threads=threads).fit(run_dir=args.run_dir, overwrite=True)
    train_s = time.perf_counter() - t0
    res = tr.result_
    # Batches per epoch: multi30k's 29,000 training pairs (none longer than max_tokens=80).
    per_epoch = -(-29_000 // cfg.data.batch_size)

    run = Path(args.run_dir)
    models: dict[str, Any] = {}
    kept = "average" if "averaged_checkpoints" in tr.metrics_ else "best single"
    models[kept] = {"folder": "best", "decoded": _decode(tr, args.beam)}
    other = {"average": run / "average", "best single": run / "best_single"}
    for name, folder in other.items():
        if name != kept and (folder / "manifest.json").is_file():
            est = Translator.load(folder, threads=threads)
            models[name] = {"folder": folder.name, "decoded": _decode(est, args.beam)}
    curve = [
        {"step": r["step"], "bleu_greedy": r.get("bleu"), "val_loss": r.get("val_loss")}
        for r in tr.history_
    ]
    wall_s = time.perf_counter() - t_start
    load_end = _load_average()
    report = {
        "direction": f"{args.src}-{args.tgt}",
        "preset": args.preset,
        "threads": threads or "policy",
        "budget_minutes": args.budget_minutes,
        "train_max_seconds": cfg.train.max_seconds,
        "epochs_planned": cfg.epochs,
        "steps": res.step,
        "epochs_done": res.step / per_epoch,
        "stop_reason": res.stop_reason,
        "wall_seconds_total": wall_s,
        "train_seconds_total": train_s,
        "target_tokens_per_s": res.tokens_per_s,
        "load_average_start": load_start,
        "load_average_end": load_end,
        "bleu_curve": curve,
        "kept": kept,
        "kept_metrics": tr.metrics_,
        "models": models,
        "config": {
            "data": asdict(cfg.data),
            "model": asdict(tr.config.model),
            "average_last": cfg.average_last,
            "label_smoothing": cfg.label_smoothing,
        },
    }
    out = run / "benchmark.json"
    out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(
        f"\nMulti30k {args.src}->{args.tgt}, preset {args.preset}: {res.step} steps "
        f"({res.step / per_epoch:.1f} epochs, {res.stop_reason}), training {train_s / 60:.1f} min "
        f"incl. data preparation, evaluations and averaging; whole run {wall_s / 60:.1f} min"
        + (f" of {args.budget_minutes:g}" if args.budget_minutes is not None else "")
        + f"; {res.tokens_per_s:,.0f} target tokens/s; load average {load_start} at the start, "
        f"{load_end} at the end"
    )
    print("| step | val BLEU (greedy) | val loss |\n|---|---|---|")
    for r in curve:
        print(f"| {r['step']} | {r['bleu_greedy']:.2f} | {r['val_loss']:.3f} |")
    print("\n| model | decoding | BLEU | chrF | seconds (1,014 sentences) |\n|---|---|---|---|---|")
    for name, entry in models.items():
        label = f"{name} ({entry['folder']}/)" + (" kept" if name == kept else "")
        for how, m in entry["decoded"].items():
            print(f"| {label} | {how} | {m['bleu']:.2f} | {m['chrf']:.2f} | {m['seconds']:.1f} |")
    sig = models[kept]["decoded"][f"beam{args.beam}"]["signature"]
    print(f"\nsacrebleu: {sig}\nwritten {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
