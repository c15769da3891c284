"""Streaming inference as a user meets it: characters/s of ``rnnkit textgen sample`` and
the real-time factor of speech streaming, with ``step()``'s fast path (after) and
with the explicit step it replaced (before).

- textgen: a model of the ``shakespeare`` preset's shape (2-layer LSTM 256, embedding
  64, 65 characters; weights after one training step: speed does not depend on
  them) is saved, then ``rnnkit textgen sample --length N`` runs through the CLI's
  own ``main`` in this process (output to /dev/null), timed from the call to its
  return (loading the model included, Python start-up not). Each generated
  character is one ``step()`` of the LSTM plus the output layer and sampling.
- speech: ``SpeechRecognizer.stream`` at the ``fsdd`` preset's size, made
  unidirectional (streamable), on ``--audio-seconds`` of audio in 100 ms chunks.
  Real-time factor = processing time / audio duration (below 1: faster than real
  time). The stream runs the model's ``forward`` on each chunk's new frames, not
  ``step()``, so before and after should read the same: a control.

"before" patches ``step()`` to take its explicit path (``cell()`` per layer, what
it ran before the fast path existed). Settings ``after``, ``before`` and ``after
(A/A)`` take turns, every round in a new random order; medians. With
``--processes N`` the textgen figures are measured again in fresh processes.

    python benchmarks/streaming_speed.py --processes 5
    python benchmarks/streaming_speed.py --quick
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import string
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timing  # noqa: E402  (benchmarks/timing.py)

from rnnkit import SpeechRecognizer, TextGenerator  # noqa: E402
from rnnkit.cli import main as cli_main  # noqa: E402
from rnnkit.nn.recurrent import _Recurrent  # noqa: E402
from rnnkit.runtime import tune_allocator  # noqa: E402
from rnnkit.speech import Utterance  # noqa: E402

CHARS = string.ascii_letters + " \n!$&',-.:;?3"  # tinyshakespeare's 65 characters
QUIET = dict(eval_interval=0, checkpoint_interval=0, progress="none", plot=False)


@contextlib.contextmanager
def explicit_step() -> Iterator[None]:
    """``step()`` as before its fast path: always the explicit step."""
    original = _Recurrent._step_blocker
    _Recurrent._step_blocker = lambda self: "benchmark: the explicit step (before)"
    try:
        yield
    finally:
        _Recurrent._step_blocker = original


def textgen_model(directory: Path, quick: bool) -> Path:
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list(CHARS), 20_000))
    size = dict(hidden_size=32, embed_dim=16) if quick else {}
    gen = TextGenerator(
        preset="shakespeare", max_steps=1, batch_size=4, seq_len=32, verbose=False, **size, **QUIET
    )
    gen.fit(text)
    return gen.save(directory / "textgen")


def sample_seconds(model: Path, length: int, threads: str) -> float:
    argv = [
        "textgen",
        "sample",
        "--checkpoint",
        str(model),
        "--length",
        str(length),
        "--prompt",
        "The ",
        "--seed",
        "0",
        "--threads",
        threads,
    ]
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        t0 = time.perf_counter()
        assert cli_main(argv) == 0
        return time.perf_counter() - t0


def speech_model(quick: bool) -> SpeechRecognizer:
    rng = np.random.default_rng(0)
    sr = 8000
    utts = [
        Utterance((0.1 * rng.standard_normal(sr)).astype(np.float32), text, "", f"u{i}")
        for i, text in enumerate(["one", "two", "three", "four"])
    ]
    size = dict(hidden_size=16, conv_channels=8) if quick else {}
    rec = SpeechRecognizer(
        preset="fsdd",
        bidirectional=False,
        max_steps=1,
        batch_size=4,
        verbose=False,
        **size,
        **QUIET,
    )
    return rec.fit(utts, utts)


def stream_seconds(rec: SpeechRecognizer, audio: np.ndarray, chunk: int) -> float:
    t0 = time.perf_counter()
    for _ in rec.stream(audio[i : i + chunk] for i in range(0, len(audio), chunk)):
        pass
    return time.perf_counter() - t0


def before_after(fn: Callable[[], float], rounds: int) -> dict[str, float]:
    """Medians of ``fn()`` (seconds) for after, before and after again, random order."""
    settings = {"after": contextlib.nullcontext, "before": explicit_step}
    settings["after (A/A)"] = contextlib.nullcontext

    def timed(ctx):
        def run() -> float:
            with ctx():
                return fn()

        return run

    fns = {name: timed(ctx) for name, ctx in settings.items()}
    for f in fns.values():  # warm-up
        f()
    names, out = list(fns), {k: [] for k in fns}
    rng = np.random.default_rng(1)
    for _ in range(rounds):
        rng.shuffle(names)
        for name in names:
            out[name].append(fns[name]())
    return timing.medians(out)


def child(model: str, length: int, threads: str, before: bool) -> int:
    with explicit_step() if before else contextlib.nullcontext():
        sample_seconds(Path(model), min(length, 20), threads)  # warm-up
        seconds = sample_seconds(Path(model), length, threads)
    print(json.dumps({"seconds": seconds}))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny models and lengths: a smoke run")
    ap.add_argument("--length", type=int, default=None, help="characters (default 2000)")
    ap.add_argument("--audio-seconds", type=float, default=None, help="audio (default 20)")
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds (default 5)")
    ap.add_argument("--processes", type=int, default=None, help="fresh-process rounds (0: none)")
    ap.add_argument("--threads", default="auto", help="as --threads of the CLI (default auto)")
    ap.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    length = args.length or (100 if args.quick else 2000)
    if args.child:
        return child(args.child[0], length, args.threads, args.child[1] == "before")
    rounds = args.rounds or (2 if args.quick else 5)
    processes = args.processes if args.processes is not None else (1 if args.quick else 0)
    audio_s = args.audio_seconds or (2.0 if args.quick else 20.0)
    malloc = tune_allocator()
    load_before = timing.loadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = textgen_model(Path(tmp), args.quick)
        med = before_after(lambda: sample_seconds(model, length, args.threads), rounds)
        for name, sec in med.items():
            rows.append(("textgen sample", name, f"{length / sec:,.0f} chars/s", sec))
        if processes:
            cmd = [sys.executable, __file__, "--length", str(length), "--threads", args.threads]
            commands = {
                name: [*cmd, "--child", str(model), name.split()[0]]
                for name in ("after", "before", "after (A/A)")
            }
            proc = timing.medians(timing.alternate_processes(commands, processes))
            for name, sec in proc.items():
                rows.append(
                    ("textgen sample, fresh processes", name, f"{length / sec:,.0f} chars/s", sec)
                )
        rec = speech_model(args.quick)
        audio = np.random.default_rng(2).standard_normal(int(audio_s * 8000)).astype(np.float32)
        med = before_after(lambda: stream_seconds(rec, 0.1 * audio, 800), rounds)
        for name, sec in med.items():
            rows.append(("speech stream", name, f"RTF {sec / audio_s:.4f}", sec))
    for row in rows:
        print(f"{row[0]:32} {row[1]:12} {row[2]:>20}  ({row[3]:.3f} s)", flush=True)
    print()
    print(
        render(
            rows,
            timing.environment(load_before, timing.loadavg(), malloc),
            args,
            length,
            audio_s,
            rounds,
        )
    )
    return 0


def render(rows, env, args, length, audio_s, rounds) -> str:
    lines = [
        "# Streaming inference: textgen sample and speech stream, before and after",
        "",
        "Written by `benchmarks/streaming_speed.py`; how to read it: `benchmarks/README.md`.",
        f"textgen: `rnnkit textgen sample --length {length}` in-process; speech: "
        f"{audio_s:g} s of audio in 100 ms chunks. Medians of {rounds} rounds, random order;",
        "'before' forces step()'s explicit path. 'after (A/A)' repeats 'after'.",
        "",
        *env,
        f"- torch threads for the work: --threads {args.threads}",
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}; "
        f"arguments: `{' '.join(sys.argv[1:]) or '(none)'}`",
        "",
        "| what | code | speed | seconds | ratio to after |",
        "|---|---|---:|---:|---:|",
    ]
    after = {what: sec for what, name, _, sec in rows if name == "after"}
    for what, name, speed, sec in rows:
        lines.append(f"| {what} | {name} | {speed} | {sec:.3f} | {sec / after[what]:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
