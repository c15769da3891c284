"""Speech recognition quality on FSDD: single digits, connected digits, held-out speaker.

Trains the preset (``src/rnnkit/speech/presets/<preset>.toml``) within its time budget,
then scores the held-out test split with greedy decoding, prefix beam search
(beam 8), beam search with the character 3-gram LM, and both with the lexicon
constraint (only words of the training transcripts). Prints one JSON line
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
from pathlib import Path

from rnnkit import SpeechRecognizer
from rnnkit.speech import load_config
from rnnkit.speech.data import load_splits

__all__ = ["main"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="fsdd", help="fsdd | fsdd_connected | fsdd_speaker")
    ap.add_argument("--max-seconds", type=float, default=0.0, help="training budget; 0 = preset's")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--run-dir", default=None, help="default: the preset's run_dir")
    ap.add_argument("--overwrite", action="store_true", help="replace a run in --run-dir")
    ap.add_argument("--overrides", nargs="*", default=[], help="dotted config overrides")
    args = ap.parse_args()
    cfg = load_config(preset=args.preset, overrides=args.overrides)
    rec = SpeechRecognizer(config=cfg, threads=args.threads)
    if args.max_seconds:
        rec.set_params(train__max_seconds=args.max_seconds)
    run_dir = args.run_dir or cfg.run_dir
    load_start = os.getloadavg()[0]
    t0 = time.perf_counter()
    rec.fit(run_dir=run_dir, overwrite=args.overwrite)
    train_s = time.perf_counter() - t0
    _, _, test = load_splits(rec.config)  # the held-out test split, read once
    scores = {}
    decoders = (
        ("greedy", 1, 0.0, False),
        ("beam8", 8, 0.0, False),
        ("beam8_lm", 8, 0.3, False),
        ("beam8_lex", 8, 0.0, True),
        ("beam8_lm_lex", 8, 0.3, True),
    )
    for name, beam, lm_weight, lexicon in decoders:
        t1 = time.perf_counter()
        m = rec.evaluate(test, beam=beam, lm_weight=lm_weight, lexicon=lexicon)
        scores[name] = {
            "wer": round(m["wer"], 4),
            "cer": round(m["cer"], 4),
            "seconds": round(time.perf_counter() - t1, 1),
        }
    result = rec.result_
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
    Path(run_dir, "benchmark.json").write_text(line + "\n")


if __name__ == "__main__":
    main()
