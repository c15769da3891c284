"""Run by tests/training/test_ddp.py under torchrun (not collected by pytest).

Trains a tiny character LM for a few steps with DDP and writes this rank's
final weights to ``OUT/rank<r>.safetensors``. With ``WORLD_SIZE`` unset it is
the single-process oracle: the same data as both ranks together in one batch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from rnnkit.textgen.data import StreamBatches
from rnnkit.textgen.model import CharLM, CharLMConfig
from rnnkit.training import (
    StepResult,
    TrainConfig,
    Trainer,
    cleanup_distributed,
    init_distributed,
)

ROWS = 8  # streams in all, split across the ranks


def lm_loss(model, batch, state):
    out = model(batch.x, state)
    loss = F.cross_entropy(out.logits.flatten(0, 1), batch.y.flatten())
    return StepResult(loss, out.state, batch.y.numel())


def main(out: Path) -> None:
    dist = init_distributed()
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 7, (3000,), generator=g)
    # Different initial weights per rank: DDP must broadcast rank 0's.
    torch.manual_seed(100 + dist.rank)
    model = CharLM(CharLMConfig(vocab_size=7, num_layers=1, hidden_size=16, embed_dim=8))
    data = StreamBatches(
        ids, ROWS // dist.world_size, 10, rank=dist.rank, world_size=dist.world_size
    )
    cfg = TrainConfig(
        max_steps=6,
        lr=1e-2,
        warmup_steps=0,
        eval_interval=0,
        checkpoint_interval=3,
        grad_accum_steps=2,
        progress="none",
        plot=False,
    )
    Trainer(model, lm_loss, data, config=cfg, run_dir=out / "run", dist=dist).fit()
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        out / f"rank{dist.rank}.safetensors",
    )
    cleanup_distributed()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
