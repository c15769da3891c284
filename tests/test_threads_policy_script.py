"""benchmarks/threads_policy.py: its timing loop and table on a trivial step (times nothing)."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "threads_policy.py"


def test_measure_and_render():
    spec = importlib.util.spec_from_file_location("threads_policy", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    seen = []
    med = module.measure(lambda: seen.append(torch.get_num_threads()), 2, 1, rounds=2, steps=1)
    assert set(med) == {"1 thread", "torch default", "torch default (A/A)", "policy"}
    assert set(seen) <= {1, 2} and 1 in seen
    args = argparse.Namespace(busy=2)
    text = module.render([("busy", "char LM", 1, med)], args, 2, 0.1, True, 2, 1)
    assert "| busy | char LM | 1 |" in text and "(vs 1 thread)" in text
    assert "load average (1 min) before / after" in text
    module.char_lm_step(quick=True)()  # the workloads build and run
    module.translation_step(quick=True)()
