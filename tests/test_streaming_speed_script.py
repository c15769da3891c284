"""benchmarks/streaming_speed.py: the before/after switch and its table (times nothing)."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest
import torch

from rnnkit.nn import LSTM

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "streaming_speed.py"


def _load():
    spec = importlib.util.spec_from_file_location("streaming_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_before_forces_the_explicit_step_and_is_undone():
    module = _load()
    m = LSTM(3, 4)
    with torch.no_grad():
        assert m._step_blocker() is None
        with module.explicit_step():
            assert "explicit step (before)" in m._step_blocker()
        assert m._step_blocker() is None
    rows = [("speech stream", "after", "RTF 0.1", 1.0), ("speech stream", "before", "RTF 0.2", 2.0)]
    args = argparse.Namespace(threads="auto")
    text = module.render(rows, ["- load average"], args, 10, 2.0, 3)
    assert "| speech stream | before | RTF 0.2 | 2.000 | 2.00 |" in text


@pytest.mark.slow
def test_quick_run(capsys):
    assert _load().main(["--quick", "--processes", "0", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "textgen sample" in out and "speech stream" in out
