"""The ``README.md`` model card written into every saved model folder.

A card says what a person picking up the folder needs first (Mitchell et al.
2019, "Model Cards for Model Reporting", cut down to what rnnkit knows):
the task, the data it was trained on, the model, the metrics at save time with
the data they were measured on, how to load it, and the rnnkit version.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

from rnnkit import config as config_lib

__all__ = ["model_card"]

_TASKS = {
    "forecast": "time-series forecasting",
    "sentiment": "text classification (sentiment)",
    "textgen": "character-level text generation",
    "translate": "machine translation (encoder-decoder with attention)",
    "speech": "speech recognition (CTC)",
    "sequence": "sequence regression / classification on arrays",
}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)[:80]
    return str(value)


def model_card(est: Any) -> str:
    """Markdown for the fitted estimator ``est`` (an :class:`rnnkit.estimator.Estimator`)."""
    from rnnkit import __version__

    name = type(est).__name__
    cfg = config_lib.to_dict(est.config)
    data = cfg.get("data", {}) if isinstance(cfg.get("data"), dict) else {}
    model = cfg.get("model", {}) if isinstance(cfg.get("model"), dict) else {}
    try:
        n_params = sum(p.numel() for p in est._module().parameters())
    except Exception:  # a card must never stop a save
        n_params = None
    metrics = dict(getattr(est, "metrics_", {}) or {})
    measured_on = metrics.pop("measured_on", None)
    lines = [
        f"# {name}: {_TASKS.get(est.app, est.app)}",
        "",
        f"Saved by rnnkit {__version__} on {_dt.date.today().isoformat()}.",
        "",
        "## Data",
        "",
        f"- source: `{data.get('source', 'passed to fit()')}`",
    ]
    lines += [f"- {k}: `{v}`" for k, v in data.items() if k != "source" and v not in ("", None)][:8]
    lines += ["", "## Model", ""]
    lines += [f"- {k}: `{v}`" for k, v in model.items()]
    if n_params is not None:
        lines.append(f"- parameters: {n_params:,}")
    lines += ["", "## Metrics at save time", ""]
    if metrics:
        if measured_on:
            lines += [f"Measured on {measured_on}.", ""]
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in metrics.items()]
    else:
        lines.append("None recorded (the model was saved without an evaluation).")
    lines += [
        "",
        "## Use",
        "",
        "```python",
        f"from rnnkit import {name}",
        f'model = {name}.load("path/to/this/folder")',
        "```",
        "",
        "The files are checked against `manifest.json` (sha256) when loaded; "
        "`config.json` holds the full configuration.",
        "",
    ]
    return "\n".join(lines)
