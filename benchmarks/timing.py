"""Timing that cannot flatter: shared by the speed benchmarks in this folder.

- :func:`run_rounds`: every method once per round, in a new random order each round
  (a fixed order biases whoever runs after whom: allocator and cache state), after
  untimed warm-up rounds; medians.
- An **A/A row**: the baseline registered twice under two names (:func:`with_aa`)
  and timed like any other method. Both run the same code, so their ratio must read
  1.00; :func:`aa_verdict` flags a table whose A/A ratio is off by more than 5%
  (then no in-process ratio in it is trustworthy to better than that).
- :func:`alternate_processes`: the headline ratios again, each measurement in a
  fresh process (A B A' in random order per round: baseline, candidate, baseline
  again for the process-level A/A), medians: no state carried from one method to
  the next.
- :func:`environment`: what every table records (load average before and after,
  torch threads, thread variables, allocator tuning, CPU).

See benchmarks/README.md for how to read the tables.
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

AA_TOLERANCE = 0.05
AA_SUFFIX = " (A/A)"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def with_aa(fns: dict[str, Callable[[], object]], baseline: str) -> dict[str, Callable]:
    """``fns`` plus the baseline again under ``baseline + " (A/A)"``, right after it."""
    out: dict[str, Callable[[], object]] = {}
    for name, fn in fns.items():
        out[name] = fn
        if name == baseline:
            out[name + AA_SUFFIX] = fn
    return out


def run_rounds(
    fns: dict[str, Callable[[], object]],
    *,
    warmup: int,
    repeats: int,
    seed: int = 0,
    sync: Callable[[], None] | None = None,
) -> dict[str, list[float]]:
    """Seconds per call of each function, every round in a fresh random order."""
    rng = random.Random(seed)
    names = list(fns)
    for _ in range(warmup):
        rng.shuffle(names)
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        rng.shuffle(names)
        for name in names:
            if sync:
                sync()
            t0 = time.perf_counter()
            fns[name]()
            if sync:
                sync()
            times[name].append(time.perf_counter() - t0)
    return times


def medians(times: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(v) for name, v in times.items()}


def aa_verdict(ratio: float) -> str:
    """'ok' when an A/A ratio is within 1.00 +/- 0.05, else a sentence for the table."""
    if abs(ratio - 1.0) <= AA_TOLERANCE:
        return "ok"
    return (
        f"UNRELIABLE: the A/A ratio reads {ratio:.2f} (must be 1.00 +/- {AA_TOLERANCE:.2f}); "
        "differences below that are noise or order bias; rerun on a quiet machine"
    )


def loadavg() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return float("nan")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(load_before: float, load_after: float, allocator: bool) -> list[str]:
    """Markdown bullet lines: machine, software, threads, allocator, load before/after."""
    onednn = torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
    env_threads = ", ".join(f"{k}={os.environ[k]}" for k in THREAD_VARS if k in os.environ)
    switch = os.environ.get("RNNKIT_MALLOC_TUNING")
    return [
        f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs; torch threads "
        f"{torch.get_num_threads()} (thread variables: {env_threads or 'none'})",
        f"- torch {torch.__version__} (oneDNN {'on' if onednn else 'off'}), "
        f"Python {platform.python_version()}",
        f"- glibc malloc thresholds raised (rnnkit.runtime.tune_allocator): "
        f"{'yes' if allocator else 'no'}"
        + (f" (RNNKIT_MALLOC_TUNING={switch})" if switch is not None else ""),
        f"- load average (1 min) before / after: {load_before:.2f} / {load_after:.2f}"
        + (" (busy machine: absolute times are pessimistic)" if load_before > 0.5 else ""),
    ]


def alternate_processes(
    commands: dict[str, Sequence[str]], rounds: int, *, seed: int = 0
) -> dict[str, list[float]]:
    """Run each command once per round in a fresh process, in random order; its seconds.

    Each command prints a JSON object with ``"seconds"`` (its own timed section) on
    its last line of output.
    """
    rng = random.Random(seed)
    names = list(commands)
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        rng.shuffle(names)
        for name in names:
            out = subprocess.run(list(commands[name]), capture_output=True, text=True, check=False)
            if out.returncode != 0:
                raise SystemExit(f"error: child {name!r} failed:\n{out.stderr[-2000:]}")
            times[name].append(float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"]))
    return times


def without_note(argv: list[str]) -> list[str]:
    """The command line as recorded in the markdown; the note has its own line."""
    out, skip = [], False
    for a in argv:
        if skip or a.startswith("--note="):
            skip = False
        elif a == "--note":
            skip = True
        else:
            out.append(a)
    return out
