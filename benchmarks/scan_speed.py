"""MinGRU's log-space parallel scan vs its sequential twin vs torch.nn.GRU: time and memory.

For each T, forward + backward of one layer (B=8, D=H=256 by default) of

- ``parallel``:   rnnkit.nn.MinGRU, parallel=True (cumsum + logcumsumexp, Heinsen 2023),
- ``sequential``: the same module with parallel=False (same fused projection for all
                  steps, then h_t = a_t h_{t-1} + b_t in a Python loop over time),
- ``step loop``:  the same module's ``step()`` called T times (projection inside the
                  loop): the paper's "sequential mode", what a naive training loop does,
- ``nn.GRU``:     torch.nn.GRU with the same D and H (ATen's fused CPU kernel),
- ``no scan``:    the parallel module's projection and log-space gates with the scan
                  left out: a floor for any scan, so ``sequential / no scan`` is the
                  most that ``sequential / parallel`` could reach,

timed in one process, every method once per round in a new random order, after a
warm-up, reporting medians and ratios. ``parallel (A/A)`` is the parallel method
timed again under another name: its ratio to ``parallel`` must read 1.00 +/- 0.05,
else the table says it is unreliable. ``--processes N`` measures the headline
ratios again in fresh processes (N rounds of parallel, sequential, nn.GRU and
parallel again, in random order). The header records the load before and after,
the threads and the allocator setting. glibc's allocator is tuned and denormal
floats are flushed to zero for all alike.

Peak memory: each (method, T) runs once more in a fresh subprocess that
resets the kernel's peak-RSS counter (``/proc/self/clear_refs`` <- 5), reads
the resident set size (VmRSS) just before one forward + backward and the
peak (VmHWM) just after; the difference is the extra resident memory the
pass needed (activations saved for backward, gradients, temporaries),
including allocator slack, at page granularity. It is what the OS had to
provide, not torch's own bookkeeping; Linux only.

On a GPU (``--device cuda``) every timed run ends with ``torch.cuda.synchronize()``
and peak memory is CUDA's own count: ``torch.cuda.max_memory_allocated()``
during one forward + backward minus the memory allocated before it, in the
same process (the caching allocator's peak of live tensors, not its reserve).

Run: ``python benchmarks/scan_speed.py [--lengths 256,1024,4096] [--threads N] [--device cuda]
[--processes 5]``; ``--quick`` for a smoke run. How to read it: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import timing  # noqa: E402  (benchmarks/timing.py)

from rnnkit.nn import MinGRU  # noqa: E402
from rnnkit.runtime import tune_allocator  # noqa: E402

METHODS = ("parallel", "sequential", "step loop", "nn.GRU", "no scan")


def build(method: str, D: int, H: int, device: str = "cpu") -> torch.nn.Module:
    torch.manual_seed(0)
    if method == "nn.GRU":
        return torch.nn.GRU(D, H, batch_first=True).to(device)
    return MinGRU(D, H, parallel=method != "sequential").to(device)


def sync(device: str) -> None:
    """Wait for the GPU's queued work, so a timer around it measures the work itself."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def fwd_bwd(model: torch.nn.Module, x: torch.Tensor, method: str) -> None:
    if method == "no scan":
        # Everything but the recurrence: the projection and the log-space gates, then
        # b_t (plus log a_t, so both get a gradient) in place of h_t. No scan, however
        # fast, can make a MinGRU layer cheaper than this.
        w, b = model.layer_params(0)
        log_a, log_b = model.log_coefficients(torch.nn.functional.linear(x, w, b))
        out = log_b.exp() + log_a
    elif method == "step loop":
        state, ys = None, []
        for x_t in x.unbind(1):  # (B, D) per step
            y, state = model.step(x_t, state)
            ys.append(y)
        out = torch.stack(ys, 1)  # (B, T, H)
    else:
        out, _ = model(x)
    out.sum().backward()


def time_all(B: int, T: int, D: int, H: int, repeats: int, device: str = "cpu") -> dict[str, float]:
    """Median seconds of one forward + backward per method, random order every round."""
    models = {m: build(m, D, H, device) for m in METHODS}
    x = torch.randn(B, T, D, device=device, requires_grad=True)

    def run(m: str):
        def call() -> None:
            models[m].zero_grad(set_to_none=True)
            x.grad = None
            fwd_bwd(models[m], x, m)

        return call

    fns = timing.with_aa({m: run(m) for m in METHODS}, "parallel")
    times = timing.run_rounds(fns, warmup=1, repeats=repeats, sync=lambda: sync(device))
    return timing.medians(times)


def time_child(method: str, B: int, T: int, D: int, H: int, repeats: int, device: str) -> None:
    """In a fresh process: the median seconds of ``method``'s forward + backward, as JSON."""
    model = build(method, D, H, device)
    x = torch.randn(B, T, D, device=device, requires_grad=True)

    def call() -> None:
        model.zero_grad(set_to_none=True)
        x.grad = None
        fwd_bwd(model, x, method)

    times = timing.run_rounds({method: call}, warmup=1, repeats=repeats, sync=lambda: sync(device))
    print(json.dumps({"seconds": statistics.median(times[method])}))


def confirm(B: int, T: int, D: int, H: int, rounds: int, args: argparse.Namespace) -> str:
    """Headline ratios at T from fresh processes: a markdown row."""
    cmd = [
        sys.executable,
        __file__,
        "--batch",
        str(B),
        "--lengths",
        str(T),
        "--input-size",
        str(D),
        "--hidden-size",
        str(H),
        "--repeats",
        str(args.repeats),
        "--threads",
        str(args.threads),
        "--device",
        args.device,
        "--time-child",
    ]
    names = ["parallel", "sequential", "nn.GRU"]
    commands = {m: [*cmd, m] for m in names} | {"parallel (A/A)": [*cmd, "parallel"]}
    med = timing.medians(timing.alternate_processes(commands, rounds))
    aa = med["parallel (A/A)"] / med["parallel"]
    verdict = "ok" if timing.aa_verdict(aa) == "ok" else "UNRELIABLE"
    return (
        f"| {T} | {' | '.join(f'{med[m] * 1e3:.1f}' for m in names)} "
        f"| {med['sequential'] / med['parallel']:.2f}x | {med['nn.GRU'] / med['parallel']:.2f}x "
        f"| {aa:.2f} {verdict} |"
    )


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def memory_child(method: str, B: int, T: int, D: int, H: int) -> None:
    """In a fresh process: extra resident memory of one forward + backward, in bytes."""
    model = build(method, D, H)
    x = torch.randn(B, T, D, requires_grad=True)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak RSS (VmHWM) to the current RSS (Linux >= 4.0)
    before = _status_kib("VmRSS")
    fwd_bwd(model, x, method)
    print(json.dumps({"extra": (_status_kib("VmHWM") - before) * 1024}))


def cuda_peak_memory(method: str, B: int, T: int, D: int, H: int, device: str) -> str:
    """Extra CUDA memory (MB) of one forward + backward: the allocator's peak of live tensors."""
    model = build(method, D, H, device)
    x = torch.randn(B, T, D, device=device, requires_grad=True)
    sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    fwd_bwd(model, x, method)
    sync(device)
    extra = torch.cuda.max_memory_allocated(device) - before
    del model, x
    torch.cuda.empty_cache()
    return f"{extra / 2**20:.0f}"


def peak_memory(method: str, B: int, T: int, D: int, H: int, threads: int) -> str:
    cmd = [
        sys.executable,
        __file__,
        "--memory-child",
        method,
        "--batch",
        str(B),
        "--lengths",
        str(T),
        "--input-size",
        str(D),
        "--hidden-size",
        str(H),
        "--threads",
        str(threads),
    ]
    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return f"{res['extra'] / 2**20:.0f}"


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--lengths", default="256,1024,4096", help="comma-separated T")
    p.add_argument("--batch", type=int, default=8, help="B")
    p.add_argument("--input-size", type=int, default=256, help="D")
    p.add_argument("--hidden-size", type=int, default=256, help="H")
    p.add_argument("--repeats", type=int, default=7, help="timed runs per method and T")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    p.add_argument("--device", default="cpu", help="cpu, or cuda / cuda:N for a GPU")
    p.add_argument("--processes", type=int, default=0, help="rounds in fresh processes (0: none)")
    p.add_argument("--quick", action="store_true", help="a smoke run: T=32,64, 2 repeats")
    p.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--time-child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.lengths, args.repeats, args.processes = "32,64", 2, min(args.processes, 1)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"error: --device {args.device} but torch sees no CUDA device")
    if args.threads:
        torch.set_num_threads(args.threads)
    # Vanishing gradients pass through denormal floats, ~100x slower on x86; flushed for
    # every method alike (as rnnkit lab does).
    torch.set_flush_denormal(True)
    lengths = [int(t) for t in args.lengths.split(",")]
    B, D, H = args.batch, args.input_size, args.hidden_size
    if args.memory_child:
        memory_child(args.memory_child, B, lengths[0], D, H)
        return
    malloc = tune_allocator()
    if args.time_child:
        time_child(args.time_child, B, lengths[0], D, H, args.repeats, args.device)
        return
    load_before = timing.loadavg()
    where = timing.cpu_model()
    if args.device.startswith("cuda"):
        where = f"{torch.cuda.get_device_name(args.device)} (GPU), host {where}"
    print(
        f"# {where}; B={B} D={D} H={H}, forward+backward, median of {args.repeats} rounds "
        f"(each in a new random order)\n"
    )
    print(
        "| T | parallel ms | sequential ms | step loop ms | nn.GRU ms | no scan ms "
        "| sequential / parallel | step loop / parallel | nn.GRU / parallel "
        "| sequential / no scan (ceiling) "
        "| peak extra MB: parallel / sequential / step loop / nn.GRU | A/A |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    verdicts = []
    for T in lengths:
        reps = args.repeats if T <= 1024 else max(3, args.repeats // 2)
        t = time_all(B, T, D, H, reps, args.device)
        measured = METHODS[:4]  # memory: not for the no-scan floor
        if args.device.startswith("cuda"):
            mem = [cuda_peak_memory(m, B, T, D, H, args.device) for m in measured]
        else:
            mem = [peak_memory(m, B, T, D, H, torch.get_num_threads()) for m in measured]
        ms = " | ".join(f"{t[m] * 1e3:.1f}" for m in METHODS)
        ratios = " | ".join(f"{t[m] / t['parallel']:.2f}x" for m in measured[1:])
        ceiling = f"{t['sequential'] / t['no scan']:.2f}x"
        aa = t["parallel (A/A)"] / t["parallel"]
        verdicts.append((T, timing.aa_verdict(aa)))
        ok = "ok" if verdicts[-1][1] == "ok" else "UNRELIABLE"
        print(
            f"| {T} | {ms} | {ratios} | {ceiling} | {' / '.join(mem)} | {aa:.2f} {ok} |",
            flush=True,
        )
    print()
    for T, verdict in verdicts:
        if verdict != "ok":
            print(f"A/A at T={T}: {verdict}")
    if args.processes:
        print(
            f"\nSeparate processes: medians of {args.processes} fresh processes per method "
            "(random order per round; parallel twice: the process-level A/A)\n"
        )
        print(
            "| T | parallel ms | sequential ms | nn.GRU ms | sequential / parallel "
            "| nn.GRU / parallel | A/A |"
        )
        print("|---|---|---|---|---|---|---|")
        for T in lengths:
            print(confirm(B, T, D, H, args.processes, args), flush=True)
    print()
    print("\n".join(timing.environment(load_before, timing.loadavg(), malloc)))


if __name__ == "__main__":
    main()
