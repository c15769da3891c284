"""rnnkit's thread policy against one thread and torch's default, quiet and busy, side by side.

Two typical training steps (forward + backward + AdamW step):

- ``char LM``: embedding 65 -> 64, rnnkit LSTM 2 x 256, linear to 65; B=64, T=100
  (the textgen ``shakespeare`` preset's model and batch);
- ``translation``: rnnkit.translate's Seq2Seq at the ``multi30k`` preset's size (GRU
  256, bidirectional encoder, Luong attention with input feeding, vocabularies of
  8,000), B=64, 20 source and 20 target tokens: a decoder step per token, the kind of
  work where threads wait for each other most often.

Each is timed in two situations: **quiet** (nothing started by this script), and
**busy**: ``--busy`` background processes (default: one per CPU) that spin in a
loop and stop by themselves after ``--busy-seconds`` (and are ended when the
script ends). In each situation the policy decides afresh, as a new process would
(``rnnkit.runtime.resolve_threads("auto")``, 0.1 s of measurement), then
``1 thread``, ``torch default``, ``torch default (A/A)`` and ``policy`` take turns,
every round in a new random order, each with one untimed step first; medians of
seconds per step.

The bounds the policy must meet: busy, at most 10% slower than 1 thread; quiet,
at most 10% slower than torch's default. Run it alone on the machine (the quiet
case is only quiet if nothing else runs; the table records the load).

    python benchmarks/threads_policy.py            # prints a markdown table
    python benchmarks/threads_policy.py --quick    # tiny models, a smoke run
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timing  # noqa: E402  (benchmarks/timing.py)

from rnnkit import runtime  # noqa: E402
from rnnkit.nn import LSTM  # noqa: E402
from rnnkit.translate.model import Seq2Seq, Seq2SeqConfig  # noqa: E402

BOUND = 1.10
SPIN = "import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"


class CharLM(nn.Module):
    def __init__(self, V: int, E: int, H: int, L: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(V, E)
        self.rnn = LSTM(E, H, num_layers=L)
        self.head = nn.Linear(H, V)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(self.embed(x))  # (B, T, H)
        return self.head(h)  # (B, T, V)


def char_lm_step(quick: bool) -> Callable[[], None]:
    V, E, H, L, B, T = (65, 16, 32, 2, 4, 10) if quick else (65, 64, 256, 2, 64, 100)
    torch.manual_seed(0)
    model = CharLM(V, E, H, L)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.randint(0, V, (B, T)), torch.randint(0, V, (B, T))

    def step() -> None:
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def translation_step(quick: bool) -> Callable[[], None]:
    V, H, B, S = (200, 16, 4, 6) if quick else (8000, 256, 64, 20)
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(
        src_vocab_size=V, tgt_vocab_size=V + 2, cell="gru", embed_dim=H, hidden_size=H
    )
    model = Seq2Seq(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    src = torch.randint(2, V, (B, S))
    src_len = torch.full((B,), S)
    tgt = torch.randint(2, V, (B, S + 1))
    tgt[:, 0] = model.bos_id

    def step() -> None:
        loss = model.loss(src, src_len, tgt[:, :-1], tgt[:, 1:], label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def start_busy(n: int, seconds: float) -> list[subprocess.Popen]:
    """``n`` processes that spin for ``seconds`` and stop by themselves."""
    code = SPIN.format(seconds=seconds)
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]
    time.sleep(1.0)  # running, and visible to a load measurement
    return procs


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        p.wait()


def policy_now() -> int:
    """What a fresh process would pick now (no earlier reading or decision)."""
    runtime._last = None
    runtime._decision = None
    choice = runtime.resolve_threads("auto")
    assert choice is not None
    return choice


def measure(
    step: Callable[[], None], default: int, policy: int, *, rounds: int, steps: int
) -> dict[str, float]:
    """Median seconds per step for each setting, random order every round.

    Each timing enters the setting, runs one untimed step (the thread pool resizes
    on the first parallel region after a change), then times ``steps`` steps.
    """
    settings = {"1 thread": 1, "torch default": default, "torch default (A/A)": default}
    settings["policy"] = policy
    rng = random.Random(0)
    names = list(settings)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(rounds + 1):  # round 0: warm-up
        rng.shuffle(names)
        for name in names:
            with runtime.use_threads(settings[name]):
                step()
                t0 = time.perf_counter()
                for _ in range(steps):
                    step()
                if r:
                    times[name].append((time.perf_counter() - t0) / steps)
    return timing.medians(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny models, 2 rounds: a smoke run")
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds (default 5)")
    ap.add_argument("--steps", type=int, default=None, help="training steps per timing (3)")
    ap.add_argument("--busy", type=int, default=os.cpu_count() or 1, help="spinning processes")
    ap.add_argument("--busy-seconds", type=float, default=900.0, help="their time limit")
    ap.add_argument("--workloads", default="char LM,translation", help="comma-separated")
    args = ap.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 5)
    if args.quick:
        args.busy_seconds = min(args.busy_seconds, 30.0)
    steps = args.steps or (1 if args.quick else 3)
    workloads = {"char LM": char_lm_step, "translation": translation_step}
    chosen = [w.strip() for w in args.workloads.split(",")]
    if any(w not in workloads for w in chosen):
        raise SystemExit(f"error: --workloads takes {', '.join(workloads)}")
    os.environ.pop("OMP_NUM_THREADS", None)  # (read by the policy for None only; "auto" here)
    malloc = runtime.tune_allocator()
    default = torch.get_num_threads()
    steps_fns = {w: workloads[w](args.quick) for w in chosen}
    load_before = timing.loadavg()

    rows = []
    for situation in ("quiet", "busy"):
        procs = start_busy(args.busy, args.busy_seconds) if situation == "busy" else []
        try:
            policy = policy_now()
            for w, fn in steps_fns.items():
                med = measure(fn, default, policy, rounds=rounds, steps=steps)
                rows.append((situation, w, policy, med))
                print(
                    f"{situation:5} {w:12} policy -> {policy} thread(s): "
                    + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in med.items()),
                    flush=True,
                )
        finally:
            stop(procs)
    print()
    print(render(rows, args, default, load_before, malloc, rounds, steps))
    return 0


def render(rows, args, default, load_before, malloc, rounds, steps) -> str:
    lines = [
        "# Thread policy: quiet and busy",
        "",
        "Written by `benchmarks/threads_policy.py`; how to read it: `benchmarks/README.md`.",
        f"Seconds per training step, medians of {rounds} rounds of {steps} step(s), every",
        f"round in a new random order. Busy: {args.busy} spinning process(es).",
        f"Bounds: busy, policy <= {BOUND:.2f} x 1 thread; quiet, policy <= {BOUND:.2f} x "
        f"torch's default ({default} threads here).",
        "",
        *timing.environment(load_before, timing.loadavg(), malloc),
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}; "
        f"arguments: `{' '.join(sys.argv[1:]) or '(none)'}`",
        "",
        "| situation | workload | policy picks | 1 thread | torch default | A/A | policy "
        "| policy / 1 thread | policy / default | bound |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for situation, w, policy, m in rows:
        one, dflt, pol = m["1 thread"], m["torch default"], m["policy"]
        aa = m["torch default (A/A)"] / dflt
        ref = one if situation == "busy" else dflt
        met = "met" if pol <= BOUND * ref else "MISSED"
        aa_text = f"{aa:.2f}" + ("" if timing.aa_verdict(aa) == "ok" else " UNRELIABLE")
        lines.append(
            f"| {situation} | {w} | {policy} | {one * 1e3:.1f} ms | {dflt * 1e3:.1f} ms "
            f"| {aa_text} | {pol * 1e3:.1f} ms | {pol / one:.2f} | {pol / dflt:.2f} "
            f"| {met} (vs {'1 thread' if situation == 'busy' else 'default'}) |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
