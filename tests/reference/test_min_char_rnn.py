"""examples/min_char_rnn.py: it trains with the NumPy engine alone and its loss falls."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "min_char_rnn.py"


def _load():
    spec = importlib.util.spec_from_file_location("min_char_rnn", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_loss_falls(cell: str, capsys: pytest.CaptureFixture[str]):
    example = _load()
    losses = example.train(example.TEXT, cell=cell, steps=150, sample_every=75, seed=0)
    V = len(set(example.TEXT))
    assert len(losses) == 150
    assert abs(losses[0] - np.log(V)) < 0.3  # starts near a uniform guess
    assert np.mean(losses[-20:]) < 0.75 * np.mean(losses[:20])
    out = capsys.readouterr().out
    assert "step   150" in out and "nats/char" in out


def test_script_runs_on_a_file_and_reports_errors(tmp_path: Path):
    text = tmp_path / "text.txt"
    text.write_text("hello world, hello rnn. " * 20, encoding="utf-8")
    run = [sys.executable, str(EXAMPLE)]
    proc = subprocess.run(
        [*run, str(text), "--steps", "20", "--sample-every", "10"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "480 chars, 11 unique" in proc.stdout and "step    20" in proc.stdout
    proc = subprocess.run(
        [*run, str(tmp_path / "missing.txt")], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2 and "error: cannot read" in proc.stderr
    proc = subprocess.run(
        [*run, str(text), "--seq-length", "1000"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2 and "needs more than 1000" in proc.stderr
