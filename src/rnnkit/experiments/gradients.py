"""``rnnkit gradients``: the command line of :mod:`rnnkit.experiments.gradient_flow`.

The experiment itself (config, BPTT, torch cross-check, table, plot) is in
``gradient_flow``; its public names are re-exported here, so
``from rnnkit.experiments.gradients import GradientsConfig, plot_gradients``
works as well.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rnnkit.cli_common import add_json_argument, write_json
from rnnkit.errors import UserError
from rnnkit.experiments.gradient_flow import (
    CellGradients,
    GradientsConfig,
    cell_gradients,
    describe,
    format_table,
    init_params,
    make_sequence,
    plot_gradients,
    results_json,
    step_difference,
    summarize,
    torch_hidden_gradients,
)
from rnnkit.reference import KINDS

__all__ = [
    "CellGradients",
    "GradientsConfig",
    "add_cli",
    "cell_gradients",
    "describe",
    "format_table",
    "init_params",
    "make_sequence",
    "plot_gradients",
    "results_json",
    "step_difference",
    "summarize",
    "torch_hidden_gradients",
]


def _parse_cells(text: str) -> tuple[str, ...]:
    cells = tuple(dict.fromkeys(c.strip().lower() for c in text.split(",") if c.strip()))
    bad = [c for c in cells if c not in KINDS]
    if bad or not cells:
        raise UserError(
            f"--cell must be a comma list of {', '.join(KINDS)} (e.g. rnn,lstm,gru), got {text!r}"
        )
    return cells


def _run(args: argparse.Namespace) -> int:
    cfg = GradientsConfig(
        cells=_parse_cells(args.cell),
        length=args.length,
        hidden_size=args.hidden_size,
        input_size=args.input_size,
        batch=args.batch,
        seed=args.seed,
        scale=args.scale,
        nonlinearity=args.nonlinearity,
        gate_init=args.gate_init,
    )
    plot = Path(args.plot) if args.plot else None
    if plot is not None:
        if plot.suffix.lower() != ".png":
            raise UserError(f"--plot must name a .png file, got {args.plot!r}")
        if not plot.parent.is_dir():
            raise UserError(f"--plot folder {str(plot.parent)!r} does not exist; create it first")
    if args.every is not None and args.every < 1:
        raise UserError(f"--every must be >= 1, got {args.every}")
    every = args.every or max(1, cfg.length // 10)

    # With --json - the JSON owns stdout and the report goes to stderr.
    out = sys.stderr if args.json == "-" else sys.stdout
    results = [cell_gradients(kind, cfg) for kind in cfg.cells]
    print(
        f"|dL/dh_t| for a loss on the last step: B={cfg.batch}, T={cfg.length}, "
        f"D={cfg.input_size}, H={cfg.hidden_size}, W_hh scale={cfg.scale:g}, "
        f"gate init={cfg.gate_init}, seed={cfg.seed} (NumPy engine, float64)",
        file=out,
    )
    print(format_table(results, every), file=out)
    print(file=out)
    for r in results:
        print(describe(r.kind, r.norms), file=out)
    status, check = 0, None
    if args.check:
        diffs = {
            r.kind: step_difference(r.grads, torch_hidden_gradients(r.kind, r.params, cfg))
            for r in results
        }
        worst = max(diffs.values())
        detail = ", ".join(f"{k} {v:.1e}" for k, v in diffs.items())
        ok = worst < 1e-8
        print(
            f"torch cross-check (torch.nn cells + autograd, float64): max relative difference "
            f"{worst:.1e} ({detail}) {'OK' if ok else 'MISMATCH'}",
            file=out,
        )
        status = 0 if ok else 1
        check = {"max_relative_difference": worst, "per_cell": diffs, "ok": ok}
    if plot is not None:
        plot_gradients(results, cfg, plot)
        print(f"wrote {plot}", file=out)
    write_json(args.json, results_json(results, cfg, check))
    return status


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except for flags and options whose default is 'not given'."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    """Register ``rnnkit gradients``."""
    d = GradientsConfig()
    parser = subparsers.add_parser(
        "gradients",
        help="see gradients vanish or explode through time (RNN vs LSTM vs GRU)",
        description=(
            "For randomly initialised cells on one random sequence, with the loss on the last "
            "step only, print |dL/dh_t| for every step t (a table, and a log-scale plot with "
            "--plot), computed by the NumPy engine's hand-written BPTT in float64 and "
            "cross-checked against torch.autograd. The plain RNN's gradient vanishes "
            "geometrically (or explodes with a large --scale); the LSTM's and GRU's is kept "
            "when their forget/update gates are open (--gate-init chrono)."
        ),
        epilog="example: rnnkit gradients --cell rnn,lstm,gru --length 100 --plot gradients.png",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "--cell", default=",".join(d.cells), help="cells to compare, a comma list of rnn, lstm, gru"
    )
    parser.add_argument("--length", type=int, default=d.length, help="sequence length T")
    parser.add_argument("--hidden-size", type=int, default=d.hidden_size, help="hidden size H")
    parser.add_argument("--input-size", type=int, default=d.input_size, help="input size D")
    parser.add_argument(
        "--batch-size",
        dest="batch",
        metavar="BATCH_SIZE",
        type=int,
        default=d.batch,
        help="batch size B (sequences)",
    )
    parser.add_argument("--seed", type=int, default=d.seed, help="random seed (data and weights)")
    parser.add_argument(
        "--scale",
        type=float,
        default=d.scale,
        help="recurrent weight scale: W_hh is drawn as in torch (U(-1/sqrt(H), 1/sqrt(H))) and "
        "multiplied by this. For the plain RNN the spectral radius of W_hh is about "
        "0.58*scale: at the default 1.0 its gradient vanishes, near 2.5 it roughly holds, "
        "and from about 3 it explodes (at T=100)",
    )
    parser.add_argument(
        "--nonlinearity", choices=("tanh", "relu"), default=d.nonlinearity, help="plain RNN only"
    )
    parser.add_argument(
        "--gate-init",
        choices=("chrono", "torch"),
        default=d.gate_init,
        help="gate biases of lstm/gru: 'chrono' draws the forget (lstm) / update z (gru) gate "
        "bias per unit as log U(1, T-1) so the gates start open (Tallec & Ollivier 2018); "
        "'torch' keeps torch's default init, where gates sit near 0.5 and gated cells' "
        "gradients vanish too",
    )
    parser.add_argument(
        "--plot", metavar="PNG", default=None, help="write a log-scale plot of |dL/dh_t| here"
    )
    parser.add_argument(
        "--every", type=int, default=None, help="table row every K steps (default: T // 10)"
    )
    parser.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="skip the cross-check against torch.autograd (saves importing torch)",
    )
    add_json_argument(
        parser, what="the results (per cell: ratio, verdict, |dL/dh_t| for every step t)"
    )
    parser.set_defaults(func=_run, _parser=parser)
