"""``rnnkit export onnx --checkpoint DIR --output model.onnx [--streaming]``.

The application is read from the folder's ``manifest.json`` (its ``app``);
a folder saved before manifests existed is recognised by its files. The
estimator of that application loads the folder and writes the graph with
:meth:`rnnkit.estimator.Estimator.export_onnx` (which imports
``rnnkit.<app>.export`` by name: this module names no application).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rnnkit import cli_common
from rnnkit.errors import UserError

__all__ = ["ESTIMATORS", "add_cli", "detect_app"]

# app -> the public estimator that loads its folders (rnnkit.<name>, imported lazily).
ESTIMATORS = {
    "forecast": "Forecaster",
    "sentiment": "SentimentClassifier",
    "textgen": "TextGenerator",
    "translate": "Translator",
    "speech": "SpeechRecognizer",
}
# Folders without a manifest: the files each application saves, the most specific first.
_FILES = (
    ("speech", ("vocab.json", "features.json")),
    ("forecast", ("forecaster.json",)),
    ("sentiment", ("tokenizer.json", "labels.json")),
    ("translate", ("tokenizer.json",)),
    ("textgen", ("vocab.json",)),
)


def detect_app(directory: str | Path) -> str:
    """The application whose model is in ``directory`` (a saved folder or a run directory)."""
    from rnnkit.training.checkpoint import read_manifest, resolve_checkpoint

    if (Path(directory) / "ensemble.json").is_file():
        return "sentiment"  # an ensemble: its members are sentiment folders
    d = resolve_checkpoint(directory, required=("config.json",))
    app = (read_manifest(d) or {}).get("app")
    if app is None:
        app = next((a for a, files in _FILES if all((d / f).is_file() for f in files)), None)
    if app is None:
        raise UserError(
            f"{d} has no manifest.json and not the files of a saved model of any application "
            f"({', '.join(ESTIMATORS)}); pass a folder written by save() or a run directory"
        )
    if app not in ESTIMATORS:
        raise UserError(
            f"{d} holds a {app} model; ONNX export covers {', '.join(ESTIMATORS)} "
            "(and rnnkit.export.export_module for rnnkit.nn modules)"
        )
    return str(app)


def _cmd_onnx(args: argparse.Namespace) -> int:
    import rnnkit

    app = detect_app(args.checkpoint)
    cls = getattr(rnnkit, ESTIMATORS[app])
    est = cls.load(args.checkpoint, device=args.device, threads=args.threads, verbose=False)
    path = est.export_onnx(args.output, streaming=args.streaming)
    sidecar = path.with_suffix(".json")
    info: dict[str, Any] = json.loads(sidecar.read_text(encoding="utf-8"))
    for graph in info.get("graphs", []):
        names = ", ".join(i["name"] for i in graph["inputs"])
        outs = ", ".join(o["name"] for o in graph["outputs"])
        print(f"{path.parent / graph['file']}: ({names}) -> ({outs})")
    print(f"{app}: {info.get('what', '')}; described in {sidecar}", file=sys.stderr)
    cli_common.write_json(args.json, info)
    return 0


def add_cli(subparsers: Any) -> None:
    """Register ``rnnkit export onnx``."""
    verbs = cli_common.add_app_parser(
        subparsers,
        "export",
        help="export a trained model to run outside rnnkit: onnx",
        description="Export a trained model so that it runs without rnnkit.",
    )
    p = cli_common.add_verb_parser(
        verbs,
        "onnx",
        help="write the network as an ONNX graph (onnxruntime, phones, servers)",
        description="Write the trained network of a run directory or saved folder as an "
        "ONNX graph, with a JSON sidecar (<name>.json) naming its inputs and outputs and "
        "what stays in Python (tokenisers, feature extraction, beam search). The "
        'application is read from the folder. Needs pip install "rnnkit[onnx]".',
        json_what="the sidecar (graphs, inputs, outputs)",
    )
    p.add_argument(
        "--output", required=True, metavar="FILE", help="the .onnx file to write (e.g. model.onnx)"
    )
    p.add_argument(
        "--streaming",
        action="store_true",
        help="the step (or chunk) graph with the recurrent state as input and output "
        "(textgen, unidirectional speech, autoregressive forecast)",
    )
    p.set_defaults(func=_cmd_onnx)
