"""The recurrent speed benchmark runs end to end (tiny shapes; it times nothing here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "recurrent_speed.py"


def test_benchmark_script_runs(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("recurrent_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "recurrent.md"
    argv = [
        "--shapes",
        "2x3x4x5",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--output",
        str(out),
        "--step-shape",
        "4x5",
    ]
    assert module.main(argv) == 0
    text = out.read_text()
    for name in (
        "torch.nn",
        "rnnkit fast",
        "rnnkit explicit",
        "NumPy engine",
        "rnnkit step()",
        "nn.LSTMCell",
        "machine:",
    ):
        assert name in text
    assert "rnnkit explicit" in capsys.readouterr().out
