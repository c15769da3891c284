"""Text generation with a character-level recurrent language model.

Read top to bottom: config -> data -> model -> loss -> train -> load ->
evaluate -> sample -> command line. Python API::

    from rnnkit.pipelines import textgen

    cfg = textgen.load_config(preset="tiny", overrides=["data.source=notes.txt"])
    result = textgen.train(cfg)                       # writes cfg.run_dir
    gen = textgen.TextGenerator.load(cfg.run_dir)     # best/ (or checkpoint/)
    print(gen.generate("ROMEO:", length=200, temperature=0.8, top_k=40, seed=1))
    print(gen.evaluate(text))                          # nats/char, bits/char, perplexity

Command line::

    rnnkit textgen train --data tinyshakespeare --run-dir runs/shakespeare
    rnnkit textgen sample --checkpoint runs/shakespeare --prompt "ROMEO:" --length 500
    rnnkit textgen eval --checkpoint runs/shakespeare --data FILE
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit import config as house_config
from rnnkit.data.text import (
    CharVocab,
    RandomWindows,
    StreamBatches,
    TextBatch,
    load_text,
    split_by_position,
)
from rnnkit.errors import UserError
from rnnkit.models.char_lm import CharLM, CharLMConfig
from rnnkit.training import (
    StepResult,
    TrainConfig,
    Trainer,
    TrainResult,
    cleanup_distributed,
    init_distributed,
    load_model_weights,
    read_json,
    resolve_checkpoint,
    seed_everything,
)
from rnnkit.training.distributed import DistContext

__all__ = [
    "TextDataConfig",
    "TextGenerator",
    "TextgenConfig",
    "add_cli",
    "build_batches",
    "evaluate_ids",
    "lm_loss",
    "load_config",
    "prepare_data",
    "train",
]

# ---------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------


@dataclass(kw_only=True)
class TextDataConfig:
    source: str = "tinyshakespeare"  # built-in dataset name or a UTF-8 text file
    val_fraction: float = 0.1  # the last 10% of the text is validation
    batch_size: int = 64
    seq_len: int = 100  # characters per chunk (the BPTT truncation length)
    mode: str = "tbptt"  # tbptt: contiguous streams, state carried | random: random windows
    batches_per_epoch: int = 1000  # random mode only


def _default_train() -> TrainConfig:
    return TrainConfig(max_steps=5000, lr=2e-3, min_lr=1e-4, warmup_steps=100, eval_interval=250)


@dataclass(kw_only=True)
class TextgenConfig:
    data: TextDataConfig = field(default_factory=TextDataConfig)
    model: CharLMConfig = field(default_factory=CharLMConfig)
    train: TrainConfig = field(default_factory=_default_train)
    run_dir: str = "runs/textgen"


def load_config(*, preset: str | None = None, overrides: Any = ()) -> TextgenConfig:
    """Defaults <- ``configs/textgen/<preset>.toml`` <- overrides (``["model.cell=gru"]``)."""
    return house_config.load_config(
        TextgenConfig, app="textgen", preset=preset, overrides=overrides
    )


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def prepare_data(cfg: TextDataConfig) -> tuple[CharVocab, Tensor, Tensor]:
    """Load the text, fit the vocabulary on the training part, encode both parts."""
    if cfg.mode not in ("tbptt", "random"):
        raise UserError(f"data.mode must be tbptt or random, got {cfg.mode!r}")
    text = load_text(cfg.source)
    n_train = len(text) - int(round(len(text) * cfg.val_fraction))
    # The vocabulary is fitted on the training part. Characters that occur only in
    # the validation tail are added too (documented fallback): otherwise the
    # validation loss could not be computed at all.
    vocab = CharVocab().fit(text[:n_train] or text)
    if set(text[n_train:]) - set(vocab.stoi_):
        vocab = CharVocab().fit(text)
    ids = vocab.encode(text)  # (N,)
    train_ids, val_ids = split_by_position(ids, cfg.val_fraction)
    return vocab, train_ids, val_ids


def build_batches(
    cfg: TextDataConfig, train_ids: Tensor, val_ids: Tensor, *, seed: int, dist: DistContext
) -> tuple[Any, StreamBatches]:
    """Training batches (TBPTT streams or random windows) and validation streams."""
    B, T, r, w = cfg.batch_size, cfg.seq_len, dist.rank, dist.world_size
    if cfg.mode == "tbptt":
        train_batches: Any = StreamBatches(train_ids, B, T, rank=r, world_size=w)
    else:
        train_batches = RandomWindows(
            train_ids,
            B,
            T,
            batches_per_epoch=cfg.batches_per_epoch,
            seed=seed,
            rank=r,
            world_size=w,
        )
    # Fewer validation streams when the validation text is short.
    val_rows = max(1, min(B, (len(val_ids) - 1) // (T * w)))
    val_batches = StreamBatches(val_ids, val_rows, T, rank=r, world_size=w)
    return train_batches, val_batches


# ---------------------------------------------------------------------------
# Model and loss
# ---------------------------------------------------------------------------


def build_model(cfg: CharLMConfig, vocab_size: int) -> CharLM:
    return CharLM(replace(cfg, vocab_size=vocab_size))


def lm_loss(model: torch.nn.Module, batch: TextBatch, state: Any) -> StepResult:
    """Mean next-character cross-entropy (nats/char) of one batch."""
    out = model(batch.x, state)  # logits (B, T, V)
    loss = F.cross_entropy(out.logits.flatten(0, 1), batch.y.flatten())  # (B*T, V) vs (B*T,)
    return StepResult(loss, out.state, batch.y.numel())


# ---------------------------------------------------------------------------
# Train
# ---------------------------------------------------------------------------


def train(cfg: TextgenConfig, *, resume: bool = False) -> TrainResult:
    """Train a character LM; checkpoints, metrics and curves go to ``cfg.run_dir``."""
    dist = init_distributed(cfg.train.device)
    try:
        seed_everything(cfg.train.seed)  # same initial weights on every rank
        vocab, train_ids, val_ids = prepare_data(cfg.data)
        model = build_model(cfg.model, len(vocab))
        cfg = replace(cfg, model=model.config)
        train_batches, val_batches = build_batches(
            cfg.data, train_ids, val_ids, seed=cfg.train.seed, dist=dist
        )
        if dist.is_main:
            n_params = sum(p.numel() for p in model.parameters())
            print(
                f"textgen: {len(train_ids):,} train / {len(val_ids):,} validation characters, "
                f"vocabulary {len(vocab)}, {cfg.model.cell} {cfg.model.num_layers}x"
                f"{cfg.model.hidden_size}, {n_params:,} parameters -> {cfg.run_dir}",
                file=sys.stderr,
            )
        train_cfg = replace(cfg.train, carry_state=cfg.data.mode == "tbptt")
        trainer = Trainer(
            model,
            lm_loss,
            train_batches,
            val_data=val_batches,
            config=train_cfg,
            run_dir=cfg.run_dir,
            save_config=house_config.to_dict(cfg),
            extra_json={"vocab.json": vocab.to_dict()},
            resume=resume,
            dist=dist,
        )
        return trainer.fit()
    finally:
        cleanup_distributed()


# ---------------------------------------------------------------------------
# Load, evaluate, sample
# ---------------------------------------------------------------------------


@torch.no_grad()
def evaluate_ids(
    model: CharLM, ids: Tensor, *, batch_size: int = 32, seq_len: int = 256
) -> dict[str, float]:
    """Next-character loss over a whole id stream, state carried chunk to chunk.

    Returns ``loss`` (nats/char), ``bits_per_char`` (= loss / ln 2) and
    ``perplexity`` (= exp(loss)), over the ``characters`` predicted.
    """
    if len(ids) < 2:
        raise UserError("the text to evaluate needs at least 2 characters")
    model.eval()
    rows = max(1, min(batch_size, (len(ids) - 1) // seq_len))
    L = (len(ids) - 1) // rows
    x = ids[: rows * L].view(rows, L)  # (rows, L)
    y = ids[1 : rows * L + 1].view(rows, L)
    total, state = 0.0, None
    for s in range(0, L, seq_len):
        out = model(x[:, s : s + seq_len], state)  # (rows, t, V)
        state = out.state
        total += F.cross_entropy(
            out.logits.flatten(0, 1), y[:, s : s + seq_len].flatten(), reduction="sum"
        ).item()
    n = rows * L
    loss = total / n
    return {
        "loss": loss,
        "bits_per_char": loss / math.log(2),
        "perplexity": math.exp(loss),
        "characters": n,
    }


class TextGenerator:
    """A trained character LM with its vocabulary: generate and evaluate text."""

    def __init__(self, model: CharLM, vocab: CharVocab, config: TextgenConfig) -> None:
        self.model = model.eval()
        self.vocab = vocab
        self.config = config

    @classmethod
    def load(cls, checkpoint: str | Path) -> TextGenerator:
        """Load ``best/`` or ``checkpoint/`` of a run directory, or a checkpoint directory."""
        d = resolve_checkpoint(
            checkpoint, required=("config.json", "model.safetensors", "vocab.json")
        )
        try:
            cfg = house_config.from_dict(TextgenConfig, read_json(d / "config.json"))
        except UserError as exc:
            raise UserError(f"{d / 'config.json'} is not a textgen config ({exc})") from exc
        vocab = CharVocab.from_dict(read_json(d / "vocab.json"))
        model = CharLM(cfg.model)
        load_model_weights(model, d)
        return cls(model, vocab, cfg)

    def stream(
        self,
        prompt: str,
        length: int = 500,
        *,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> Iterator[str]:
        """Yield ``length`` generated characters one by one (O(1) work each)."""
        if length < 0:
            raise UserError(f"length must be >= 0, got {length}")
        if not prompt:
            raise UserError("the prompt is empty; pass at least one character, e.g. --prompt 'A'")
        ids = self.vocab.encode(prompt)  # (P,); unknown characters -> UserError
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        for i in self.model.generate(
            ids, length, temperature=temperature, top_k=top_k, top_p=top_p, generator=gen
        ):
            yield self.vocab.chars_[i]

    def generate(self, prompt: str, length: int = 500, **kwargs: Any) -> str:
        """The prompt followed by ``length`` generated characters."""
        return prompt + "".join(self.stream(prompt, length, **kwargs))

    def evaluate(self, text: str, **kwargs: Any) -> dict[str, float]:
        """Loss (nats/char), bits/char and perplexity of ``text``."""
        return evaluate_ids(self.model, self.vocab.encode(text), **kwargs)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _cmd_train(args: argparse.Namespace) -> int:
    cfg = house_config.train_config(
        TextgenConfig, args, app="textgen", default_run_dir=TextgenConfig().run_dir
    )
    if args.resume:  # the saved vocabulary size is derived again from the data
        cfg = replace(cfg, model=replace(cfg.model, vocab_size=0))
    if args.data:
        cfg = replace(cfg, data=replace(cfg.data, source=args.data))
    if args.run_dir:
        cfg = replace(cfg, run_dir=args.run_dir)
    result = train(cfg, resume=args.resume)
    if result.evals and int(os.environ.get("RANK", "0")) == 0:
        last = result.evals[-1]
        print(
            f"done: {result.step} steps, val_loss {last['val_loss']:.4f} nats/char "
            f"({last['val_loss'] / math.log(2):.4f} bits/char), best {result.best_metric:.4f}; "
            f"{result.tokens_per_s:,.0f} tokens/s; run directory {cfg.run_dir}"
        )
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    gen = TextGenerator.load(args.checkpoint)
    out = sys.stdout
    chars = gen.stream(
        args.prompt,
        args.length,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
    )
    first = next(chars, "")  # validates the prompt before anything is printed
    out.write(args.prompt + first)
    out.flush()
    for ch in chars:
        out.write(ch)
        out.flush()  # stream: show each character as soon as it exists
    out.write("\n")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    gen = TextGenerator.load(args.checkpoint)
    if args.data:
        text, what = load_text(args.data), args.data
    else:
        data_cfg = gen.config.data
        full = load_text(data_cfg.source)
        n_val = int(round(len(full) * data_cfg.val_fraction))
        text, what = full[len(full) - n_val :], f"{data_cfg.source} (validation split)"
    m = gen.evaluate(text, batch_size=args.batch_size, seq_len=args.seq_len)
    print(
        f"{what}: {m['characters']:,} characters | loss {m['loss']:.4f} nats/char | "
        f"{m['bits_per_char']:.4f} bits/char | perplexity {m['perplexity']:.3f}"
    )
    return 0


def add_cli(subparsers: Any) -> None:
    """Register ``rnnkit textgen {train,sample,eval}``."""
    fmt = argparse.ArgumentDefaultsHelpFormatter
    verbs = house_config.add_app_parser(
        subparsers,
        "textgen",
        help="character-level language models: train, sample, evaluate",
        description="Character-level text generation with RNN/LSTM/GRU language models.",
    )
    # data.mode decides whether state is carried (train.carry_state is not an option).
    t = house_config.add_train_parser(
        verbs,
        "textgen",
        TextgenConfig,
        help="train a model on a text file",
        description="Train a character-level language model. Values come from the defaults, "
        "then --preset (configs/textgen/NAME.toml), then --section.key=VALUE overrides. "
        "Ctrl-C writes a checkpoint; --resume continues from it.",
        data_help="built-in dataset (tinyshakespeare) or a UTF-8 text file",
        resume_help="continue the run in --run-dir from its last checkpoint (uses its "
        "saved config; overrides still apply)",
    )
    t.set_defaults(func=_cmd_train)

    s = verbs.add_parser(
        "sample",
        help="generate text from a trained model",
        formatter_class=fmt,
        description="Generate text, streaming each character as it is sampled.",
    )
    s.add_argument(
        "--checkpoint",
        required=True,
        help="run directory (uses best/ or checkpoint/) or checkpoint directory",
    )
    s.add_argument("--prompt", default="\n", help="text to start from")
    s.add_argument("--length", type=int, default=500, help="characters to generate")
    s.add_argument("--temperature", type=float, default=0.8, help="softmax temperature; 0 = greedy")
    s.add_argument("--top-k", type=int, default=0, help="sample among the k most likely; 0 = all")
    s.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass; 1 = off")
    s.add_argument("--seed", type=int, default=None, help="random seed for reproducible samples")
    s.set_defaults(func=_cmd_sample)

    e = verbs.add_parser(
        "eval",
        help="loss, bits/char and perplexity of a text",
        formatter_class=fmt,
        description="Evaluate a trained model on a text: loss in nats/char, bits/char and "
        "perplexity, with the hidden state carried through the text.",
    )
    e.add_argument(
        "--checkpoint",
        required=True,
        help="run directory (uses best/ or checkpoint/) or checkpoint directory",
    )
    e.add_argument(
        "--data",
        default=None,
        help="dataset name or text file; default: the validation split of the training data",
    )
    e.add_argument("--batch-size", type=int, default=32, help="parallel streams")
    e.add_argument("--seq-len", type=int, default=256, help="characters per forward call")
    e.set_defaults(func=_cmd_eval)
