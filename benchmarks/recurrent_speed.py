"""Speed of rnnkit's recurrent layers as ratios to torch.nn, with an A/A control.

For each cell (LSTM, GRU) and shape (B, T, D, H) it times forward + backward
of one layer for

- ``torch.nn.LSTM`` / ``torch.nn.GRU`` (the baseline, ratio 1.00), and the same
  baseline again as ``torch.nn (A/A)``: it must read 1.00 +/- 0.05, else the table
  says it is unreliable;
- rnnkit's fast path (torch's fused kernel with rnnkit's parameters),
- rnnkit's explicit path (``fast_path=False``: the cell equations step by step),
- the NumPy engine (``rnnkit.reference.forward`` + ``backward``),

every method once per round in a new random order, medians after warm-up. It also
times ``step()`` of streaming inference (B=1, D=256, H=512, inference mode) against
``nn.LSTMCell`` / ``nn.GRUCell`` (with its own A/A row) and the explicit step
(what ``step()`` ran before its fast path). With ``--processes N`` the headline
ratios (fast path / torch.nn, step() / the torch cell) are measured again in
separate processes, N rounds of baseline, candidate, baseline again (random order).

    python benchmarks/recurrent_speed.py --processes 5   # writes docs/benchmarks/recurrent.md
    python benchmarks/recurrent_speed.py --quick         # a smoke run, writes nothing

Speed is never asserted in tests; this script is where it is measured.
See benchmarks/README.md for how to read the tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timing  # noqa: E402  (benchmarks/timing.py)

from rnnkit import reference  # noqa: E402
from rnnkit.nn import GRU, LSTM  # noqa: E402
from rnnkit.runtime import tune_allocator  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHAPES = "64x100x128x256,32x512x64x128"
KINDS = {"lstm": (LSTM, nn.LSTM, nn.LSTMCell), "gru": (GRU, nn.GRU, nn.GRUCell)}
# The targets, as the largest acceptable ratio to the baseline.
TARGETS = {"rnnkit fast": 1.05, "rnnkit explicit": 2.0, "NumPy engine": 3.0}
STEP_TARGET_US = 250.0


def sequence_methods(
    kind: str, B: int, T: int, D: int, H: int, numpy_engine: bool, device: str = "cpu"
) -> dict[str, Callable[[], object]]:
    """forward + backward of one layer, by each method, on the same weights and input.

    On a GPU each call ends with ``torch.cuda.synchronize()``, so the timer
    around it measures the kernels, not just their launch.
    """
    ours_cls, torch_cls, _ = KINDS[kind]
    torch.manual_seed(0)
    ref = torch_cls(D, H, batch_first=True).to(device)
    fast, explicit = ours_cls(D, H).to(device), ours_cls(D, H, fast_path=False).to(device)
    fast.load_state_dict(ref.state_dict())
    explicit.load_state_dict(ref.state_dict())
    x = torch.randn(B, T, D, device=device, requires_grad=True)
    cuda = device.startswith("cuda")

    def fwd_bwd(m: nn.Module) -> Callable[[], object]:
        def run() -> None:
            out, _ = m(x)
            out.sum().backward()
            if cuda:
                torch.cuda.synchronize(device)

        return run

    methods = {
        "torch.nn": fwd_bwd(ref),
        "rnnkit fast": fwd_bwd(fast),
        "rnnkit explicit": fwd_bwd(explicit),
    }
    if numpy_engine and not cuda:
        params = {k.removesuffix("_l0"): v.detach().numpy() for k, v in ref.state_dict().items()}
        x_np = x.detach().numpy()
        d_out = np.ones((B, T, H), dtype=np.float32)

        def numpy_run() -> None:
            _, _, cache = reference.forward(kind, x_np, params)
            reference.backward(kind, d_out, cache)

        methods["NumPy engine"] = numpy_run
    return methods


def step_methods(kind: str, D: int, H: int, n_steps: int) -> dict[str, Callable[[], object]]:
    """``n_steps`` single steps at B=1: the torch.nn cell, rnnkit's step(), its explicit twin."""
    ours_cls, _, cell_cls = KINDS[kind]
    torch.manual_seed(0)
    cell = cell_cls(D, H)
    ours = ours_cls(D, H)
    ours.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
    xs = torch.randn(n_steps, 1, D).unbind(0)

    def run_ours() -> None:
        with torch.inference_mode():
            state = None
            for x in xs:
                _, state = ours.step(x, state)

    def run_explicit() -> None:  # what step() ran before its fast path
        with torch.inference_mode():
            hx = ours._check_state(None, 1, True, xs[0])
            for x in xs:
                _, hx = ours._step_explicit(x, hx)

    def run_cell() -> None:
        with torch.inference_mode():
            state = None
            for x in xs:
                state = cell(x, state)

    return {
        f"nn.{cell_cls.__name__}": run_cell,
        "rnnkit step()": run_ours,
        "explicit step (before)": run_explicit,
    }


def parse_shapes(text: str, form: str = "BxTxDxH") -> list[tuple[int, ...]]:
    shapes = []
    for item in text.split(","):
        parts = item.strip().lower().split("x")
        if len(parts) != len(form.split("x")) or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise SystemExit(f"error: a shape is {form} with positive integers, got {item!r}")
        shapes.append(tuple(int(p) for p in parts))
    return shapes


def child(spec: str, iters: int) -> int:
    """In a fresh process: time one method, print ``{"seconds": per call}``."""
    kind, what, shape, method = spec.split("|")
    if what == "seq":
        B, T, D, H = parse_shapes(shape)[0]
        fn, per = sequence_methods(kind, B, T, D, H, numpy_engine=False)[method], 1
    else:
        D, H = parse_shapes(shape, "DxH")[0]
        fn, per = step_methods(kind, D, H, 50)[method], 50
    for _ in range(2):
        fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) / per)
    print(json.dumps({"seconds": float(np.median(times))}))
    return 0


def confirm(jobs, rounds: int, iters: int, threads: int | None) -> list[tuple]:
    """Headline ratios in separate processes: (kind, shape, method, seconds, ratio, A/A)."""
    rows = []
    for kind, what, shape, base, cand in jobs:
        spec = f"{kind}|{what}|{shape}"
        extra = ["--threads", str(threads)] if threads else []

        def cmd(method: str, spec: str = spec, extra: list[str] = extra) -> list[str]:
            return [
                sys.executable,
                __file__,
                "--child",
                f"{spec}|{method}",
                "--iters",
                str(iters),
                *extra,
            ]

        names = {base: cmd(base), cand: cmd(cand), base + timing.AA_SUFFIX: cmd(base)}
        med = timing.medians(timing.alternate_processes(names, rounds))
        aa = med[base + timing.AA_SUFFIX] / med[base]
        for name in names:
            rows.append((kind, shape, name, med[name], med[name] / med[base], aa))
            print(
                f"{kind:4}  {shape:24}  {name:24} {med[name] * 1e3:9.3f} ms  "
                f"{med[name] / med[base]:5.2f}x  (separate processes)",
                flush=True,
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="few repeats; writes nothing")
    ap.add_argument("--repeats", type=int, default=None, help="timed rounds (default 15, 3 quick)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed rounds (default 3, 1 quick)")
    ap.add_argument("--shapes", default=DEFAULT_SHAPES, help="comma-separated BxTxDxH")
    ap.add_argument("--kinds", default="lstm,gru", help="comma-separated: lstm, gru")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--no-numpy", action="store_true", help="leave out the NumPy engine")
    ap.add_argument("--no-step", action="store_true", help="leave out the step() latency")
    ap.add_argument("--step-shape", default="256x512", help="DxH of the step() latency (B=1)")
    ap.add_argument(
        "--processes",
        type=int,
        default=None,
        help="rounds of the separate-process confirmation (default 5; 1 with --quick; 0: none)",
    )
    ap.add_argument("--no-malloc-tuning", action="store_true", help="keep glibc's defaults")
    ap.add_argument("--output", type=Path, default=REPO / "docs" / "benchmarks" / "recurrent.md")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda / cuda:N (sequence timings)")
    ap.add_argument("--note", default="", help="a sentence for the markdown")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--iters", type=int, default=15, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    malloc = False if args.no_malloc_tuning else tune_allocator()
    if args.child:
        return child(args.child, args.iters)
    repeats = args.repeats or (3 if args.quick else 15)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    processes = args.processes if args.processes is not None else (1 if args.quick else 5)
    kinds = [k.strip() for k in args.kinds.split(",")]
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise SystemExit(f"error: --kinds takes lstm and gru, got {', '.join(bad)}")
    shapes = parse_shapes(args.shapes)
    cuda = args.device.startswith("cuda")
    if cuda:
        if not torch.cuda.is_available():
            raise SystemExit(f"error: --device {args.device} but torch sees no CUDA device")
        args.no_numpy, args.no_step, processes = True, True, 0
        gpu = f"timed on {torch.cuda.get_device_name(args.device)} (CUDA {torch.version.cuda})"
        args.note = f"{gpu}; {args.note}" if args.note else gpu
    load_before = timing.loadavg()

    rows = []  # kind, shape, method, seconds, ratio
    aa_rows = []  # (what, ratio)
    for kind in kinds:
        for B, T, D, H in shapes:
            fns = timing.with_aa(
                sequence_methods(kind, B, T, D, H, not args.no_numpy, args.device), "torch.nn"
            )
            med = timing.medians(timing.run_rounds(fns, warmup=warmup, repeats=repeats))
            shape = f"B={B} T={T} D={D} H={H}"
            aa_rows.append((f"{kind} {shape}", med["torch.nn (A/A)"] / med["torch.nn"]))
            for name, sec in med.items():
                rows.append((kind, shape, name, sec, sec / med["torch.nn"]))
                print(
                    f"{kind:4}  {shape:24}  {name:24} {sec * 1e3:9.1f} ms  "
                    f"{sec / med['torch.nn']:5.2f}x",
                    flush=True,
                )

    step_rows = []
    D, H = parse_shapes(args.step_shape, "DxH")[0]
    if not args.no_step:
        n_steps = 50 if args.quick else 200
        for kind in kinds:
            fns = step_methods(kind, D, H, n_steps)
            base = next(iter(fns))
            fns = timing.with_aa(fns, base)
            med = timing.medians(timing.run_rounds(fns, warmup=warmup, repeats=repeats))
            aa_rows.append((f"{kind} step B=1 D={D} H={H}", med[base + " (A/A)"] / med[base]))
            for name, sec in med.items():
                step_rows.append((kind, f"B=1 D={D} H={H}", name, sec / n_steps, sec / med[base]))
                print(
                    f"{kind:4}  {f'step B=1 D={D} H={H}':24}  {name:24} "
                    f"{sec / n_steps * 1e6:9.1f} us  {sec / med[base]:5.2f}x",
                    flush=True,
                )

    proc_rows = []
    if processes:
        jobs = [
            (k, "seq", f"{B}x{T}x{D_}x{H_}", "torch.nn", "rnnkit fast")
            for k in kinds
            for B, T, D_, H_ in shapes
        ]
        if not args.no_step:
            jobs += [
                (k, "step", f"{D}x{H}", f"nn.{KINDS[k][2].__name__}", "rnnkit step()")
                for k in kinds
            ]
        if args.quick:
            jobs = jobs[:1] + jobs[-1:]
        proc_rows = confirm(jobs, processes, 3 if args.quick else args.iters, args.threads)

    md = render_markdown(
        rows,
        step_rows,
        proc_rows,
        aa_rows,
        env=timing.environment(load_before, timing.loadavg(), malloc),
        repeats=repeats,
        warmup=warmup,
        processes=processes,
        argv=timing.without_note(sys.argv[1:]),
        note=args.note,
    )
    for what, ratio in aa_rows:
        if timing.aa_verdict(ratio) != "ok":
            print(f"A/A {what}: {timing.aa_verdict(ratio)}", flush=True)
    if args.quick or args.no_write:
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(md)
    print(f"wrote {args.output}")
    return 0


def _target(method: str, ratio: float) -> str:
    if method.endswith(timing.AA_SUFFIX):
        return "A/A: 1.00 +/- 0.05 " + ("ok" if timing.aa_verdict(ratio) == "ok" else "FAILED")
    if method in TARGETS:
        return f"<= {TARGETS[method]:.2f} {'met' if ratio <= TARGETS[method] else 'missed'}"
    return "baseline" if ratio == 1.0 else ""


def render_markdown(
    rows, step_rows, proc_rows, aa_rows, *, env, repeats, warmup, processes, argv, note=""
) -> str:
    bad = [(w, r) for w, r in aa_rows if timing.aa_verdict(r) != "ok"]
    lines = [
        "# Recurrent layer speed",
        "",
        "Written by `benchmarks/recurrent_speed.py` (do not edit by hand; rerun it); how to",
        "read it: `benchmarks/README.md`. Forward + backward of one layer, float32, as a",
        f"ratio to torch.nn in the same process: medians of {repeats} rounds after {warmup}",
        "warm-up rounds, every round in a new random order. Lower is faster.",
        "",
        *env,
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}; "
        f"arguments: `{' '.join(argv) or '(none)'}`",
        *([f"- note: {note}"] if note else []),
        "",
        "A/A control: "
        + (
            "every A/A ratio is within 1.00 +/- 0.05."
            if not bad
            else "**UNRELIABLE** ("
            + "; ".join(f"{w}: {r:.2f}" for w, r in bad)
            + "): in-process ratios here are not trustworthy to better than "
            "that; trust the separate-process table."
        ),
        "",
        "| cell | shape | method | time | ratio to torch.nn | target |",
        "|---|---|---|---:|---:|---|",
    ]
    for k, s, m, sec, r in rows:
        lines.append(f"| {k} | {s} | {m} | {sec * 1e3:.1f} ms | {r:.2f} | {_target(m, r)} |")
    if step_rows:
        lines += [
            "",
            "Streaming inference: one `step()` of a one-layer module at B=1 (inference mode)",
            "against the torch.nn cell; the explicit step is what `step()` ran before its fast",
            f"path. Target: <= {STEP_TARGET_US:.0f} us per step, below the torch cell.",
            "",
            "| cell | shape | method | time per step | ratio to the cell | target |",
            "|---|---|---|---:|---:|---|",
        ]
        for k, s, m, sec, r in step_rows:
            target = _target(m, r)
            if m == "rnnkit step()":
                met = sec * 1e6 <= STEP_TARGET_US and r < 1.0
                target = f"<= {STEP_TARGET_US:.0f} us and < 1.00: {'met' if met else 'missed'}"
            lines.append(f"| {k} | {s} | {m} | {sec * 1e6:.0f} us | {r:.2f} | {target} |")
    if proc_rows:
        lines += [
            "",
            f"Separate processes: each figure the median of {processes} fresh processes per",
            "method (baseline, candidate, baseline again, in random order each round); the",
            "repeated baseline is the process-level A/A.",
            "",
            "| cell | shape | method | time | ratio to the baseline | A/A |",
            "|---|---|---|---:|---:|---|",
        ]
        for k, s, m, sec, r, aa in proc_rows:
            unit = f"{sec * 1e6:.0f} us" if sec < 1e-3 else f"{sec * 1e3:.1f} ms"
            verdict = f"{aa:.2f} " + ("ok" if timing.aa_verdict(aa) == "ok" else "UNRELIABLE")
            lines.append(f"| {k} | {s} | {m} | {unit} | {r:.2f} | {verdict} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
