"""Speech recognition quality on FSDD: single digits, connected digits, held-out speaker.

Trains the preset (``src/rnnkit/configs/speech/<preset>.toml``) within its time budget,
then scores the held-out test split with greedy decoding, prefix beam search
(beam 8) and beam search with the character 3-gram LM. Prints one JSON line
and writes it to ``<run_dir>/benchmark.json``.

    RNNKIT_DATA_MIRROR=file:///path/to/shared/data \\
      python benchmarks/speech_fsdd.py --preset fsdd [--max-seconds 1200] [--threads 1]

On a shared, oversubscribed CPU use ``--threads 1``: two intra-op threads that
cannot both get a core spin and were measured ~50x slower here.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import torch

from rnnkit.pipelines import speech

__all__ = ["main"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="fsdd", help="fsdd | fsdd_connected | fsdd_speaker")
    ap.add_argument("--max-seconds", type=float, default=0.0, help="training budget; 0 = preset's")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--run-dir", default=None)
    ap.add_argument("--overrides", nargs="*", default=[], help="dotted config overrides")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = speech.load_config(preset=args.preset, overrides=args.overrides)
    if args.max_seconds:
        cfg = replace(cfg, train=replace(cfg.train, max_seconds=args.max_seconds))
    if args.run_dir:
        cfg = replace(cfg, run_dir=args.run_dir)
    load_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    rec, result = speech.train(cfg)
    train_s = time.perf_counter() - t0
    _, _, test = speech.load_splits(cfg)
    scores = {}
    for name, beam, lm_weight in (("greedy", 1, 0.0), ("beam8", 8, 0.0), ("beam8_lm", 8, 0.3)):
        t1 = time.perf_counter()
        m = rec.evaluate(test, beam=beam, lm_weight=lm_weight)
        scores[name] = {
            "wer": round(m["wer"], 4),
            "cer": round(m["cer"], 4),
            "seconds": round(time.perf_counter() - t1, 1),
        }
    out = {
        "preset": args.preset,
        "test_utterances": len(test),
        "steps": result.step,
        "stop_reason": result.stop_reason,
        "train_seconds": round(train_s, 1),
        "best_val_wer": round(result.best_metric, 4),
        "threads": args.threads,
        "loadavg_start_end": [round(load_start, 1), round(os.getloadavg()[0], 1)],
        "test": scores,
    }
    line = json.dumps(out)
    print(line)
    Path(cfg.run_dir, "benchmark.json").write_text(line + "\n")


if __name__ == "__main__":
    main()
