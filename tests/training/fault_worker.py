"""A small deterministic training run for the fault-injection tests (run as a script).

    python fault_worker.py RUN_DIR MAX_STEPS STEP_SLEEP [--resume] [--out DIGEST_FILE]

It trains a GRU regressor with the real Trainer (checkpoint every step,
dropout so the RNG state matters) and, when it finishes, writes the sha256 of
its final weights to DIGEST_FILE. Like the CLI it exits with 128 + the signal
number when SIGINT/SIGTERM stopped it, and with 2 and one line on a UserError.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time

import torch
from torch import nn

from rnnkit.errors import UserError
from rnnkit.training import StepResult, TrainConfig, Trainer, TrainingInterrupted


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(3, 16, batch_first=True)
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(self.drop(out[:, -1])).squeeze(-1)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("run_dir")
    p.add_argument("max_steps", type=int)
    p.add_argument("sleep", type=float)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 12, 3, generator=g), torch.randn(8, generator=g)) for _ in range(5)]

    def loss_fn(model: nn.Module, batch, state) -> StepResult:
        time.sleep(args.sleep)
        x, y = batch
        return StepResult(nn.functional.mse_loss(model(x), y), None, y.numel())

    torch.manual_seed(0)
    model = Net()
    cfg = TrainConfig(
        max_steps=args.max_steps,
        lr=1e-2,
        warmup_steps=2,
        eval_interval=0,
        checkpoint_interval=1,
        carry_state=False,
        progress="none",
        plot=False,
        seed=3,
    )
    trainer = Trainer(
        model,
        loss_fn,
        batches,
        config=cfg,
        run_dir=args.run_dir,
        resume=args.resume,
        save_config={"kind": "fault-worker"},
        extra_json={"vocab.json": {"n": 1}},
    )
    try:
        trainer.fit()
    except TrainingInterrupted as exc:
        return exc.exit_status
    except KeyboardInterrupt as exc:  # the second signal (StopNow) or a plain Ctrl-C
        return getattr(exc, "exit_status", 130)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        h = hashlib.sha256()
        for name, t in sorted(model.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().numpy().tobytes())
        with open(args.out, "w") as f:
            f.write(h.hexdigest())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
