"""A bounded load test of ``rnnkit serve`` on loopback: latency, throughput, errors, memory.

Starts ``rnnkit serve`` as a subprocess on 127.0.0.1 (a free port), then:

1. warm-up: a few sentiment requests and one generation (not measured);
2. ``--requests`` sentiment predictions (with explanations) at ``--concurrency``;
3. ``--streams`` simultaneous text generations of ``--length`` characters, each read
   to the end as server-sent events (time to first character, whole stream).

Reports p50/p99 latency, throughput, errors by status, and the server's resident
memory (VmRSS) after start-up, after the warm-up and after each phase, as a
Markdown table (``--json PATH`` also writes the figures). Everything is bounded:
the counts, and ``--max-seconds`` for the whole run (the server is stopped then).

Usage (from the repository root)::

    .venv/bin/python benchmarks/serve_load.py                  # tiny models trained here
    .venv/bin/python benchmarks/serve_load.py runs/sst2 runs/shakespeare --requests 500 \
        --concurrency 50 --streams 20

Without RUN_DIRs it trains a tiny sentiment and a tiny text model first (seconds).
Needs the dev extra (httpx) and the serve extra.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

TEXTS = ["good fun film", "great and fun", "bad dull film", "awful and dull"] * 6
LABELS = ["pos", "pos", "neg", "neg"] * 6
TEXT = "the cat sat on the mat. the dog sat on the log. " * 40


def tiny_models(root: Path) -> list[Path]:
    """A tiny sentiment model and a tiny character model (seconds on a CPU)."""
    import rnnkit

    quiet = {"verbose": False, "seed": 0, "threads": 1}
    clf = rnnkit.SentimentClassifier(preset="tiny", epochs=3, hidden_size=16, **quiet)
    gen = rnnkit.TextGenerator(preset="tiny", max_steps=20, eval_interval=10, **quiet)
    return [
        clf.fit(TEXTS, LABELS, val_texts=TEXTS[:8], val_labels=LABELS[:8]).save(root / "sentiment"),
        gen.fit(TEXT, val_text=TEXT[:300]).save(root / "textgen"),
    ]


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(dirs: list[Path], args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "rnnkit", "serve", *map(str, dirs), "--port", "0"]
    cmd += ["--workers", str(args.workers), "--queue-size", str(args.queue_size)]
    cmd += ["--threads", str(args.threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    url: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            m = re.search(r"serving on (http://127\.0\.0\.1:\d+)/", line)
            if m:
                url.append(m.group(1))
                ready.set()
            elif "error" in line.lower():
                print(line, end="", file=sys.stderr)

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(120):
        proc.kill()
        raise SystemExit("rnnkit serve did not start within 120 s")
    return proc, url[0]


def percentile(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))
    return xs[k]


async def sentiment_phase(c: httpx.AsyncClient, name: str, n: int, conc: int) -> dict[str, Any]:
    sem = asyncio.Semaphore(conc)
    lat: list[float] = []
    codes: Counter[int] = Counter()

    async def one(i: int) -> None:
        async with sem:
            t = time.perf_counter()
            try:
                r = await c.post(f"/api/{name}/predict", json={"text": TEXTS[i % len(TEXTS)]})
                codes[r.status_code] += 1
            except httpx.HTTPError as exc:
                codes[type(exc).__name__] += 1  # type: ignore[index]
                return
            if r.status_code == 200:
                lat.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    wall = time.perf_counter() - t0
    return {
        "requests": n,
        "concurrency": conc,
        "ok": codes.get(200, 0),
        "errors": {str(k): v for k, v in codes.items() if k != 200},
        "p50_ms": 1000 * percentile(lat, 50),
        "p99_ms": 1000 * percentile(lat, 99),
        "throughput_rps": codes.get(200, 0) / wall,
        "seconds": wall,
    }


async def stream_phase(c: httpx.AsyncClient, name: str, n: int, length: int) -> dict[str, Any]:
    first: list[float] = []
    whole: list[float] = []
    codes: Counter[Any] = Counter()
    chars = 0

    async def one() -> None:
        nonlocal chars
        t = time.perf_counter()
        body = {"prompt": "the ", "length": length, "temperature": 0.8}
        try:
            async with c.stream("POST", f"/api/{name}/generate", json=body) as r:
                codes[r.status_code] += 1
                if r.status_code != 200:
                    return
                got, done = 0, False
                async for line in r.aiter_lines():
                    if line.startswith("data:") and '"token"' in line:
                        if got == 0:
                            first.append(time.perf_counter() - t)
                        got += 1
                    elif line.startswith("event: done"):
                        done = True
                chars += got
                if not done or got != length:
                    codes["incomplete"] += 1
                whole.append(time.perf_counter() - t)
        except httpx.HTTPError as exc:
            codes[type(exc).__name__] += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    wall = time.perf_counter() - t0
    return {
        "streams": n,
        "length": length,
        "ok": codes.get(200, 0) - codes.get("incomplete", 0),
        "errors": {str(k): v for k, v in codes.items() if k != 200},
        "first_char_p50_ms": 1000 * percentile(first, 50),
        "first_char_p99_ms": 1000 * percentile(first, 99),
        "stream_p50_s": percentile(whole, 50),
        "stream_p99_s": percentile(whole, 99),
        "chars_per_s": chars / wall,
        "seconds": wall,
    }


async def run(url: str, pid: int, args: argparse.Namespace) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=max(args.concurrency, args.streams) + 4)
    async with httpx.AsyncClient(base_url=url, timeout=args.max_seconds, limits=limits) as c:
        models = {m["app"]: m["name"] for m in (await c.get("/models")).json()}
        out: dict[str, Any] = {"rss_mb": {"started": rss_mb(pid)}}
        if "sentiment" in models:
            await sentiment_phase(c, models["sentiment"], 20, 5)
        if "textgen" in models:
            await stream_phase(c, models["textgen"], 1, 50)
        out["rss_mb"]["warm"] = rss_mb(pid)
        if "sentiment" in models and args.requests:
            out["sentiment"] = await sentiment_phase(
                c, models["sentiment"], args.requests, args.concurrency
            )
            out["rss_mb"]["after_sentiment"] = rss_mb(pid)
        if "textgen" in models and args.streams:
            out["textgen"] = await stream_phase(c, models["textgen"], args.streams, args.length)
            out["rss_mb"]["after_streams"] = rss_mb(pid)
        out["health"] = (await c.get("/health")).json()
    return out


def table(res: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        "| phase | load | ok | errors | p50 | p99 | throughput |",
        "|---|---|---|---|---|---|---|",
    ]
    s = res.get("sentiment")
    if s:
        lines.append(
            f"| sentiment predict + explain | {s['requests']} requests, {s['concurrency']} "
            f"concurrent | {s['ok']} | {sum(s['errors'].values())} | {s['p50_ms']:.1f} ms | "
            f"{s['p99_ms']:.1f} ms | {s['throughput_rps']:.0f} requests/s |"
        )
    g = res.get("textgen")
    if g:
        lines.append(
            f"| textgen streams, first character | {g['streams']} concurrent x {g['length']} "
            f"chars | {g['ok']} | {sum(g['errors'].values())} | {g['first_char_p50_ms']:.1f} ms | "
            f"{g['first_char_p99_ms']:.1f} ms | {g['chars_per_s']:.0f} chars/s |"
        )
        lines.append(
            f"| textgen streams, whole stream | | | | {g['stream_p50_s']:.2f} s | "
            f"{g['stream_p99_s']:.2f} s | |"
        )
    rss = res["rss_mb"]
    lines.append("")
    lines.append("Server memory (VmRSS): " + ", ".join(f"{k} {v:.0f} MB" for k, v in rss.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dirs", nargs="*", help="models to serve (default: tiny ones trained here)")
    p.add_argument("--requests", type=int, default=500, help="sentiment requests")
    p.add_argument("--concurrency", type=int, default=50, help="sentiment requests in flight")
    p.add_argument("--streams", type=int, default=20, help="concurrent generation streams")
    p.add_argument("--length", type=int, default=200, help="characters per stream")
    p.add_argument("--workers", type=int, default=2, help="rnnkit serve --workers")
    p.add_argument("--queue-size", type=int, default=64, help="rnnkit serve --queue-size")
    p.add_argument("--threads", type=int, default=1, help="rnnkit serve --threads")
    p.add_argument("--max-seconds", type=float, default=300, help="bound on the whole run")
    p.add_argument("--json", default=None, help="also write the figures as JSON here")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        dirs = [Path(d) for d in args.run_dirs] or tiny_models(Path(tmp))
        proc, url = start_server(dirs, args)
        try:
            res = asyncio.run(asyncio.wait_for(run(url, proc.pid, args), args.max_seconds))
        finally:
            proc.terminate()
            proc.wait(20)
    res["setup"] = {
        "workers": args.workers,
        "queue_size": args.queue_size,
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "models": [str(d) for d in dirs],
    }
    print(table(res, args))
    la = res["setup"]["load_average"]
    print(f"\n{os.cpu_count()} CPUs, load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} at the end")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    errors = sum(sum(res[k]["errors"].values()) for k in ("sentiment", "textgen") if k in res)
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
