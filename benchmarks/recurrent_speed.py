"""Speed of rnnkit's recurrent layers as ratios to torch.nn, measured in one process.

For each cell (LSTM, GRU) and shape (B, T, D, H) it times forward + backward
of one layer for

- ``torch.nn.LSTM`` / ``torch.nn.GRU`` (the baseline, ratio 1.00),
- rnnkit's fast path (torch's fused kernel with rnnkit's parameters),
- rnnkit's explicit path (``fast_path=False``: the cell equations step by step),
- the NumPy engine (``rnnkit.reference.forward`` + ``backward``),

interleaving the methods within every repeat (A, B, C, D, A, B, ...) and
reporting medians after warm-up. It also times one ``step()`` of streaming
inference (B=1, D=256, H=512) against ``nn.LSTMCell`` / ``nn.GRUCell``.

    python benchmarks/recurrent_speed.py            # full run, writes docs/benchmarks/recurrent.md
    python benchmarks/recurrent_speed.py --quick    # a smoke run (few repeats), writes nothing

Speed is never asserted in tests; this script is where it is measured.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rnnkit import reference
from rnnkit.nn import GRU, LSTM

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHAPES = "64x100x128x256,32x512x64x128"
KINDS = {"lstm": (LSTM, nn.LSTM, nn.LSTMCell), "gru": (GRU, nn.GRU, nn.GRUCell)}
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# The targets, as the largest acceptable ratio to torch.nn.
TARGETS = {"rnnkit fast": 1.05, "rnnkit explicit": 2.0, "NumPy engine": 3.0}


def tune_malloc() -> bool:
    """Keep glibc from returning big blocks to the OS after every step (1.24-1.73x on nn.LSTM here).

    The same as MALLOC_MMAP_THRESHOLD_=32M MALLOC_TRIM_THRESHOLD_=4G MALLOC_TOP_PAD_=256M;
    it speeds up every method here, torch.nn included. False where it is not glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
    ok = libc.mallopt(M_MMAP_THRESHOLD, 32 * 2**20)
    ok &= libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)
    ok &= libc.mallopt(M_TOP_PAD, 256 * 2**20)
    return bool(ok)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def interleaved_medians(
    fns: dict[str, Callable[[], object]], warmup: int, repeats: int
) -> dict[str, float]:
    """Median seconds per call of each function, the functions taking turns in each repeat."""
    for _ in range(warmup):
        for f in fns.values():
            f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for r in range(repeats):
        for k in names[r % len(names) :] + names[: r % len(names)]:  # rotate who goes first
            t0 = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


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
    """``n_steps`` single steps at B=1 by rnnkit's step() and by the torch.nn cell."""
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

    def run_cell() -> None:
        with torch.inference_mode():
            state = None
            for x in xs:
                state = cell(x, state)

    return {f"nn.{cell_cls.__name__}": run_cell, "rnnkit step()": run_ours}


def parse_shapes(text: str, form: str = "BxTxDxH") -> list[tuple[int, ...]]:
    shapes = []
    for item in text.split(","):
        parts = item.strip().lower().split("x")
        if len(parts) != len(form.split("x")) or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise SystemExit(f"error: a shape is {form} with positive integers, got {item!r}")
        shapes.append(tuple(int(p) for p in parts))
    return shapes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="few repeats, for a smoke run; does not write the docs table",
    )
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats (default 15, 3 quick)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed runs (default 3, 1 quick)")
    ap.add_argument("--shapes", default=DEFAULT_SHAPES, help="comma-separated BxTxDxH")
    ap.add_argument("--kinds", default="lstm,gru", help="comma-separated: lstm, gru")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's); NumPy's BLAS follows "
        "OPENBLAS_NUM_THREADS in the environment",
    )
    ap.add_argument("--no-numpy", action="store_true", help="leave out the NumPy engine")
    ap.add_argument("--no-step", action="store_true", help="leave out the step() latency")
    ap.add_argument("--step-shape", default="256x512", help="DxH of the step() latency (B=1)")
    ap.add_argument(
        "--no-malloc-tuning", action="store_true", help="keep glibc's default malloc thresholds"
    )
    ap.add_argument(
        "--output",
        type=Path,
        default=REPO / "docs" / "benchmarks" / "recurrent.md",
        help="where to write the markdown table",
    )
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument(
        "--device",
        default="cpu",
        help="cpu, or cuda / cuda:N: sequence timings on a GPU (no NumPy engine, no step())",
    )
    ap.add_argument("--note", default="", help="a sentence for the markdown (e.g. the load)")
    args = ap.parse_args(argv)

    repeats = args.repeats or (3 if args.quick else 15)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    kinds = [k.strip() for k in args.kinds.split(",")]
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise SystemExit(f"error: --kinds takes lstm and gru, got {', '.join(bad)}")
    shapes = parse_shapes(args.shapes)
    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SystemExit(f"error: --device {args.device} but torch sees no CUDA device")
        args.no_numpy, args.no_step = True, True
        gpu = f"timed on {torch.cuda.get_device_name(args.device)} (CUDA {torch.version.cuda})"
        args.note = f"{gpu}; {args.note}" if args.note else gpu
    if args.threads:
        torch.set_num_threads(args.threads)
    malloc = False if args.no_malloc_tuning else tune_malloc()
    load_before = os.getloadavg()

    rows: list[tuple[str, str, str, float, float]] = []  # kind, shape, method, seconds, ratio
    for kind in kinds:
        for B, T, D, H in shapes:
            fns = sequence_methods(
                kind, B, T, D, H, numpy_engine=not args.no_numpy, device=args.device
            )
            med = interleaved_medians(fns, warmup, repeats)
            shape = f"B={B} T={T} D={D} H={H}"
            for name, sec in med.items():
                rows.append((kind, shape, name, sec, sec / med["torch.nn"]))
                print(
                    f"{kind:4}  {shape:24}  {name:16} {sec * 1e3:9.1f} ms  "
                    f"{sec / med['torch.nn']:5.2f}x",
                    flush=True,
                )

    step_rows: list[tuple[str, str, float, float]] = []
    if not args.no_step:
        n_steps = 50 if args.quick else 200
        D, H = parse_shapes(args.step_shape, "DxH")[0]
        for kind in kinds:
            med = interleaved_medians(step_methods(kind, D, H, n_steps), warmup, repeats)
            base = next(iter(med.values()))
            for name, sec in med.items():
                step_rows.append((kind, f"B=1 D={D} H={H}", name, sec / n_steps, sec / base))
                print(
                    f"{kind:4}  {f'step B=1 D={D} H={H}':24}  {name:16} "
                    f"{sec / n_steps * 1e6:9.1f} us  {sec / base:5.2f}x",
                    flush=True,
                )

    load_after = os.getloadavg()
    md = render_markdown(
        rows,
        step_rows,
        repeats=repeats,
        warmup=warmup,
        malloc=malloc,
        load=(load_before[0], load_after[0]),
        argv=_without_note(sys.argv[1:]),
        note=args.note,
    )
    if args.quick or args.no_write:
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(md)
    print(f"wrote {args.output}")
    return 0


def _without_note(argv: list[str]) -> list[str]:
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


def render_markdown(rows, step_rows, *, repeats, warmup, malloc, load, argv, note="") -> str:
    onednn = torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
    lines = [
        "# Recurrent layer speed",
        "",
        "Written by `benchmarks/recurrent_speed.py` (do not edit by hand; rerun it).",
        "Forward + backward of one layer, float32, as a ratio to torch.nn measured in",
        f"the same process; medians of {repeats} interleaved repeats after {warmup} warm-up",
        "runs. Lower is faster.",
        "",
        f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs, "
        f"torch threads {torch.get_num_threads()}",
        f"- torch {torch.__version__} (oneDNN {'on' if onednn else 'off'}), "
        f"NumPy {np.__version__}, Python {platform.python_version()}",
        f"- thread settings in the environment: "
        f"{', '.join(f'{k}={os.environ[k]}' for k in THREAD_VARS if k in os.environ) or 'none'}",
        f"- glibc malloc thresholds raised (as tune_allocator): {'yes' if malloc else 'no'}",
        f"- load average (1 min) before/after: {load[0]:.2f} / {load[1]:.2f}",
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}; "
        f"arguments: `{' '.join(argv) or '(none)'}`",
        *([f"- note: {note}"] if note else []),
        "",
        "| cell | shape | method | time | ratio to torch.nn | target |",
        "|---|---|---|---:|---:|---|",
    ]
    for k, s, m, sec, r in rows:
        target = (
            f"<= {TARGETS[m]:.2f} {'met' if r <= TARGETS[m] else 'missed'}"
            if m in TARGETS
            else "baseline"
        )
        lines.append(f"| {k} | {s} | {m} | {sec * 1e3:.1f} ms | {r:.2f} | {target} |")
    if step_rows:
        lines += [
            "",
            "Streaming inference: one `step()` of a one-layer module (inference mode)",
            "against the torch.nn cell:",
            "",
            "| cell | shape | method | time per step | ratio |",
            "|---|---|---|---:|---:|",
        ]
        lines += [
            f"| {k} | {s} | {m} | {sec * 1e6:.0f} us | {r:.2f} |" for k, s, m, sec, r in step_rows
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
