"""rnnkit's textgen preset against a plain PyTorch loop, side by side, on any text file.

Both sides train the same model (embedding 64 -> 2-layer LSTM 256 -> linear head)
with truncated BPTT (64 streams x 100 characters, state carried) on the first
90% of the text for the same wall-clock budget, at the same time, each in its
own process with one torch thread (so the machine's two cores are shared
fairly and load from outside hits both alike):

- rnnkit: the real command a user runs,
  ``rnnkit textgen train --preset shakespeare --data FILE --train.max_seconds=S``;
- plain: the loop a competent user writes by hand with common defaults: AdamW,
  lr 3e-3 constant, betas (0.9, 0.999), weight decay 0.01, clipping at 1.0.

Both models are then scored the same way on the last 10% of the text (64
streams, state carried): nats per character, lower is better.

    python benchmarks/textgen_vs_plain.py --data tinyshakespeare --budget-seconds 600 \\
        --out runs/textgen-vs-plain
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

B, T, H, D, LAYERS = 64, 100, 256, 64, 2


class PlainLM(nn.Module):
    """nn.Embedding -> nn.LSTM -> nn.Linear, as written by hand."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, D)
        self.lstm = nn.LSTM(D, H, num_layers=LAYERS, batch_first=True)
        self.head = nn.Linear(H, vocab)

    def forward(self, x, state=None):
        h, state = self.lstm(self.embed(x), state)
        return self.head(h), state


@torch.no_grad()
def val_loss(forward, ids: torch.Tensor) -> float:
    """Mean next-character cross-entropy (nats) of ``ids``, 64 streams, state carried."""
    n = (len(ids) - 1) // B
    x_all, y_all = ids[: B * n].view(B, n), ids[1 : B * n + 1].view(B, n)  # (B, L)
    total, state = 0.0, None
    for s in range(0, n, T):
        logits, state = forward(x_all[:, s : s + T], state)
        total += F.cross_entropy(
            logits.flatten(0, 1), y_all[:, s : s + T].flatten(), reduction="sum"
        ).item()
    return total / (B * n)


def split(text: str) -> tuple[str, str]:
    cut = len(text) - round(len(text) * 0.1)
    return text[:cut], text[cut:]


def plain_main(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    text = Path(args.data).read_text(encoding="utf-8")
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    train_text, _ = split(text)
    train_ids, val_ids = ids[: len(train_text)], ids[len(train_text) :]
    model = PlainLM(len(chars))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.999), weight_decay=0.01)
    n = (len(train_ids) - 1) // B
    x_all, y_all = train_ids[: B * n].view(B, n), train_ids[1 : B * n + 1].view(B, n)
    state, pos, step, t0 = None, 0, 0, time.perf_counter()
    while time.perf_counter() - t0 < args.budget_seconds:
        if pos + T > n:
            pos, state = 0, None
        x, y = x_all[:, pos : pos + T], y_all[:, pos : pos + T]
        pos += T
        logits, state = model(x, state)
        state = tuple(s.detach() for s in state)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
    seconds = time.perf_counter() - t0
    model.eval()
    result = {
        "val_loss": val_loss(model, val_ids),
        "steps": step,
        "seconds": seconds,
        "tokens_per_s": step * B * T / seconds,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    Path(args.json).write_text(json.dumps(result, indent=1))


def rnnkit_score(run_dir: Path, val_text: str) -> dict:
    from rnnkit import TextGenerator

    gen = TextGenerator.load(run_dir, threads=1)
    vocab = gen.vocab_
    ids = vocab.encode(val_text)
    with torch.no_grad():
        loss = val_loss(lambda x, s: tuple(gen.model_(x, s))[:2], ids)
    return {"val_loss": loss, "parameters": sum(p.numel() for p in gen.model_.parameters())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="tinyshakespeare", help="dataset name or a UTF-8 text file")
    p.add_argument("--budget-seconds", type=float, default=600.0, help="per side (run together)")
    p.add_argument("--out", default="runs/textgen-vs-plain")
    p.add_argument("--threads", type=int, default=1, help="torch threads per side")
    p.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.plain:
        plain_main(args)
        return
    from rnnkit.textgen.data import load_text

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = load_text(args.data)
    data = out / "data.txt"
    data.write_text(text, encoding="utf-8")
    load0 = os.getloadavg()[0]
    rnnkit_cmd = [
        sys.executable, "-m", "rnnkit", "textgen", "train", "--preset", "shakespeare",
        "--data", str(data), f"--train.max_seconds={args.budget_seconds}",
        "--threads", str(args.threads), "--run-dir", str(out / "rnnkit"), "--overwrite",
        "--train.progress=lines", "--train.log_interval=100",
    ]  # fmt: skip
    plain_cmd = [
        sys.executable, __file__, "--plain", "--data", str(data), "--threads", str(args.threads),
        "--budget-seconds", str(args.budget_seconds), "--json", str(out / "plain.json"),
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    t0 = time.perf_counter()
    with open(out / "rnnkit.log", "w") as log:
        procs = [
            subprocess.Popen(rnnkit_cmd, env=env, stdout=log, stderr=subprocess.STDOUT),
            subprocess.Popen(plain_cmd, env=env),
        ]
        codes = [proc.wait() for proc in procs]
    if any(codes):
        raise SystemExit(f"a side failed: exit codes {codes}; see {out / 'rnnkit.log'}")
    wall = time.perf_counter() - t0
    load1 = os.getloadavg()[0]
    plain = json.loads((out / "plain.json").read_text())
    _, val_text = split(text)
    ours = rnnkit_score(out / "rnnkit", val_text)
    metrics = [
        json.loads(line)
        for line in (out / "rnnkit" / "metrics.jsonl").read_text().splitlines()
        if line.strip()
    ]
    steps = [m for m in metrics if "loss" in m and "kind" not in m]
    ours["steps"] = steps[-1]["step"] if steps else 0
    ours["tokens_per_s"] = sum(m["tokens_per_s"] for m in steps) / max(1, len(steps))
    lines = [
        f"## textgen preset vs a plain loop: {args.data}, {args.budget_seconds:.0f} s each, "
        "side by side",
        "",
        "| side | val nats/char | steps | tokens/s | parameters |",
        "|---|---|---|---|---|",
        f"| rnnkit `--preset shakespeare` | {ours['val_loss']:.4f} | {ours['steps']} | "
        f"{ours['tokens_per_s']:,.0f} | {ours['parameters']:,} |",
        f"| plain loop (AdamW 3e-3 constant, wd 0.01) | {plain['val_loss']:.4f} | "
        f"{plain['steps']} | {plain['tokens_per_s']:,.0f} | {plain['parameters']:,} |",
        "",
        f"- {args.threads} torch thread per side, both at once; wall {wall:.0f} s; load "
        f"average (1 min) before/after: {load0:.2f} / {load1:.2f}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "- both scored by the same function on the last 10% of the text (64 streams x 100 "
        "characters, state carried); the best/ model of the rnnkit run",
    ]
    report = "\n".join(lines)
    (out / "report.md").write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
