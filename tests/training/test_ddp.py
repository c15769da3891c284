"""DDP through torchrun: 2 CPU processes (gloo) end with identical weights, equal to the
single-process oracle that sees both ranks' rows in one batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from rnnkit.training import read_metrics

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_two_process_ddp_matches_single_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(WORKER),
        str(tmp_path / "ddp"),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The oracle runs in this process (WORLD_SIZE unset): one rank, all 8 rows per batch.
    sys.path.insert(0, str(WORKER.parent))
    try:
        import ddp_worker
    finally:
        sys.path.remove(str(WORKER.parent))
    (tmp_path / "single").mkdir()
    ddp_worker.main(tmp_path / "single")
    r0 = load_file(tmp_path / "ddp" / "rank0.safetensors")
    r1 = load_file(tmp_path / "ddp" / "rank1.safetensors")
    single = load_file(tmp_path / "single" / "rank0.safetensors")
    for name in r0:
        assert torch.equal(r0[name], r1[name]), name
        torch.testing.assert_close(r0[name], single[name], rtol=1e-4, atol=1e-5)
    # Rank 0 alone logs: one record per step, not two.
    steps = [r["step"] for r in read_metrics(tmp_path / "ddp" / "run" / "metrics.jsonl")]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert (tmp_path / "ddp" / "run" / "checkpoint" / "model.safetensors").exists()
