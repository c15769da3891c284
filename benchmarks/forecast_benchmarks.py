"""Forecasting quality on held-out data: rnnkit's RNN forecaster against baselines.

Rolling-origin backtests with the presets in ``src/rnnkit/forecast/presets/`` (hyperparameters
fixed in advance; epochs chosen by early stopping on a validation split before
the first origin; every model fitted once on the data before the first origin):

- sunspots (yearly, last 30 years, horizon 10): MASE at h = 1 and h = 10, plus two
  ablations (no linear highway: a plain LSTM encoder; a GRU encoder).
- airline (monthly, last 24 months, horizon 12, log returns + calendar features).
- VIX daily close in finance mode (log returns, last 250 trading days, horizon 5).

Usage (from the repository root; VIX and airline are downloaded once, or set
RNNKIT_DATA_MIRROR to a mirror of ../shared/data)::

    .venv/bin/python benchmarks/forecast_benchmarks.py [--only sunspots,airline,vix]

Prints Markdown tables (the figures in docs/benchmarks/forecast.md).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import torch

from rnnkit import Forecaster
from rnnkit.forecast import load_config
from rnnkit.forecast.backtest import format_table


def markdown(result, horizons: list[int]) -> str:  # noqa: ANN001
    lines = []
    head = " | ".join(f"{c} h={h}" for h in horizons for c in ("MASE", "skill"))
    lines.append(f"| model | {head} | MAE h={horizons[-1]} | coverage (all h) |")
    lines.append("|---" * (3 + 2 * len(horizons)) + "|")
    tables = {h: result.metrics(h) for h in horizons}
    overall = result.metrics(None)
    for name in result.models:
        cells = []
        for h in horizons:
            cells += [f"{tables[h].loc[name, 'MASE']:.3f}", f"{tables[h].loc[name, 'skill']:+.3f}"]
        mae = f"{tables[horizons[-1]].loc[name, 'MAE']:.3f}"
        cov = overall.loc[name, "coverage"]
        cov_s = f"{cov:.2f}" if cov == cov else "-"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {mae} | {cov_s} |")
    return "\n".join(lines)


def run(name: str, overrides: list[str], horizons: list[int], label: str | None = None) -> None:
    cfg = load_config(preset=name, overrides=overrides)
    start = time.perf_counter()
    result = Forecaster(config=cfg).backtest()  # progress on stderr; models train on 1 thread
    seconds = time.perf_counter() - start
    label = label or name
    print(f"\n### {label}\n")
    print(
        f"{len(result.index)} steps, test period: last {cfg.backtest.test_size}, horizon "
        f"{cfg.model.horizon}, cell {cfg.model.cell}, lookback {cfg.model.lookback}, hidden "
        f"{cfg.model.hidden_size}, ensemble {cfg.train.ensemble}, transform "
        f"{cfg.train.target_transform}, overrides {overrides or 'none'}; "
        f"{seconds:.0f} s total (rnn {result.seconds['rnn']:.0f} s)\n"
    )
    print(markdown(result, horizons))
    warning = result.lag1_warning("rnn")
    if warning:
        print(f"\n> {warning}")
    print(
        "\n<details><summary>full table</summary>\n\n```\n"
        + format_table(result)
        + "\n```\n</details>"
    )
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="sunspots,ablations,airline,vix")
    args = parser.parse_args()
    todo = args.only.split(",")
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads available (models train on 1)"
    )
    if "sunspots" in todo:
        run("sunspots", [], [1, 10])
    if "ablations" in todo:
        run("sunspots", ["model.highway=false"], [1, 10], "sunspots, plain LSTM (no highway)")
        run("sunspots", ["model.cell=gru"], [1, 10], "sunspots, GRU encoder")
    if "airline" in todo:
        run("airline", [], [1, 12])
    if "vix" in todo:
        run("vix", [], [1, 5])


if __name__ == "__main__":
    main()
