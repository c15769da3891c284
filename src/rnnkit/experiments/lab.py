"""``rnnkit lab``: which cells learn long-range dependencies, and at what length?

A run trains a small recurrent model on a synthetic task whose answer depends
on inputs T steps back (adding, copy memory, selective copying) until the task
is solved or the budget is spent (:mod:`.lab_run`); a sweep runs every cell at
every length and writes a table and pictures (:mod:`.lab_plots`).

Commands::

    rnnkit lab adding --cell lstm --length 200          # train, report, plot
    rnnkit lab sweep --cells rnn,lstm,gru,mingru,minlstm --lengths 50,100,200,400

In Python (a notebook shows the returned Figure inline)::

    from rnnkit.experiments.lab import LabConfig, plot_learning_curves, run_lab

    res = run_lab(LabConfig(task="adding", cell="gru", length=50, max_steps=500))
    print(res.summary())
    fig = plot_learning_curves(res)
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path

import torch

from rnnkit.cli_common import add_app_parser, add_json_argument, add_runtime_arguments, write_json
from rnnkit.errors import UserError
from rnnkit.experiments.lab_plots import (
    markdown_table,
    plot_gradient_flow,
    plot_learning_curves,
    plot_sweep_grid,
)
from rnnkit.experiments.lab_run import TASKS, LabConfig, LabModel, LabResult, run_lab
from rnnkit.nn.registry import CELL_NAMES

__all__ = [
    "TASKS",
    "LabConfig",
    "LabModel",
    "LabResult",
    "add_cli",
    "markdown_table",
    "plot_gradient_flow",
    "plot_learning_curves",
    "plot_sweep_grid",
    "run_lab",
    "run_sweep",
]

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


def _csv_row(r: LabResult) -> dict[str, object]:
    return {
        "task": r.config.task,
        "cell": r.config.cell,
        "length": r.config.length,
        "solved": r.solved,
        "solved_at": r.solved_at if r.solved else "",
        "best_metric": f"{r.best_metric:.4g}",
        "baseline": f"{r.baseline:.4g}",
        "best_ratio": f"{r.best_metric / r.baseline:.3g}",
        "steps": r.steps,
        "seconds": f"{r.seconds:.1f}",
    }


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
        writer.writerows(_csv_row(r) for r in results)
    (out / "results.md").write_text(markdown_table(results))
    plot_sweep_grid(results, out / "grid.png")
    plot_gradient_flow(base, cells, max(lengths), out / "gradients.png")
    return results


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
    values = {k: v for k, v in vars(args).items() if k in names and v is not None}
    return LabConfig(**(values | over))


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _setup_cpu(threads: int | None) -> None:
    """Threads, and flush denormal floats to zero for this process.

    A gradient that vanishes over T steps passes through denormal numbers
    (below ~1e-38), and x86 arithmetic on them is ~100x slower: measured here,
    an LSTM step at T=200 took 1.8 s with them and 0.15 s flushed. Flushing
    changes values below 1e-38 only.
    """
    if threads is not None:  # None: torch's default
        torch.set_num_threads(threads)
    torch.set_flush_denormal(True)


def _stdout(args: argparse.Namespace):
    """Where the report goes: stdout, or stderr when ``--json -`` takes stdout."""
    return sys.stderr if args.json == "-" else sys.stdout


def _run_task(args: argparse.Namespace) -> int:
    cfg = _config(args, task=args.verb)
    _setup_cpu(args.threads)
    res = run_lab(cfg, _log)
    out = _stdout(args)
    print(
        f"{cfg.task} {cfg.cell} T={cfg.length}: {res.summary()} "
        f"(baseline {res.metric_name} {res.baseline:.4g}, threshold {res.threshold:.4g}, "
        f"{res.seconds:.1f} s)",
        file=out,
    )
    if not args.no_plot:
        path = args.plot or f"lab_{cfg.task}_{cfg.cell}_T{cfg.length}.png"
        plot_learning_curves(res, path)
        print(f"learning curves: {path}", file=out)
    write_json(args.json, res.as_dict())
    return 0


def _run_sweep(args: argparse.Namespace) -> int:
    cells = _split(args.cells, str, "cells")
    lengths = _split(args.lengths, int, "lengths")
    base = _config(args, task=args.sweep_task, cell=cells[0], length=lengths[0])
    _setup_cpu(args.threads)
    for cell, length in ((c, n) for c in cells for n in lengths):
        replace(base, cell=cell, length=length)  # check every pair before training any
    results = run_sweep(base, cells, lengths, args.run_dir, _log)
    out = _stdout(args)
    print(markdown_table(results), end="", file=out)
    files = "results.md, grid.png" + (
        " and gradients.png" if {"rnn", "lstm", "gru"} & set(cells) else ""
    )
    print(f"wrote {Path(args.run_dir) / 'results.csv'}, {files}", file=out)
    write_json(args.json, {"results": [r.as_dict() for r in results]})
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
    # --device, --threads (unset: torch's default; 1 is fastest on a busy machine), --seed
    add_runtime_arguments(p)
    what = "the results table, one row per run," if sweep else "the run's results row"
    add_json_argument(p, what=f"{what} with its held-out evaluations")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except for flags and options whose default is 'not given'."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    """Register ``rnnkit lab adding|copy|selective|sweep``."""
    fmt = _HelpFormatter
    verbs = add_app_parser(
        subparsers,
        "lab",
        help="long-range dependency lab: adding, copy memory, selective copying",
        description="Train a recurrent cell on a synthetic long-range task and report whether "
        "and when it is solved (held-out metric below --solved-ratio x the trivial "
        "baseline's). Verbs: adding, copy, selective (one run) and sweep.",
    )
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
        "length) in --run-dir (files of an earlier sweep there are replaced).",
        formatter_class=fmt,
    )
    p.add_argument("--task", dest="sweep_task", choices=TASKS, default="adding", help="which task")
    p.add_argument("--cells", default="rnn,lstm,gru,mingru,minlstm", help="comma-separated cells")
    p.add_argument("--lengths", default="50,100,200,400", help="comma-separated lengths T")
    p.add_argument(
        "--run-dir", default="lab_sweep", help="directory for the results table and pictures"
    )
    _common(p, sweep=True)
    p.set_defaults(func=_run_sweep)
