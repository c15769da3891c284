"""``rnnkit textgen train | eval | sample`` (``predict`` is another name for ``sample``).

    rnnkit textgen train --data tinyshakespeare --run-dir runs/shakespeare
    rnnkit textgen sample --checkpoint runs/shakespeare --prompt "ROMEO:" --length 500
    rnnkit textgen eval --checkpoint runs/shakespeare --data FILE --json metrics.json

Data-parallel training: ``torchrun --nproc_per_node 2 -m rnnkit textgen train ...``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import replace
from typing import Any

from rnnkit import cli_common
from rnnkit.runtime import use_threads
from rnnkit.textgen.config import TextgenConfig
from rnnkit.textgen.data import load_text
from rnnkit.textgen.estimator import TextGenerator

__all__ = ["add_cli"]


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0  # rank 0 of torchrun, or a plain process


def _cmd_train(args: argparse.Namespace) -> int:
    cfg = cli_common.train_config(
        TextgenConfig, args, app="textgen", default_run_dir=TextgenConfig().run_dir
    )
    if args.data:
        cfg = replace(cfg, data=replace(cfg.data, source=args.data))
    cfg = replace(cfg, run_dir=args.run_dir or cfg.run_dir)
    gen = TextGenerator(config=cfg, **cli_common.runtime_kwargs(args))
    gen.fit(run_dir=cfg.run_dir, resume=args.resume, overwrite=args.overwrite)
    result = gen.result_
    if result.evals and _is_main_process():
        last = result.evals[-1]
        print(
            f"done: {result.step} steps, val_loss {last['val_loss']:.4f} nats/char "
            f"({last['val_loss'] / math.log(2):.4f} bits/char), best {result.best_metric:.4f}; "
            f"{result.tokens_per_s:,.0f} tokens/s; run directory {cfg.run_dir}",
            file=sys.stderr if args.json == "-" else sys.stdout,  # stdout: the JSON alone
        )
    if _is_main_process():
        cli_common.write_json(args.json, gen.metrics_)
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    gen = TextGenerator.load(args.checkpoint, device=args.device, threads=args.threads)
    options = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)
    chars = gen.stream(args.prompt, args.length, seed=args.seed, **options)  # checks everything
    pieces = [args.prompt]
    out = sys.stdout
    with use_threads(args.threads):
        if args.json == "-":  # stdout carries the JSON alone
            pieces.extend(chars)
        else:
            out.write(args.prompt)
            for ch in chars:
                out.write(ch)
                out.flush()  # stream: show each character as soon as it exists
                pieces.append(ch)
            out.write("\n")
    text = "".join(pieces)
    record = {"prompt": args.prompt, "text": text, "length": args.length, "seed": args.seed}
    cli_common.write_json(args.json, {**record, **options})
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    gen = TextGenerator.load(args.checkpoint, device=args.device, threads=args.threads)
    if args.data:
        text, what = load_text(args.data), args.data
    else:
        text, what = None, f"{gen.config.data.source} (validation split)"
    m = gen.evaluate(text, batch_size=args.batch_size, seq_len=args.seq_len)
    print(
        f"{what}: {m['characters']:,} characters | loss {m['loss']:.4f} nats/char | "
        f"{m['bits_per_char']:.4f} bits/char | perplexity {m['perplexity']:.3f}",
        file=sys.stderr if args.json == "-" else sys.stdout,
    )
    cli_common.write_json(args.json, {**m, "data": what})
    return 0


def add_cli(subparsers: Any) -> None:
    """Register ``rnnkit textgen {train,eval,sample}`` (and ``predict`` = ``sample``)."""
    verbs = cli_common.add_app_parser(
        subparsers,
        "textgen",
        help="character-level language models: train, sample, evaluate",
        description="Character-level text generation with RNN/LSTM/GRU language models.",
    )
    # data.mode decides whether state is carried (train.carry_state is not an option).
    t = cli_common.add_train_parser(
        verbs,
        "textgen",
        TextgenConfig,
        help="train a model on a text file",
        description="Train a character-level language model. Values come from the defaults, "
        "then --preset (rnnkit/textgen/presets/NAME.toml), then --section.key=VALUE "
        "overrides. The weights of the best validation loss go to RUN_DIR/best. Ctrl-C "
        "writes a checkpoint; --resume continues from it.",
        data_help="built-in dataset (tinyshakespeare) or a UTF-8 text file",
        resume_help="continue the run in --run-dir from its last checkpoint (uses its "
        "saved config; overrides still apply)",
    )
    t.set_defaults(func=_cmd_train)

    e = cli_common.add_verb_parser(
        verbs,
        "eval",
        help="loss, bits/char and perplexity of a text",
        description="Evaluate a trained model on a text: loss in nats/char, bits/char and "
        "perplexity, with the hidden state carried through the text.",
    )
    e.add_argument(
        "--data",
        default=None,
        help="dataset name or text file; default: the validation split of the training data",
    )
    e.add_argument("--batch-size", type=int, default=32, help="parallel streams")
    e.add_argument("--seq-len", type=int, default=256, help="characters per forward call")
    e.set_defaults(func=_cmd_eval)

    s = cli_common.add_verb_parser(
        verbs,
        "sample",
        aliases=["predict"],
        help="generate text from a trained model (also: predict)",
        description="Generate text, streaming each character as it is sampled. "
        "With --json - the text is written as JSON only.",
    )
    s.add_argument("--prompt", default="\n", help="text to start from")
    s.add_argument("--length", type=int, default=500, help="characters to generate")
    s.add_argument("--temperature", type=float, default=0.8, help="softmax temperature; 0 = greedy")
    s.add_argument("--top-k", type=int, default=0, help="sample among the k most likely; 0 = all")
    s.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass; 1 = off")
    s.add_argument("--seed", type=int, default=None, help="random seed for reproducible samples")
    s.set_defaults(func=_cmd_sample)
