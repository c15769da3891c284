"""Training one text classifier: tokenizer, labels, model, the loop, the kept weights.

:func:`fit_classifier` is what ``SentimentClassifier.fit`` runs for one model
(and each ensemble member runs, possibly in a worker process). Its pieces:
:func:`make_loss` (cross-entropy, optionally class-weighted, optionally with
adversarial training on the embeddings), :func:`make_optimizer` (the house
AdamW, fused on CPU) and :func:`val_metrics` (what model selection reads).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from rnnkit import config as config_lib
from rnnkit.data.tokenizers import Tokenizer, build_tokenizer
from rnnkit.sentiment.config import SentimentConfig, check_config
from rnnkit.sentiment.data import BucketBatches, ClsBatch, LabelEncoder, truncate
from rnnkit.sentiment.model import TextClassifier, load_word_vectors, predict_batches
from rnnkit.sentiment.report import classification_report
from rnnkit.training import (
    StepResult,
    TrainConfig,
    Trainer,
    TrainResult,
    build_optimizer,
    load_model_weights,
    seed_everything,
)
from rnnkit.training.resume import check_resume_sizes

__all__ = [
    "Fitted",
    "encode",
    "fit_classifier",
    "make_loss",
    "make_optimizer",
    "plan_steps",
    "val_metrics",
]


def make_loss(
    class_weights: torch.Tensor | None, adversarial_eps: float = 0.0
) -> Callable[..., StepResult]:
    """Cross-entropy (class-weighted if ``class_weights`` (C,) is given).

    With ``adversarial_eps`` > 0, training adds the loss at the worst-case
    embedding perturbation of L2 norm eps per text, to first order
    (Miyato et al. 2017, eq. 3-5): r = eps g / ||g||_2 with g = dL/de, and
    loss = L(e) + L(e + r). It costs about one more forward + backward.
    """

    def loss_fn(model: torch.nn.Module, batch: ClsBatch, state: Any) -> StepResult:
        adv = adversarial_eps > 0 and model.training
        e = model.embed_tokens(batch.ids)  # (B, T, D), embedding / word dropout included
        out = model(batch.ids, batch.lengths, embeddings=e)  # logits (B, C)
        w = None if class_weights is None else class_weights.to(out.logits.device)
        loss = F.cross_entropy(out.logits, batch.labels, weight=w)
        if adv:
            (g,) = torch.autograd.grad(loss, e, retain_graph=True)
            norm = g.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None]  # (B, 1, 1)
            r = adversarial_eps * g.detach() / norm  # padding rows have zero gradient
            out_adv = model(batch.ids, batch.lengths, embeddings=e + r)
            loss = loss + F.cross_entropy(out_adv.logits, batch.labels, weight=w)
        return StepResult(loss, None, int(batch.lengths.sum()))

    return loss_fn


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """:func:`rnnkit.training.build_optimizer`, but AdamW runs fused: the embedding matrix
    (V x D) dominates the update, and fused AdamW took 7.5 ms instead of 32 ms for a
    14,000 x 128 matrix on one CPU thread here."""
    opt = build_optimizer(model, cfg)
    if isinstance(opt, torch.optim.AdamW):
        # The same groups (weight decay on matrices only), without the group defaults.
        groups = [
            {"params": g["params"], "weight_decay": g["weight_decay"]} for g in opt.param_groups
        ]
        with contextlib.suppress(RuntimeError, TypeError):  # older torch: no fused CPU AdamW
            opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=True)
    return opt


@torch.no_grad()
def val_metrics(
    model: torch.nn.Module, batches: BucketBatches, classes: Sequence[Any]
) -> dict[str, float]:
    """Validation loss, accuracy, macro-F1 and the model-selection score ``val_score``."""
    probs, targets = predict_batches(model, batches)
    rep = classification_report(targets, probs.argmax(1), classes)
    nll = F.nll_loss(torch.log(probs.clamp_min(1e-12)), torch.as_tensor(targets))
    return {
        "val_loss": float(nll),
        "val_accuracy": rep["accuracy"],
        "val_macro_f1": rep["macro_f1"],
        # Model selection: dev accuracy, exact ties broken by the lower dev loss
        # (on small dev sets accuracy saturates; the first 100% is not the best).
        "val_score": rep["accuracy"] - 1e-6 * min(float(nll), 10.0),
    }


def plan_steps(cfg: SentimentConfig, n_train: int) -> tuple[int, int, str]:
    """``(max_steps, eval_interval, the length in words)`` of a run on ``n_train`` texts.

    ``epochs`` > 0: epochs x batches per epoch, ``evals_per_epoch`` evaluations
    per epoch; ``train.max_steps`` > 0 ends the run earlier if it comes first
    (and ``train.max_seconds`` always does). ``epochs = 0``: ``train.max_steps``.
    """
    per_epoch = -(-n_train // cfg.data.batch_size)  # batches of BucketBatches
    cap = cfg.train.max_steps
    if cfg.epochs <= 0:
        return cap, cfg.train.eval_interval, f"{cap} steps (train.max_steps)"
    every = max(1, per_epoch // max(1, cfg.evals_per_epoch))
    planned = cfg.epochs * per_epoch
    if 0 < cap < planned:
        return cap, every, f"{cap} steps (train.max_steps, before epochs={cfg.epochs} ends)"
    return planned, every, f"{planned} steps ({cfg.epochs} epochs)"


def encode(tokenizer: Tokenizer, texts: Sequence[str], max_len: int) -> list[list[int]]:
    """Token ids of each text, the head and tail of longer ones kept (:func:`truncate`)."""
    return [truncate(tokenizer.encode(t), max_len) for t in texts]


class Fitted(NamedTuple):
    """What :func:`fit_classifier` returns: the kept model (eval mode) and what it needs."""

    model: TextClassifier
    tokenizer: Tokenizer
    labels: LabelEncoder
    config: SentimentConfig  # with the model's vocab_size and num_classes filled in
    result: TrainResult
    metrics: dict[str, float]  # the kept model's validation loss, accuracy, macro-F1


def fit_classifier(
    cfg: SentimentConfig,
    texts: Sequence[str],
    labels: Sequence[Any],
    val_texts: Sequence[str],
    val_labels: Sequence[Any],
    *,
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    verbose: bool = True,
) -> Fitted:
    """Fit tokenizer, labels and one model; keep the weights of the best evaluation.

    ``run_dir``: where metrics and checkpoints go (a temporary directory when
    None); ``resume``/``overwrite``: as in :class:`~rnnkit.training.Trainer`.
    ``verbose=False`` prints nothing.
    """
    check_config(cfg)
    seed_everything(cfg.train.seed)
    enc = LabelEncoder().fit(labels)
    y = enc.transform(labels, where="the training data")
    y_val = enc.transform(val_labels, where="the validation data")
    d = cfg.data
    tok = build_tokenizer(
        d.tokenizer,
        lowercase=d.lowercase,
        min_freq=d.min_freq,
        max_size=d.max_vocab,
        subword_vocab_size=d.subword_vocab_size,
        oov_pieces=d.oov_pieces,
    ).fit(iter(texts))
    ids, ids_val = encode(tok, texts, d.max_len), encode(tok, val_texts, d.max_len)

    def say(message: str) -> None:
        if verbose:
            print(message, file=sys.stderr)

    vocab_size = len(tok)
    mcfg = replace(cfg.model, vocab_size=vocab_size, num_classes=len(enc))
    model = TextClassifier(mcfg)
    if d.vectors:
        vectors, found = load_word_vectors(d.vectors, tok.itos_, mcfg.embed_dim)
        model.set_pretrained(vectors, found)
        say(f"sentiment: pretrained vectors for {int(found.sum())}/{vocab_size} words")
    cfg = replace(cfg, model=mcfg)
    if resume and run_dir is not None:
        sizes = {"model.vocab_size": vocab_size, "model.num_classes": len(enc)}
        check_resume_sizes(run_dir, sizes)

    weights = None
    if d.class_weights == "balanced":
        counts = torch.bincount(torch.tensor(y), minlength=len(enc)).double()
        weights = (len(y) / (len(enc) * counts.clamp(min=1))).float()  # (C,)

    B = d.batch_size
    train_batches = BucketBatches(ids, y, B, shuffle=True, seed=cfg.train.seed)
    val_batches = BucketBatches(ids_val, y_val, max(B, 64), shuffle=False)
    steps, every, length = plan_steps(cfg, len(ids))
    tcfg = replace(cfg.train, carry_state=False, max_steps=steps, eval_interval=every)

    def evaluate(m: torch.nn.Module) -> dict[str, float]:
        return val_metrics(m, val_batches, enc.classes_)

    n_params = sum(p.numel() for p in model.parameters())
    say(
        f"sentiment: {len(ids):,} train / {len(ids_val):,} validation texts, "
        f"{len(enc)} classes, vocabulary {vocab_size:,} ({d.tokenizer}), "
        f"{'bi' if mcfg.bidirectional else ''}{mcfg.cell} {mcfg.num_layers}x"
        f"{mcfg.hidden_size} + {mcfg.pooling} pooling, {n_params:,} parameters, "
        f"{len(train_batches)} batches/epoch, {length}"
    )
    with tempfile.TemporaryDirectory(prefix="rnnkit-sentiment-") as tmp:
        out_dir = Path(run_dir) if run_dir is not None else Path(tmp)
        trainer = Trainer(
            model,
            make_loss(weights, cfg.adversarial_eps),
            train_batches,
            evaluate=evaluate,
            config=tcfg,
            run_dir=out_dir,
            save_config=config_lib.to_dict(cfg),
            extra_json={"tokenizer.json": tok.to_dict(), "labels.json": enc.to_dict()},
            meta={"app": "sentiment", "estimator": "SentimentClassifier"},
            resume=resume,
            overwrite=overwrite,
            optimizer=make_optimizer(model, tcfg),
        )
        with _silenced(not verbose):
            result = trainer.fit()
        best = out_dir / "best"
        if (best / "model.safetensors").exists():
            load_model_weights(model, best)  # the best evaluation, not the last step
    model.eval()
    kept = val_metrics(model, val_batches, enc.classes_)
    kept.pop("val_score")
    return Fitted(model, tok, enc, cfg, result, kept)


@contextlib.contextmanager
def _silenced(on: bool) -> Any:
    """Send stdout and stderr to /dev/null while ``on`` (the loop's own messages)."""
    if not on:
        yield
        return
    with (
        open(os.devnull, "w") as null,
        contextlib.redirect_stderr(null),
        contextlib.redirect_stdout(null),
    ):
        yield
