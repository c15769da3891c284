"""``rnnkit translate train | eval | predict`` (argparse only; the work is in the estimator).

::

    rnnkit translate train --data multi30k --src en --tgt de --run-dir runs/en-de
    rnnkit translate eval --checkpoint runs/en-de --data val.en,val.de --beam 5 --json m.json
    rnnkit translate predict --checkpoint runs/en-de "A man is riding a bicycle."
    rnnkit translate predict --checkpoint runs/en-de --input in.txt --output out.txt
    rnnkit translate predict --checkpoint runs/en-de "A dog runs." --plot-attention a.png
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from rnnkit import cli_common
from rnnkit.errors import UserError
from rnnkit.translate.config import TranslateConfig
from rnnkit.translate.data import eval_source, load_pairs, read_lines
from rnnkit.translate.estimator import Translator

__all__ = ["add_cli"]


def _cmd_train(args: argparse.Namespace) -> int:
    cfg = cli_common.train_config(
        TranslateConfig, args, app="translate", default_run_dir=TranslateConfig().run_dir
    )
    data = cfg.data
    if args.data:
        data = replace(data, source=args.data)
    if args.src:
        data = replace(data, src_lang=args.src)
    if args.tgt:
        data = replace(data, tgt_lang=args.tgt)
    cfg = replace(cfg, data=data, run_dir=args.run_dir or cfg.run_dir)
    tr = Translator(config=cfg, **cli_common.runtime_kwargs(args)).fit(
        run_dir=cfg.run_dir, resume=args.resume, overwrite=args.overwrite
    )
    res = tr.result_
    if res.evals:
        last = res.evals[-1]
        print(
            f"done: {res.step} steps, validation BLEU (greedy) {last.get('bleu', math.nan):.2f} "
            f"last / {res.best_metric:.2f} best, val_loss {last.get('val_loss', math.nan):.4f}; "
            f"{res.tokens_per_s:,.0f} target tokens/s; run directory {cfg.run_dir}"
        )
    cli_common.write_json(args.json, tr.metrics_)
    return 0


def _load(args: argparse.Namespace) -> Translator:
    return cast(
        Translator, Translator.load(args.checkpoint, device=args.device, threads=args.threads)
    )


def _decode_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"alpha": args.alpha, "max_len_ratio": args.max_len_ratio, "batch_size": args.batch_size}


def _write_lines(path: str, lines: list[str]) -> None:
    Path(path).write_text("".join(h + "\n" for h in lines), encoding="utf-8")
    print(f"{len(lines)} translations -> {path}", file=sys.stderr)


def _cmd_eval(args: argparse.Namespace) -> int:
    tr = _load(args)
    d = tr.config.data
    what = args.data or eval_source(d)
    pairs = load_pairs(what, src_lang=d.src_lang, tgt_lang=d.tgt_lang, split="val")
    m = tr.evaluate(pairs, beam=args.beam, progress=True, **_decode_kwargs(args))
    hyps = m.pop("hypotheses")
    if args.output:
        _write_lines(args.output, hyps)
    print(f"{what}: {m['sentences']} sentences, beam {m['beam']}")
    print(f"BLEU {m['bleu']:.2f}  ({m['bleu_signature']})")
    print(f"chrF {m['chrf']:.2f}  ({m['chrf_signature']})")
    cli_common.write_json(args.json, {"data": what, **m})
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    if bool(args.sentences) == bool(args.input):
        raise UserError("pass sentences as arguments or --input FILE (one of the two)")
    if args.plot_attention and len(args.sentences) > 1:
        raise UserError("--plot-attention needs exactly one sentence")
    tr = _load(args)
    sentences = read_lines(args.input, what="input file") if args.input else args.sentences
    if args.plot_attention and len(sentences) != 1:
        raise UserError("--plot-attention needs exactly one sentence")
    # A blank line translates to a blank line, so output line i is always input line i.
    keep = [i for i, s in enumerate(sentences) if s.strip()]
    if len(keep) < len(sentences):
        first = next(i for i, s in enumerate(sentences) if not s.strip()) + 1
        print(
            f"{len(sentences) - len(keep)} blank input sentence(s) (first: sentence {first}) "
            "give blank output lines",
            file=sys.stderr,
        )
    translated = tr.translate(
        [sentences[i] for i in keep],
        beam=args.beam,
        progress=bool(args.output),
        **_decode_kwargs(args),
    )
    hyps = [""] * len(sentences)
    for i, h in zip(keep, translated, strict=True):
        hyps[i] = h
    if args.plot_attention:
        tr.plot_attention(sentences[0], args.plot_attention, beam=args.beam)
        print(f"attention heatmap -> {args.plot_attention}", file=sys.stderr)
    if args.output:
        _write_lines(args.output, hyps)
    elif args.json != "-":
        for h in hyps:
            print(h)
    beam = tr.config.decode.beam if args.beam is None else args.beam
    cli_common.write_json(
        args.json,
        {
            "beam": beam,
            "translations": [
                {"source": s, "translation": h} for s, h in zip(sentences, hyps, strict=True)
            ],
        },
    )
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _decode_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("decoding (default: the checkpoint's decode section)")
    g.add_argument(
        "--beam", type=int, default=None, help="beam size; 1 = greedy (unset: decode.beam)"
    )
    g.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="length normalisation exponent: score / length**alpha (unset: decode.alpha)",
    )
    g.add_argument(
        "--max-len-ratio",
        type=float,
        default=None,
        help="at most max(10, ceil(ratio * source tokens)) output tokens "
        "(unset: decode.max_len_ratio)",
    )
    g.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        help="sentences per batch (unset: decode.batch_size)",
    )


def add_cli(subparsers: Any) -> None:
    """Register ``rnnkit translate {train,eval,predict}``."""
    verbs = cli_common.add_app_parser(
        subparsers,
        "translate",
        help="machine translation (seq2seq with attention): train, eval, predict",
        description="Neural machine translation: bidirectional GRU/LSTM encoder, attentional "
        "decoder with input feeding, subword (BPE) tokenisation, beam search, sacrebleu scores.",
    )
    t = cli_common.add_train_parser(
        verbs,
        "translate",
        TranslateConfig,
        help="train a translation model",
        description="Train an encoder-decoder with attention. Values come from the defaults, "
        "then --preset (rnnkit/translate/presets/NAME.toml), then --section.key=VALUE "
        "overrides. Data: multi30k, SRC_FILE,TGT_FILE (aligned lines) or a two-column TSV; "
        "gzip accepted. Pairs with an empty side and training pairs longer than "
        "data.max_tokens subword tokens are dropped (the counts are printed).",
        data_help="multi30k, SRC_FILE,TGT_FILE or FILE.tsv",
        resume_help="continue the run in --run-dir from its last checkpoint with its saved "
        "config (--data and overrides still apply; a larger --train.max_steps extends it)",
    )
    t.add_argument("--src", default=None, help="source language for multi30k: en or de")
    t.add_argument("--tgt", default=None, help="target language for multi30k: de or en")
    t.set_defaults(func=_cmd_train)

    e = cli_common.add_verb_parser(
        verbs,
        "eval",
        help="BLEU and chrF (sacrebleu) on a parallel corpus",
        description="Translate the source side and score it against the target side with "
        "sacrebleu (detokenised text); prints sacrebleu's signatures.",
    )
    e.add_argument(
        "--data",
        default=None,
        help="SRC_FILE,TGT_FILE, FILE.tsv or multi30k:val "
        "(unset: the training run's validation data, data.val_source or multi30k:val)",
    )
    e.add_argument("--output", default=None, help="also write the translations to this file")
    _decode_args(e)
    e.set_defaults(func=_cmd_eval)

    r = cli_common.add_verb_parser(
        verbs,
        "predict",
        help="translate sentences",
        description="Translate sentences given as arguments or one per line in --input. "
        "Output line i always translates input line i: a blank line gives a blank line.",
    )
    r.add_argument("sentences", nargs="*", help="sentences to translate")
    r.add_argument("--input", default=None, help="file with one sentence per line (gzip ok)")
    r.add_argument("--output", default=None, help="write translations here, one per line")
    r.add_argument(
        "--plot-attention",
        default=None,
        metavar="PNG",
        help="save the attention heatmap of the (single) sentence's translation",
    )
    _decode_args(r)
    r.set_defaults(func=_cmd_predict)
