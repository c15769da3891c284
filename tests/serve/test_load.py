"""benchmarks/serve_load.py runs (bounded, loopback only) and sees no errors.

The default test is a small run that checks the script and the server under a
little concurrency; the full run of the docs (500 sentiment requests at 50
concurrent, 20 concurrent generation streams) is marked slow. No timing is
asserted: only the counts, the errors and that memory stays flat.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "serve_load.py"


def _run(model_dirs: dict, tmp_path: Path, *options: str) -> dict:
    out = tmp_path / "load.json"
    dirs = [str(model_dirs["sentiment"]), str(model_dirs["textgen"])]
    cmd = [sys.executable, str(SCRIPT), *dirs, *options, "--json", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "| sentiment predict + explain |" in proc.stdout
    return json.loads(out.read_text())


def _check(res: dict, requests: int, streams: int) -> None:
    assert res["sentiment"]["ok"] == requests and res["sentiment"]["errors"] == {}
    assert res["textgen"]["ok"] == streams and res["textgen"]["errors"] == {}
    assert res["health"]["pool"]["admitted"] == 0 and res["health"]["pool"]["rejected"] == 0


def test_a_small_load_run(model_dirs: dict, tmp_path: Path) -> None:
    res = _run(
        model_dirs,
        tmp_path,
        "--requests",
        "30",
        "--concurrency",
        "10",
        "--streams",
        "3",
        "--length",
        "30",
        "--max-seconds",
        "240",
    )
    _check(res, 30, 3)
    assert set(res["rss_mb"]) == {"started", "warm", "after_sentiment", "after_streams"}


@pytest.mark.slow
def test_the_documented_load_run(model_dirs: dict, tmp_path: Path) -> None:
    res = _run(
        model_dirs,
        tmp_path,
        "--requests",
        "500",
        "--concurrency",
        "50",
        "--streams",
        "20",
        "--length",
        "200",
        "--max-seconds",
        "540",
    )
    _check(res, 500, 20)
    rss = res["rss_mb"]
    assert rss["after_streams"] - rss["warm"] < 64, rss  # memory flat across the run
