"""Char-level LM on tinyshakespeare: rnnkit's textgen vs a plain PyTorch loop, same budget.

Both sides train the same model (embedding 64 -> 2-layer LSTM 256 -> linear head)
on the first 90% of tinyshakespeare with truncated BPTT (64 streams, chunks of
100 characters, state carried), AdamW with warm-up + cosine decay, gradient
clipping at 1.0, for the same wall-clock budget, in this one process:

- rnnkit: the pieces of ``rnnkit.textgen`` (data, model, loss) + ``rnnkit.training.Trainer``
  (rnnkit.nn.LSTM, checkpoints, metrics.jsonl, evaluation).
- plain: ``torch.nn.LSTM`` and the loop a user writes by hand.

The validation loss (nats/char) of both is computed by the same plain function
on the last 10% (64 streams, state carried). Throughput is measured twice: over
each whole run, and in a short A/B phase that alternates the two sides
(``--ab-rounds`` x ``--ab-steps`` steps) so that load from other processes hits
both alike; the ratio reported is the median of the per-round ratios.

    python benchmarks/textgen_shakespeare.py --budget-seconds 900 \
        --data ../shared/data/tinyshakespeare/input.txt --out runs/bench-textgen
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rnnkit import TextGenerator
from rnnkit.config import to_dict
from rnnkit.textgen import load_config
from rnnkit.textgen.data import build_batches, prepare_data
from rnnkit.textgen.model import build_model, lm_loss
from rnnkit.training import TrainConfig, Trainer, lr_at, seed_everything, tune_allocator
from rnnkit.training.distributed import DistContext

B, T, H, D, LAYERS = 64, 100, 256, 64, 2


class PlainLM(nn.Module):
    """What a user writes by hand: nn.Embedding -> nn.LSTM -> nn.Linear."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, D)
        self.lstm = nn.LSTM(D, H, num_layers=LAYERS, batch_first=True)
        self.head = nn.Linear(H, vocab)

    def forward(self, x, state=None):
        h, state = self.lstm(self.embed(x), state)
        return self.head(h), state


def plain_train(model, train_ids, cfg: TrainConfig, *, budget: float, max_steps: int, log):
    """The hand-written TBPTT loop. Returns (steps, tokens/s over step time)."""
    n = (len(train_ids) - 1) // B
    x_all = train_ids[: B * n].view(B, n)  # (B, L)
    y_all = train_ids[1 : B * n + 1].view(B, n)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0}],
        lr=cfg.lr,
        betas=(cfg.beta1, cfg.beta2),
    )
    state, pos, step, step_time, t0 = None, 0, 0, 0.0, time.perf_counter()
    while step < max_steps and time.perf_counter() - t0 < budget:
        ts = time.perf_counter()
        if pos + T > n:
            pos, state = 0, None
        x, y = x_all[:, pos : pos + T], y_all[:, pos : pos + T]
        pos += T
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        logits, state = model(x, state)
        state = tuple(s.detach() for s in state)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())  # (B*T, V)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        step_time += time.perf_counter() - ts
        if log is not None:
            log(step, loss.item(), time.perf_counter() - t0)
    return step, step * B * T / step_time


@torch.no_grad()
def val_loss(forward, val_ids) -> float:
    """Mean next-char cross-entropy (nats) of the validation text, 64 streams, state carried."""
    n = (len(val_ids) - 1) // B
    x_all = val_ids[: B * n].view(B, n)  # (B, L)
    y_all = val_ids[1 : B * n + 1].view(B, n)
    total, state = 0.0, None
    for s in range(0, n, T):
        logits, state = forward(x_all[:, s : s + T], state)
        total += F.cross_entropy(
            logits.flatten(0, 1), y_all[:, s : s + T].flatten(), reduction="sum"
        ).item()
    return total / (B * n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget-seconds", type=float, default=900.0, help="per side")
    ap.add_argument("--data", default="tinyshakespeare", help="dataset name or the text file")
    ap.add_argument("--out", default="runs/bench-textgen", help="run directories + results")
    ap.add_argument("--eval-interval", type=int, default=200, help="steps between evaluations")
    ap.add_argument("--ab-rounds", type=int, default=6, help="A/B throughput rounds (0 = skip)")
    ap.add_argument("--ab-steps", type=int, default=8, help="steps per side per A/B round")
    ap.add_argument("--lr", type=float, default=3e-3)
    args = ap.parse_args()
    tune_allocator()  # process-wide: benefits both sides alike
    load_start = os.getloadavg()  # other processes on the machine (shared CPU)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    cfg = load_config(preset="shakespeare")
    cfg = replace(cfg, data=replace(cfg.data, source=args.data), run_dir=str(out / "rnnkit"))
    vocab, train_ids, val_ids = prepare_data(cfg.data)
    V = len(vocab)
    print(
        f"{len(train_ids):,} train / {len(val_ids):,} val chars, V={V}, threads "
        f"{torch.get_num_threads()}, budget {args.budget_seconds:.0f} s per side",
        flush=True,
    )
    dist = DistContext()
    train_cfg = replace(
        cfg.train,
        lr=args.lr,
        eval_interval=args.eval_interval,
        early_stopping_patience=0,
        progress="lines",
        log_interval=50,
        checkpoint_interval=500,
    )

    def rnnkit_trainer(model, max_steps, run_dir, **kw):
        batches, vbatches = build_batches(cfg.data, train_ids, val_ids, seed=1, dist=dist)
        c = replace(train_cfg, max_steps=max_steps, **kw)
        return Trainer(
            model,
            lm_loss,
            batches,
            val_data=vbatches,
            config=c,
            run_dir=run_dir,
            save_config=to_dict(cfg),
            extra_json={"vocab.json": vocab.to_dict()},
            dist=dist,
        )

    # -- A/B throughput: alternate short bursts so both sides see the same load.
    ratios, speeds = [], {"rnnkit": [], "plain": []}

    def ab_rnnkit(seed: int) -> float:
        seed_everything(seed)
        model = build_model(cfg.model, V)
        trainer = rnnkit_trainer(model, args.ab_steps, None, progress="none", eval_interval=0)
        return trainer.fit().tokens_per_s

    def ab_plain(seed: int) -> float:
        seed_everything(seed)
        return plain_train(
            PlainLM(V), train_ids, train_cfg, budget=1e9, max_steps=args.ab_steps, log=None
        )[1]

    for r in range(-1, args.ab_rounds):  # round -1 warms up both (first oneDNN calls)
        seed = max(r, 0)
        if r % 2 == 0:  # alternate the order: ABBA cancels a drift in machine load
            rk, pl = ab_rnnkit(seed), ab_plain(seed)
        else:
            pl, rk = ab_plain(seed), ab_rnnkit(seed)
        if r < 0:
            continue
        speeds["rnnkit"].append(rk)
        speeds["plain"].append(pl)
        ratios.append(rk / pl)
        print(
            f"A/B round {r}: rnnkit {rk:,.0f} tok/s, plain {pl:,.0f} tok/s, ratio {ratios[-1]:.3f}",
            flush=True,
        )
    ab = {k: statistics.median(v) for k, v in speeds.items()} if ratios else {}
    ab_ratio = statistics.median(ratios) if ratios else float("nan")
    # Steps that fit the budget, from the measured speed (cosine decay ends on time).
    tps = ab.get("plain", 12000.0)
    est_steps = max(100, int(args.budget_seconds * tps / (B * T) * 0.92))
    print(f"A/B median ratio {ab_ratio:.3f}; schedule length {est_steps} steps", flush=True)

    # -- rnnkit, full budget.
    seed_everything(cfg.train.seed)
    model = build_model(cfg.model, V)
    t0 = time.perf_counter()
    res = rnnkit_trainer(model, est_steps, out / "rnnkit", max_seconds=args.budget_seconds).fit()
    rnnkit_time = time.perf_counter() - t0
    model.eval()
    rnnkit_val = val_loss(model, val_ids)
    rnnkit_curve = [(e["step"], e["val_loss"]) for e in res.evals]
    gen = TextGenerator.load(out / "rnnkit" / "checkpoint")  # the final weights (best/: the best)
    sample = gen.generate("ROMEO:", 400, temperature=0.8, top_k=40, top_p=0.95, seed=1)

    # -- plain PyTorch, same budget and schedule length.
    seed_everything(cfg.train.seed)
    plain = PlainLM(V)
    plain_curve: list[tuple[int, float]] = []

    def log(step, loss, elapsed):
        if step % args.eval_interval == 0:
            plain.eval()
            plain_curve.append((step, val_loss(plain, val_ids)))
            plain.train()
            print(
                f"plain step {step}: loss {loss:.4f}, val {plain_curve[-1][1]:.4f}, "
                f"{elapsed:.0f} s",
                flush=True,
            )

    t0 = time.perf_counter()
    plain_steps, plain_tps = plain_train(
        plain, train_ids, train_cfg, budget=args.budget_seconds, max_steps=est_steps, log=log
    )
    plain_time = time.perf_counter() - t0
    plain.eval()
    plain_val = val_loss(plain, val_ids)

    result = {
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "settings": {
            "budget_seconds": args.budget_seconds,
            "B": B,
            "T": T,
            "H": H,
            "D": D,
            "layers": LAYERS,
            "lr": args.lr,
            "schedule_steps": est_steps,
            "threads": torch.get_num_threads(),
            "vocab": V,
        },
        "ab": {
            "rounds": args.ab_rounds,
            "steps": args.ab_steps,
            "ratio_median": ab_ratio,
            "rnnkit_tok_s_median": ab.get("rnnkit"),
            "plain_tok_s_median": ab.get("plain"),
            "ratios": ratios,
        },
        "rnnkit": {
            "steps": res.step,
            "wall_s": rnnkit_time,
            "tok_s": res.tokens_per_s,
            "final_val_nats": rnnkit_val,
            "val_curve": rnnkit_curve,
            "stop": res.stop_reason,
        },
        "plain": {
            "steps": plain_steps,
            "wall_s": plain_time,
            "tok_s": plain_tps,
            "final_val_nats": plain_val,
            "val_curve": plain_curve,
        },
        "sample": sample,
    }
    (out / "results.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "sample"}, indent=1))
    print(
        f"rnnkit/plain tokens/s: whole runs {res.tokens_per_s / plain_tps:.3f}, "
        f"A/B median {ab_ratio:.3f}"
    )
    print(
        f"final val nats/char: rnnkit {rnnkit_val:.4f} ({rnnkit_val / math.log(2):.4f} "
        f"bits), plain {plain_val:.4f}"
    )
    print("sample:\n" + sample)


if __name__ == "__main__":
    main()
