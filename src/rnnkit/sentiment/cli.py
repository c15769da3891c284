"""``rnnkit sentiment train | eval | predict | explain``: argparse only.

rnnkit sentiment train --data sst2 --run-dir runs/sst2
rnnkit sentiment eval --checkpoint runs/sst2 --data sst2:dev --json metrics.json
rnnkit sentiment predict --checkpoint runs/sst2 "a gripping, funny film"
rnnkit sentiment predict --checkpoint runs/sst2 --input texts.txt --output preds.jsonl
rnnkit sentiment explain --checkpoint runs/sst2 "a gripping, funny film" --html why.html
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rnnkit import cli_common
from rnnkit import config as config_lib
from rnnkit.errors import UserError
from rnnkit.sentiment.config import SentimentConfig
from rnnkit.sentiment.data import eval_examples
from rnnkit.sentiment.ensemble import is_ensemble, read_ensemble
from rnnkit.sentiment.estimator import SentimentClassifier
from rnnkit.sentiment.readers import read_texts
from rnnkit.sentiment.report import format_report, plot_confusion, render_html, render_terminal

__all__ = ["add_cli"]

_DEFAULT_RUN_DIR = SentimentConfig().run_dir


def _train_config(args: argparse.Namespace) -> SentimentConfig:
    run_dir = Path(args.run_dir or _DEFAULT_RUN_DIR)
    if args.resume and is_ensemble(run_dir):  # an ensemble's saved config
        saved = config_lib.from_dict(SentimentConfig, read_ensemble(run_dir).get("config", {}))
        return config_lib.apply_overrides(saved, config_lib.overrides_from_args(args))
    return cli_common.train_config(
        SentimentConfig, args, app="sentiment", default_run_dir=_DEFAULT_RUN_DIR
    )


def _cmd_train(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {args.jobs}")
    cfg = _train_config(args)
    if args.data:
        cfg = replace(cfg, data=replace(cfg.data, source=args.data))
    run_dir = args.run_dir or cfg.run_dir
    cfg = replace(cfg, run_dir=run_dir)
    clf = SentimentClassifier(config=cfg, **cli_common.runtime_kwargs(args)).fit(
        run_dir=run_dir, resume=args.resume, overwrite=args.overwrite, jobs=args.jobs
    )
    res = clf.result_
    if clf.members_:  # an ensemble, whose result_ is a dict
        for m in res["members"]:
            best = m["best_val_accuracy"]  # None: resumed at its last step, no evaluation
            kept = " (had finished: kept)" if m.get("kept") else ""
            print(
                f"member {m['run_dir']}: seed {m['seed']}, {m['steps']} steps, best val_accuracy "
                f"{'n/a' if best is None else f'{best:.4f}'}, {m['seconds']:.0f} s{kept}"
            )
        print(
            f"done: ensemble of {len(res['members'])} in {res['seconds']:.0f} s "
            f"({res['jobs']} at a time), val_accuracy {res['val_accuracy']:.4f}; "
            f"run directory {run_dir}"
        )
    else:
        best = max((e.get("val_accuracy", 0.0) for e in res.evals), default=float("nan"))
        print(
            f"done: {res.step} steps ({res.stop_reason}), best val_accuracy {best:.4f}; "
            f"run directory {run_dir} (best/ holds the best model)"
        )
    cli_common.write_json(args.json, clf.metrics_)
    return 0


def _load(args: argparse.Namespace) -> SentimentClassifier:
    return SentimentClassifier.load(args.checkpoint, device=args.device, threads=args.threads)


def _cmd_eval(args: argparse.Namespace) -> int:
    clf = _load(args)
    data_cfg = clf.config.data
    columns = {"text_column": args.text_column, "label_column": args.label_column}
    data_cfg = replace(data_cfg, **{k: v for k, v in columns.items() if v is not None})
    what, examples = eval_examples(data_cfg, args.data, options=_EVAL_COLUMN_OPTIONS)
    report = clf.evaluate(
        [e.text for e in examples],
        [e.label for e in examples],
        where=what,
        batch_size=args.batch_size,
    )
    print(f"{what}:")
    print(format_report(report))
    if args.plot:
        plot_confusion(report, args.plot, title=what)
        print(f"confusion matrix plot: {args.plot}")
    cli_common.write_json(args.json, {"data": what, **report})
    return 0


_EVAL_COLUMN_OPTIONS = {"text": "--text-column", "label": "--label-column"}


def _prediction_records(
    clf: SentimentClassifier, texts: Sequence[str], batch_size: int
) -> list[dict[str, Any]]:
    """One record per text; a blank text gets ``label`` None (nothing to classify)."""
    keep = [i for i, t in enumerate(texts) if t.strip()]
    proba = clf.predict_proba([texts[i] for i in keep], batch_size=batch_size)
    classes = clf.classes_
    records: list[dict[str, Any]] = [
        {"text": t, "label": None, "probability": None, "probabilities": None} for t in texts
    ]
    for i, p in zip(keep, proba, strict=True):
        k = int(p.argmax())
        records[i] = {
            "text": texts[i],
            "label": classes[k],
            "probability": float(p[k]),
            "probabilities": {str(c): float(v) for c, v in zip(classes, p, strict=True)},
        }
    return records


def _cmd_predict(args: argparse.Namespace) -> int:
    if bool(args.texts) == bool(args.input):
        raise UserError("pass texts as arguments or --input FILE (one of the two)")
    clf = _load(args)
    if args.input:
        texts = read_texts(args.input, text_column=args.text_column, option="--text-column")
    else:
        texts = list(args.texts)
    records = _prediction_records(clf, texts, args.batch_size)
    blank = [i + 1 for i, r in enumerate(records) if r["label"] is None]
    if blank:
        print(
            f"{len(blank)} blank input text(s) (first: text {blank[0]}) have no label: "
            "their output lines are empty (JSON: label null)",
            file=sys.stderr,
        )
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"{len(records)} predictions -> {args.output}", file=sys.stderr)
    elif args.json != "-":
        for r in records:
            blank = r["label"] is None
            print("" if blank else f"{r['label']}\t{r['probability']:.4f}\t{r['text']}")
    cli_common.write_json(args.json, records)
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    clf = _load(args)
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    exps = []
    for text in args.texts:  # a --target of "1" means the class 1 (labels are normalised)
        exp = clf.explain(text, method=args.method, target=args.target)
        print(render_terminal(exp, color=color, top=args.top))
        exps.append(exp)
    if args.html:
        Path(args.html).write_text("".join(render_html(e) for e in exps), encoding="utf-8")
        print(f"HTML: {args.html}")
    cli_common.write_json(args.json, [e.to_dict() for e in exps])
    return 0


def add_cli(subparsers: Any) -> None:
    """Register ``rnnkit sentiment {train,eval,predict,explain}``."""
    verbs = cli_common.add_app_parser(
        subparsers,
        "sentiment",
        help="text classification (sentiment): train, eval, predict, explain",
        description="Sentiment analysis and any text classification with recurrent networks "
        "(embedding -> RNN/LSTM/GRU -> pooling -> classifier).",
    )
    t = cli_common.add_train_parser(
        verbs,
        "sentiment",
        SentimentConfig,
        help="train a classifier on labelled text",
        description="Train a text classifier. Values come from the defaults, then --preset "
        "(rnnkit/sentiment/presets/NAME.toml), then --section.key=VALUE overrides. The best "
        "model by dev accuracy goes to RUN_DIR/best (an ensemble: RUN_DIR/member<k>/best).",
        data_help="sst2, sst2-phrases, imdb, or a .csv/.tsv/.jsonl file with text and labels",
        resume_help="continue the run in --run-dir from its last checkpoint (its saved config)",
    )
    t.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="with --ensemble N: members trained at a time, each in its own process "
        "with one torch thread (e.g. 2 on a 2-core machine)",
    )
    t.set_defaults(func=_cmd_train)

    e = cli_common.add_verb_parser(
        verbs,
        "eval",
        help="accuracy, macro-F1, per-class precision/recall, confusion matrix",
        description="Evaluate a trained classifier on labelled data; prints the report and "
        "writes the confusion matrix as a PNG (--plot) and the report as JSON (--json).",
    )
    e.add_argument(
        "--data",
        default=None,
        help="labelled .csv/.tsv/.jsonl file, sst2:dev or imdb:test; default: the "
        "validation data of training (dev split or data.val_source)",
    )
    e.add_argument(
        "--text-column",
        default=None,
        help="text column of a CSV/TSV/JSONL --data (default: the one the model was trained on)",
    )
    e.add_argument(
        "--label-column",
        default=None,
        help="label column of a CSV/TSV/JSONL --data (default: the one the model was trained on)",
    )
    e.add_argument("--plot", default="confusion_matrix.png", help="PNG path; '' for none")
    e.add_argument("--batch-size", type=int, default=128, help="texts per forward pass")
    e.set_defaults(func=_cmd_eval)

    r = cli_common.add_verb_parser(
        verbs,
        "predict",
        help="label + class probabilities for texts",
        description="Predict labels. Texts as arguments print 'label<TAB>p<TAB>text'; "
        "--input FILE (.txt one per line, or .csv/.tsv/.jsonl) with --output preds.jsonl "
        "writes one JSON object per text with the probability of every class; --json PATH "
        "writes them as one JSON list. Output line i is always input line i: a blank "
        "line (or empty text) gives an empty line (JSON: label null).",
    )
    r.add_argument("texts", nargs="*", help="texts to classify")
    r.add_argument("--input", default=None, help="file of texts (.txt, .csv, .tsv, .jsonl)")
    r.add_argument("--output", default=None, help="write JSON lines here instead of stdout")
    r.add_argument("--text-column", default="text", help="text column of a CSV/TSV/JSONL input")
    r.add_argument("--batch-size", type=int, default=128, help="texts per forward pass")
    r.set_defaults(func=_cmd_predict)

    x = cli_common.add_verb_parser(
        verbs,
        "explain",
        help="which words moved a prediction (highlighted)",
        description="Explain predictions: gradient x input (or attention weights) per token, "
        "shown as highlighted text (green: towards the label, red: against) and optionally "
        "as an HTML snippet (--html) or JSON (--json: tokens, spans and scores).",
    )
    x.add_argument("texts", nargs="+", help="texts to explain")
    x.add_argument(
        "--method", default="grad_input", choices=("grad_input", "attention"), help="scores"
    )
    x.add_argument("--target", default=None, help="explain this label instead of the predicted")
    x.add_argument("--top", type=int, default=5, help="how many top tokens to list")
    x.add_argument("--color", default="auto", choices=("auto", "always", "never"))
    x.add_argument("--html", default=None, help="write the HTML snippets to this file")
    x.set_defaults(func=_cmd_explain)
