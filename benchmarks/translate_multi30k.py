"""Multi30k English->German: train within a wall-clock budget, then greedy vs beam BLEU.

Usage::

    python benchmarks/translate_multi30k.py --budget-minutes 60 --threads 1   # the target run
    python benchmarks/translate_multi30k.py --budget-minutes 10 --epochs 2  # a short check

Trains ``src/rnnkit/translate/presets/multi30k.toml`` (1-layer bidirectional GRU 256
encoder, GRU 256 decoder with Luong attention and input feeding, byte-level
BPE 8000 per language) for ``--epochs`` epochs or until the budget runs out
(the learning-rate schedule spans ``--epochs``), scoring validation BLEU
(greedy) after each epoch. Then translates the 1,014 validation sentences
with greedy search and with beam search and scores both with sacrebleu
(detokenised, default 13a tokenisation; the signature is printed).

Reports: training time, target tokens/s, the BLEU curve per epoch, greedy
and beam BLEU/chrF and decoding time. Writes ``<run-dir>/benchmark.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from rnnkit import Translator
from rnnkit.translate import load_config


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-minutes", type=float, default=60.0, help="training wall-clock cap")
    ap.add_argument(
        "--epochs", type=int, default=11, help="epochs (the lr schedule's span; 11 fit 60 min)"
    )
    ap.add_argument("--src", default="en")
    ap.add_argument("--tgt", default="de")
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
    ap.add_argument("--run-dir", default="runs/bench-multi30k")
    ap.add_argument("overrides", nargs="*", help="config overrides, e.g. model.hidden_size=512")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(
        preset="multi30k",
        overrides=[
            f"data.src_lang={args.src}",
            f"data.tgt_lang={args.tgt}",
            f"epochs={args.epochs}",
            f"train.max_seconds={args.budget_minutes * 60}",
            "train.progress=lines",
            "train.log_interval=50",
            *args.overrides,
        ],
    )
    print(f"torch threads: {torch.get_num_threads()}", file=sys.stderr)
    t0 = time.perf_counter()
    # A rerun replaces the previous run in the benchmark's own run directory.
    tr = Translator(cfg).fit(run_dir=args.run_dir, overwrite=True)
    train_s = time.perf_counter() - t0
    res = tr.result_

    decoded = {}
    for name, beam in (("greedy", 1), (f"beam{args.beam}", args.beam)):
        t1 = time.perf_counter()
        m = tr.evaluate(beam=beam)  # the config's validation data: multi30k:val
        dt = time.perf_counter() - t1
        decoded[name] = {"bleu": m["bleu"], "chrf": m["chrf"], "seconds": dt}
        sig = m["bleu_signature"]
    curve = [
        {"step": r["step"], "bleu_greedy": r.get("bleu"), "val_loss": r.get("val_loss")}
        for r in tr.history_
    ]
    report = {
        "direction": f"{args.src}-{args.tgt}",
        "threads": torch.get_num_threads(),
        "budget_minutes": args.budget_minutes,
        "epochs_planned": args.epochs,
        "steps": res.step,
        "stop_reason": res.stop_reason,
        "train_seconds_total": train_s,
        "target_tokens_per_s": res.tokens_per_s,
        "bleu_curve": curve,
        "validation": decoded,
        "bleu_signature": sig,
        "model": asdict(tr.config.model),
    }
    out = Path(args.run_dir) / "benchmark.json"
    out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(
        f"\nMulti30k {args.src}->{args.tgt}, {res.step} steps ({res.stop_reason}), "
        f"training {train_s / 60:.1f} min incl. tokeniser fit and evaluations, "
        f"{res.tokens_per_s:,.0f} target tokens/s"
    )
    print("| step | val BLEU (greedy) | val loss |\n|---|---|---|")
    for r in curve:
        print(f"| {r['step']} | {r['bleu_greedy']:.2f} | {r['val_loss']:.3f} |")
    print("\n| decoding | BLEU | chrF | seconds (1,014 sentences) |\n|---|---|---|---|")
    for name, m in decoded.items():
        print(f"| {name} | {m['bleu']:.2f} | {m['chrf']:.2f} | {m['seconds']:.1f} |")
    print(f"\nsacrebleu: {sig}\nwritten {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
