"""The recurrent speed benchmark runs end to end (tiny shapes; it times nothing here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "recurrent_speed.py"


def _load():
    spec = importlib.util.spec_from_file_location("recurrent_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(tmp_path, *extra: str) -> str:
    out = tmp_path / "recurrent.md"
    argv = ["--shapes", "2x3x4x5", "--repeats", "2", "--warmup", "0", "--output", str(out)]
    assert _load().main([*argv, "--step-shape", "4x5", *extra]) == 0
    return out.read_text()


def test_benchmark_script_runs(tmp_path, capsys):
    text = _run(tmp_path, "--processes", "0")
    for name in (
        "torch.nn",
        "torch.nn (A/A)",
        "A/A control:",
        "rnnkit fast",
        "rnnkit explicit",
        "NumPy engine",
        "rnnkit step()",
        "explicit step (before)",
        "nn.LSTMCell (A/A)",
        "machine:",
        "load average (1 min) before / after",
        "glibc malloc thresholds raised",
        "torch threads",
    ):
        assert name in text
    assert "rnnkit explicit" in capsys.readouterr().out


def test_aa_verdict():
    timing = _load().timing
    assert timing.aa_verdict(1.04) == "ok"
    assert timing.aa_verdict(0.96) == "ok"
    assert timing.aa_verdict(1.07).startswith("UNRELIABLE: the A/A ratio reads 1.07")


@pytest.mark.slow
def test_separate_process_confirmation(tmp_path):
    text = _run(tmp_path, "--kinds", "lstm", "--processes", "1", "--no-numpy")
    assert "Separate processes" in text
    assert "| lstm | 4x5 | rnnkit step() |" in text
    assert "| lstm | 2x3x4x5 | torch.nn (A/A) |" in text
