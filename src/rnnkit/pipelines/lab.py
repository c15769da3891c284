"""``rnnkit lab``: which cells learn long-range dependencies, and at what length?

Three tasks from the literature, generated on the fly (``rnnkit.data.synthetic``):

- ``adding``: the adding problem (Hochreiter & Schmidhuber 1997). Regress the
  sum of two marked values from a (value, marker) sequence. Metric: MSE on a
  fixed held-out batch; the trivial baseline predicts 1.0 (MSE ~ 1/6).
- ``copy``: copy memory (Arjovsky et al. 2016). Replay ``M`` symbols after
  ``T`` blank steps. Metric: error rate on the replayed symbols; baseline
  ``1 - 1/K`` (a uniform guess).
- ``selective``: selective copying (Gu & Dao 2023; Feng et al. 2024). Replay
  ``N`` tokens scattered among noise, in order. Metric and baseline as copy.

A task counts as **solved** when the held-out metric falls below
``solved_ratio`` (default 0.01) times the baseline's. The model is
``(linear | embedding) -> rnnkit.nn.build_recurrent(cell) -> linear head``.

Commands::

    rnnkit lab adding --cell lstm --length 200          # train, report, plot
    rnnkit lab sweep --cells rnn,lstm,gru,mingru,minlstm --lengths 50,100,200,400

The training loop is written out here (~30 lines) rather than taken from
``rnnkit.training.Trainer``: the lab must stop the moment a task is solved,
and that loop stops on a step/time budget or on early stopping only.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.data.synthetic import (
    Batch,
    adding_problem,
    copy_memory,
    selective_copying,
)
from rnnkit.errors import UserError
from rnnkit.nn.registry import CELL_NAMES, build_recurrent

__all__ = [
    "TASKS",
    "LabConfig",
    "LabModel",
    "LabResult",
    "add_cli",
    "run_lab",
    "run_sweep",
    "save_curve_plot",
    "save_gradient_flow",
    "save_sweep_grid",
]

TASKS: tuple[str, ...] = ("adding", "copy", "selective")


@dataclass(kw_only=True)
class LabConfig:
    """One lab run: a task at one length, one cell, a training budget.

    Attributes:
        task: "adding", "copy" or "selective".
        cell: a name in ``rnnkit.nn.registry.RECURRENT``.
        length: T, the span the dependency must bridge.
        hidden_size, num_layers: of the recurrent module.
        embed_size: token embedding size (copy, selective).
        num_symbols: K data symbols (copy, selective).
        memory_length: M symbols to copy (copy).
        num_tokens: N tokens to pick out (selective).
        batch_size, lr, grad_clip: Adam on fresh batches every step.
        max_steps, max_seconds: the budget (0 seconds = no time limit).
        eval_every, eval_size: held-out evaluation cadence and batch size.
        solved_ratio: solved when metric < solved_ratio * baseline metric.
        seed: seeds weights, training batches and the held-out batch.
    """

    task: str = "adding"
    cell: str = "lstm"
    length: int = 100
    hidden_size: int = 64
    num_layers: int = 1
    embed_size: int = 32
    num_symbols: int = 8
    memory_length: int = 10
    num_tokens: int = 8
    batch_size: int = 64
    lr: float = 3e-3
    grad_clip: float = 1.0
    max_steps: int = 2000
    max_seconds: float = 0.0
    eval_every: int = 50
    eval_size: int = 512
    solved_ratio: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise UserError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if self.cell not in CELL_NAMES:
            raise UserError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELL_NAMES)}")
        minimum = {
            "length": 2,
            "hidden_size": 1,
            "num_layers": 1,
            "embed_size": 1,
            "num_symbols": 2,
            "memory_length": 1,
            "num_tokens": 1,
            "batch_size": 1,
            "max_steps": 1,
            "eval_every": 1,
            "eval_size": 1,
        }
        for name, low in minimum.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise UserError(
                    f"{name.replace('_', '-')} must be an integer >= {low}, got {value!r}"
                )
        if self.task == "selective" and self.length < self.num_tokens:
            raise UserError(
                f"selective copying needs length >= num-tokens ({self.num_tokens}) "
                f"to scatter the tokens, got length {self.length}"
            )
        for name in ("lr", "solved_ratio"):
            if not getattr(self, name) > 0:
                raise UserError(f"{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        for name in ("grad_clip", "max_seconds"):
            if not getattr(self, name) >= 0:
                raise UserError(
                    f"{name.replace('_', '-')} must be >= 0 (0 = off), got {getattr(self, name)}"
                )

    def batch(self, size: int, seed: int | torch.Generator) -> Batch:
        """A batch of this task: inputs and targets as in ``rnnkit.data.synthetic``."""
        if self.task == "adding":
            return adding_problem(size, self.length, seed)
        if self.task == "copy":
            return copy_memory(size, self.length, self.num_symbols, self.memory_length, seed)
        return selective_copying(size, self.length, self.num_tokens, self.num_symbols, seed)


class LabModel(nn.Module):
    """Input layer -> recurrent module -> linear head, for the three tasks.

    adding: (B, T, 2) -> recurrent -> the last step's output -> (B, 1).
    copy: (B, T') ids -> embedding -> recurrent -> (B, T', K + 1) logits at every step.
    selective: (B, T + N) ids -> ... -> (B, N, K + 1) logits at the N query steps.
    """

    def __init__(self, cfg: LabConfig) -> None:
        super().__init__()
        self.task = cfg.task
        self.num_tokens = cfg.num_tokens
        if cfg.task == "adding":
            self.embed: nn.Module = nn.Identity()  # the recurrent layer's W_ih is the input map
            input_size, out = 2, 1
        else:
            # ids 0..K+1: blank/noise, K symbols, the delimiter/query marker.
            self.embed = nn.Embedding(cfg.num_symbols + 2, cfg.embed_size)
            input_size, out = cfg.embed_size, cfg.num_symbols + 1
        self.rnn = build_recurrent(cfg.cell, input_size, cfg.hidden_size, num_layers=cfg.num_layers)
        self.head = nn.Linear(cfg.hidden_size, out)

    def forward(self, inputs: Tensor) -> Tensor:
        y, _ = self.rnn(self.embed(inputs))  # (B, T, H)
        if self.task == "adding":
            return self.head(y[:, -1])  # (B, 1)
        if self.task == "selective":
            y = y[:, -self.num_tokens :]  # (B, N, H): the query steps
        return self.head(y)  # (B, T or N, K + 1)


def _loss(cfg: LabConfig, pred: Tensor, targets: Tensor) -> Tensor:
    if cfg.task == "adding":
        return F.mse_loss(pred, targets)
    return F.cross_entropy(pred.flatten(0, 1), targets.flatten())  # (B*T, K+1) vs (B*T,)


@torch.no_grad()
def _metric(cfg: LabConfig, pred: Tensor, targets: Tensor) -> float:
    """Held-out metric: MSE (adding) or error rate on the symbols to recall (copy, selective)."""
    if cfg.task == "adding":
        return float(F.mse_loss(pred, targets))
    if cfg.task == "copy":  # only the replayed symbols count, not the blanks
        M = cfg.memory_length
        pred, targets = pred[:, -M:], targets[:, -M:]  # (B, M, K + 1), (B, M)
    return float((pred.argmax(-1) != targets).float().mean())


def _baseline(cfg: LabConfig, held_out: Batch) -> float:
    """The trivial baseline's metric: predict 1.0 (adding) or guess uniformly (1 - 1/K)."""
    if cfg.task == "adding":
        return float(F.mse_loss(torch.ones_like(held_out.targets), held_out.targets))
    return 1.0 - 1.0 / cfg.num_symbols


@dataclass
class LabResult:
    """What one run found. ``curve``: (step, train loss) each step; ``evals``: (step, metric)."""

    config: LabConfig
    metric_name: str
    baseline: float
    threshold: float
    solved_at: int | None
    best_metric: float
    steps: int
    seconds: float
    curve: list[tuple[int, float]] = field(default_factory=list)
    evals: list[tuple[int, float]] = field(default_factory=list)

    @property
    def solved(self) -> bool:
        return self.solved_at is not None

    def summary(self) -> str:
        if self.solved:
            return f"solved at step {self.solved_at}"
        return (
            f"not solved in {self.steps} steps (best {self.metric_name} "
            f"{self.best_metric:.4g} = {self.best_metric / self.baseline:.3g} x baseline)"
        )


def run_lab(cfg: LabConfig, log: Callable[[str], None] | None = None) -> LabResult:
    """Train on fresh batches until solved or out of budget; evaluate on a fixed batch."""
    torch.manual_seed(cfg.seed)
    model = LabModel(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    stream = torch.Generator().manual_seed(cfg.seed)  # training batches
    held_out = cfg.batch(cfg.eval_size, cfg.seed + 1_000_003)  # never trained on
    baseline = _baseline(cfg, held_out)
    threshold = cfg.solved_ratio * baseline
    name = "mse" if cfg.task == "adding" else "error"
    res = LabResult(cfg, name, baseline, threshold, None, math.inf, 0, 0.0)
    start = time.perf_counter()
    for step in range(1, cfg.max_steps + 1):
        batch = cfg.batch(cfg.batch_size, stream)
        loss = _loss(cfg, model(batch.inputs), batch.targets)
        if not math.isfinite(loss.item()):
            raise UserError(
                f"the training loss is {loss.item()} at step {step} ({cfg.cell}, "
                f"length {cfg.length}); lower --lr (now {cfg.lr:g}) and run again"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        res.curve.append((step, loss.item()))
        res.steps, res.seconds = step, time.perf_counter() - start
        out_of_time = bool(cfg.max_seconds) and res.seconds >= cfg.max_seconds
        if step % cfg.eval_every and step != cfg.max_steps and not out_of_time:
            continue
        model.eval()
        with torch.no_grad():
            metric = _metric(cfg, model(held_out.inputs), held_out.targets)
        model.train()
        res.evals.append((step, metric))
        res.best_metric = min(res.best_metric, metric)
        if log is not None:
            log(
                f"{cfg.cell} T={cfg.length} step {step}: train loss {loss.item():.4g}, "
                f"held-out {name} {metric:.4g} ({metric / baseline:.3g} x baseline), "
                f"{step / res.seconds:.1f} steps/s"
            )
        if metric < threshold:
            res.solved_at = step
            break
        if out_of_time:
            break
    return res


# ----------------------------------------------------------------- pictures


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def _draw(ax, res: LabResult) -> None:
    """Held-out metric / baseline (log scale) with the 'solved' line."""
    steps = [s for s, _ in res.evals]
    ratios = [m / res.baseline for _, m in res.evals]
    ax.semilogy(steps, ratios, marker="o", ms=2, lw=1.2, color="tab:blue")
    ax.axhline(res.config.solved_ratio, color="tab:green", ls="--", lw=0.8)
    ax.axhline(1.0, color="gray", ls=":", lw=0.8)
    if res.solved:
        ax.axvline(res.solved_at, color="tab:green", lw=0.8)
    ax.grid(alpha=0.3)


def save_curve_plot(res: LabResult, path: str | Path) -> Path:
    """Learning curves of one run: training loss and held-out metric relative to the baseline."""
    plt = _pyplot()
    path = Path(path)
    fig, (ax_l, ax_m) = plt.subplots(1, 2, figsize=(10, 3.8))
    steps, losses = zip(*res.curve, strict=True)
    ax_l.semilogy(steps, losses, lw=0.6, alpha=0.4, color="tab:blue")
    ema, smooth = losses[0], []
    for v in losses:  # the per-step loss is noisy: show an EMA over it
        ema = 0.95 * ema + 0.05 * v
        smooth.append(ema)
    ax_l.semilogy(steps, smooth, lw=1.5, color="tab:blue")
    ax_l.set(xlabel="step", ylabel="training loss", title="training loss (EMA 0.95)")
    ax_l.grid(alpha=0.3)
    _draw(ax_m, res)
    ax_m.set(xlabel="step", ylabel=f"held-out {res.metric_name} / baseline", title=res.summary())
    c = res.config
    fig.suptitle(f"{c.task}, {c.cell}, T={c.length}, H={c.hidden_size}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def save_sweep_grid(results: list[LabResult], path: str | Path) -> Path:
    """A grid of learning curves: one row per cell, one column per length."""
    plt = _pyplot()
    path = Path(path)
    cells = list(dict.fromkeys(r.config.cell for r in results))
    lengths = sorted({r.config.length for r in results})
    fig, axes = plt.subplots(
        len(cells),
        len(lengths),
        squeeze=False,
        sharey=True,
        figsize=(2.8 * len(lengths), 2.1 * len(cells)),
    )
    for r in results:
        ax = axes[cells.index(r.config.cell)][lengths.index(r.config.length)]
        _draw(ax, r)
        ax.set_title(
            f"{r.config.cell} T={r.config.length}: "
            + (f"solved @{r.solved_at}" if r.solved else "not solved"),
            fontsize=8,
        )
        ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("step", fontsize=8)
    for row in axes:
        row[0].set_ylabel("metric / baseline", fontsize=8)
    task = results[0].config.task if results else ""
    fig.suptitle(
        f"{task}: held-out metric / trivial baseline "
        f"(dashed: solved at {results[0].config.solved_ratio:g})"
        if results
        else ""
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# -------------------------------------------------------------------- sweep

_COLUMNS = (
    "task",
    "cell",
    "length",
    "solved",
    "solved_at",
    "best_metric",
    "baseline",
    "best_ratio",
    "steps",
    "seconds",
)


def _row(r: LabResult) -> dict[str, object]:
    c = r.config
    return {
        "task": c.task,
        "cell": c.cell,
        "length": c.length,
        "solved": r.solved,
        "solved_at": r.solved_at if r.solved else "",
        "best_metric": f"{r.best_metric:.4g}",
        "baseline": f"{r.baseline:.4g}",
        "best_ratio": f"{r.best_metric / r.baseline:.3g}",
        "steps": r.steps,
        "seconds": f"{r.seconds:.1f}",
    }


def markdown_table(results: list[LabResult]) -> str:
    """Results as a markdown table, one row per (cell, length)."""
    head = (
        "cell",
        "T",
        "solved at step",
        f"best {results[0].metric_name} / baseline" if results else "best / baseline",
        "steps run",
        "seconds",
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        lines.append(
            f"| {r.config.cell} | {r.config.length} | "
            f"{r.solved_at if r.solved else 'not solved'} | "
            f"{r.best_metric / r.baseline:.3g} | {r.steps} | {r.seconds:.0f} |"
        )
    return "\n".join(lines) + "\n"


def run_sweep(
    base: LabConfig,
    cells: list[str],
    lengths: list[int],
    out_dir: str | Path,
    log: Callable[[str], None] | None = None,
) -> list[LabResult]:
    """Every cell at every length; writes results.csv, results.md and grid.png in ``out_dir``.

    Beside them, ``gradients.png``: ``rnnkit gradients`` for the classic cells
    among ``cells`` at the longest length, with torch's default init (the
    lab's init): how far back a gradient reaches before any training.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for length in lengths:
        for cell in cells:
            r = run_lab(replace(base, cell=cell, length=length), log)
            if log is not None:
                log(f"== {cell} T={length}: {r.summary()} ({r.seconds:.0f} s)")
            results.append(r)
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=_COLUMNS)
        writer.writeheader()
        writer.writerows(_row(r) for r in results)
    (out / "results.md").write_text(markdown_table(results))
    save_sweep_grid(results, out / "grid.png")
    save_gradient_flow(base, cells, max(lengths), out / "gradients.png")
    return results


def save_gradient_flow(base: LabConfig, cells: list[str], length: int, path: Path) -> Path | None:
    """The gradient-flow picture of ``rnnkit gradients`` for the rnn/lstm/gru among ``cells``."""
    from rnnkit.pipelines.gradients import GradientsConfig, cell_gradients, save_plot

    classic = tuple(c for c in cells if c in ("rnn", "lstm", "gru"))
    if not classic:
        return None  # the NumPy engine has no min-cells
    cfg = GradientsConfig(
        cells=classic,
        length=max(length, 2),
        hidden_size=base.hidden_size,
        seed=base.seed,
        gate_init="torch",
    )
    save_plot([cell_gradients(c, cfg) for c in classic], cfg, path)
    return path


# ---------------------------------------------------------------------- CLI


def _split(text: str, kind: type, what: str) -> list:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise UserError(
            f"--{what} is empty; give a comma-separated list, e.g. --{what} "
            + ("rnn,lstm" if kind is str else "50,100")
        )
    if kind is int:
        try:
            return [int(t) for t in items]
        except ValueError:
            raise UserError(f"--{what} must be comma-separated integers, got {text!r}") from None
    return items


def _config(args: argparse.Namespace, **over: object) -> LabConfig:
    """A LabConfig from the parsed flags whose names match its fields, plus ``over``."""
    names = {f.name for f in fields(LabConfig)} - {"task"}
    values = {k: v for k, v in vars(args).items() if k in names}
    return LabConfig(**(values | over))


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _setup_cpu(threads: int) -> None:
    """Threads, and flush denormal floats to zero for this process.

    A gradient that vanishes over T steps passes through denormal numbers
    (below ~1e-38), and x86 arithmetic on them is ~100x slower: measured here,
    an LSTM step at T=200 took 1.8 s with them and 0.15 s flushed. Flushing
    changes values below 1e-38 only.
    """
    if threads < 0:
        raise UserError(f"--threads must be >= 0 (0 = torch's default), got {threads}")
    if threads:
        torch.set_num_threads(threads)
    torch.set_flush_denormal(True)


def _run_task(args: argparse.Namespace) -> int:
    cfg = _config(args, task=args.lab_task)
    _setup_cpu(args.threads)
    res = run_lab(cfg, _log)
    print(
        f"{cfg.task} {cfg.cell} T={cfg.length}: {res.summary()} "
        f"(baseline {res.metric_name} {res.baseline:.4g}, threshold {res.threshold:.4g}, "
        f"{res.seconds:.1f} s)"
    )
    if not args.no_plot:
        path = args.plot or f"lab_{cfg.task}_{cfg.cell}_T{cfg.length}.png"
        print(f"learning curves: {save_curve_plot(res, path)}")
    return 0


def _run_sweep(args: argparse.Namespace) -> int:
    cells = _split(args.cells, str, "cells")
    lengths = _split(args.lengths, int, "lengths")
    base = _config(args, task=args.sweep_task, cell=cells[0], length=lengths[0])
    _setup_cpu(args.threads)
    for cell, length in ((c, n) for c in cells for n in lengths):
        replace(base, cell=cell, length=length)  # check every pair before training any
    results = run_sweep(base, cells, lengths, args.out, _log)
    print(markdown_table(results), end="")
    print(f"wrote {Path(args.out) / 'results.csv'}, results.md, grid.png and gradients.png")
    return 0


def _common(p: argparse.ArgumentParser, sweep: bool) -> None:
    d = LabConfig()
    if not sweep:
        p.add_argument("--cell", default=d.cell, help=f"one of {', '.join(CELL_NAMES)}")
        p.add_argument(
            "--length", type=int, default=d.length, help="T, the span the dependency must bridge"
        )
    p.add_argument("--hidden-size", type=int, default=d.hidden_size, help="hidden size H")
    p.add_argument("--num-layers", type=int, default=d.num_layers, help="recurrent layers")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="fresh sequences per step")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate")
    p.add_argument(
        "--grad-clip", type=float, default=d.grad_clip, help="max global gradient norm (0 = off)"
    )
    p.add_argument("--max-steps", type=int, default=d.max_steps, help="step budget per run")
    p.add_argument(
        "--max-seconds",
        type=float,
        default=d.max_seconds,
        help="time budget per run in seconds (0 = none)",
    )
    p.add_argument(
        "--eval-every", type=int, default=d.eval_every, help="steps between held-out evaluations"
    )
    p.add_argument("--eval-size", type=int, default=d.eval_size, help="held-out sequences")
    p.add_argument(
        "--solved-ratio",
        type=float,
        default=d.solved_ratio,
        help="solved when held-out metric < this x the trivial baseline's",
    )
    p.add_argument(
        "--embed-size",
        type=int,
        default=d.embed_size,
        help="token embedding size (copy, selective)",
    )
    p.add_argument(
        "--num-symbols", type=int, default=d.num_symbols, help="K data symbols (copy, selective)"
    )
    p.add_argument(
        "--memory-length", type=int, default=d.memory_length, help="M symbols to remember (copy)"
    )
    p.add_argument(
        "--num-tokens", type=int, default=d.num_tokens, help="N tokens to pick out (selective)"
    )
    p.add_argument("--seed", type=int, default=d.seed, help="seeds weights and data")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (0 = torch's default); 1 is fastest on a busy machine",
    )


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    """Register ``rnnkit lab adding|copy|selective|sweep``."""
    fmt = argparse.ArgumentDefaultsHelpFormatter
    lab = subparsers.add_parser(
        "lab",
        help="long-range dependency lab: adding, copy memory, selective copying",
        description="Train a recurrent cell on a synthetic long-range task and report whether "
        "and when it is solved (held-out metric below --solved-ratio x the trivial "
        "baseline's).",
        formatter_class=fmt,
    )
    lab.set_defaults(_parser=lab)
    verbs = lab.add_subparsers(dest="lab_task", metavar="<task>")
    blurbs = {
        "adding": "the adding problem (Hochreiter & Schmidhuber 1997): sum the two marked "
        "values of a length-T sequence; metric MSE, baseline predicts 1.0 (~1/6)",
        "copy": "copy memory (Arjovsky et al. 2016): replay M symbols after T blanks; "
        "metric error rate on the replayed symbols, baseline 1 - 1/K",
        "selective": "selective copying (Gu & Dao 2023): replay N tokens scattered in T "
        "noise steps, in order; metric error rate, baseline 1 - 1/K",
    }
    for task, blurb in blurbs.items():
        p = verbs.add_parser(task, help=blurb.split(":")[0], description=blurb, formatter_class=fmt)
        _common(p, sweep=False)
        p.add_argument(
            "--plot",
            metavar="PNG",
            default=None,
            help="learning-curve picture (default lab_<task>_<cell>_T<length>.png)",
        )
        p.add_argument("--no-plot", action="store_true", help="write no picture")
        p.set_defaults(func=_run_task)
    p = verbs.add_parser(
        "sweep",
        help="every cell at every length: results table and a PNG grid",
        description="Run one task for every cell at every length; write results.csv, "
        "results.md, grid.png (learning curves, cells x lengths) and gradients.png (the "
        "'rnnkit gradients' picture for the rnn/lstm/gru among --cells at the longest "
        "length) in --out.",
        formatter_class=fmt,
    )
    p.add_argument("--task", dest="sweep_task", choices=TASKS, default="adding", help="which task")
    p.add_argument("--cells", default="rnn,lstm,gru,mingru,minlstm", help="comma-separated cells")
    p.add_argument("--lengths", default="50,100,200,400", help="comma-separated lengths T")
    p.add_argument("--out", default="lab_sweep", help="output directory")
    _common(p, sweep=True)
    p.set_defaults(func=_run_sweep)
