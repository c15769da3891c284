"""TextGenerator: a character-level recurrent language model behind the estimator contract.

Python API::

    from rnnkit import TextGenerator

    gen = TextGenerator(preset="tiny", max_steps=300).fit(text)  # a str of training text
    gen = TextGenerator(preset="shakespeare").fit(run_dir="runs/shakespeare")  # data.source
    print(gen.generate("ROMEO:", length=200, temperature=0.8, top_k=40, seed=1))
    gen.predict(["ROMEO:", "JULIET:"], length=100, seed=1)  # one string per prompt
    gen.evaluate(held_out)  # loss (nats/char), bits_per_char, perplexity, characters
    gen.save("models/shakespeare")
    gen = TextGenerator.load("runs/shakespeare")  # a run directory or a saved folder

``fit`` runs :class:`rnnkit.training.Trainer` (truncated BPTT with the state
carried when ``data.mode = "tbptt"``, checkpoints, resume, early stopping) and
keeps the weights of the best validation loss. Under ``torchrun`` each process
calls ``fit`` and the Trainer runs data-parallel (DDP); the command line
``rnnkit textgen train`` does exactly that.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from rnnkit import config as config_lib
from rnnkit.errors import UserError
from rnnkit.estimator import Estimator
from rnnkit.textgen.config import RESUME_KEYS, TextgenConfig, check_config
from rnnkit.textgen.data import (
    DATASETS,
    CharVocab,
    build_batches,
    encode_texts,
    load_text,
    prepare_data,
    validation_text,
)
from rnnkit.textgen.model import CharLM, build_model, check_sampling, evaluate_ids, lm_loss
from rnnkit.training import (
    Trainer,
    TrainResult,
    check_run_dir,
    cleanup_distributed,
    init_distributed,
    load_model_weights,
    read_json,
    seed_everything,
)
from rnnkit.training.resume import check_resume_config, check_resume_sizes

__all__ = ["TextGenerator"]

Text = str | os.PathLike[str]


def _is_main_process() -> bool:
    """Rank 0 of a torchrun job, or a plain single process."""
    return int(os.environ.get("RANK", "0")) == 0


def _is_file(text: str) -> bool:
    """Whether ``text`` names an existing file (a name too long for a path does not)."""
    try:
        return Path(text).expanduser().is_file()
    except (OSError, ValueError):  # ENAMETOOLONG, embedded NUL
        return False


def _read_text(value: Any, name: str) -> str:
    """``value`` itself when a str of text; the file's text when a path."""
    if isinstance(value, os.PathLike):
        return load_text(value)
    if not isinstance(value, str):
        raise UserError(
            f"{name} must be a str of text or a pathlib.Path of a text file, "
            f"got {type(value).__name__}"
        )
    if value and "\n" not in value and (value in DATASETS or _is_file(value)):
        raise UserError(
            f"{name} is the text itself, and {value!r} names a file or dataset; pass "
            f"pathlib.Path({value!r}), or set data.source and call fit() without text"
        )
    return value


class TextGenerator(Estimator):
    """A character-level language model: fit on text, then generate, predict, evaluate.

    Construction follows :class:`rnnkit.estimator.Estimator`:
    ``TextGenerator(preset="tiny", max_steps=50, hidden_size=128, seed=1)``.

    Attributes (after ``fit`` or ``load``):
        model_: the :class:`~rnnkit.textgen.model.CharLM`, in eval mode.
        vocab_: the fitted :class:`~rnnkit.textgen.data.CharVocab`.
        metrics_: validation ``loss`` (nats/char), ``bits_per_char`` and
            ``perplexity`` of the kept model, and ``measured_on``.
        history_: every evaluation of the run, ``{"step": ..., "val_loss": ...}``.
        result_: the Trainer's :class:`~rnnkit.training.TrainResult`.
    """

    app = "textgen"
    config_class = TextgenConfig
    artifact_files = ("vocab.json",)

    # -- fit -------------------------------------------------------------------

    def fit(
        self,
        text: Text | None = None,
        *,
        val_text: Text | None = None,
        run_dir: str | os.PathLike[str] | None = None,
        resume: bool = False,
        overwrite: bool = False,
    ) -> TextGenerator:
        """Train on ``text`` and keep the weights of the best validation loss.

        Args:
            text: the training text (a str), or a ``pathlib.Path`` of a UTF-8
                file; None: the config's ``data.source`` (a file or ``tinyshakespeare``).
            val_text: the validation text; None: the last ``data.val_fraction``
                of the training text (which is then not trained on).
            run_dir: where metrics, ``checkpoint/`` and ``best/`` go (None: a
                temporary directory, removed afterwards).
            resume: continue the run in ``run_dir`` from its ``checkpoint/``.
            overwrite: replace a run already in ``run_dir`` (without it, or
                ``resume``, such a run is refused before anything is loaded).

        Returns:
            self.
        """
        cfg = self._runtime_config()
        check_config(cfg)  # the whole config, before the text is read
        if _is_main_process():  # rank 0 alone owns the run directory
            check_run_dir(run_dir, resume=resume, overwrite=overwrite)
        if resume and run_dir is not None:
            check_resume_config(run_dir, cfg, RESUME_KEYS)
        with self._threads(), self._quiet():
            self._fit(cfg, text, val_text, run_dir, resume, overwrite)
        return self

    def _fit(
        self,
        cfg: TextgenConfig,
        text: Text | None,
        val_text: Text | None,
        run_dir: str | os.PathLike[str] | None,
        resume: bool,
        overwrite: bool,
    ) -> None:
        dist = init_distributed(cfg.train.device)
        try:
            seed_everything(cfg.train.seed)  # same initial weights on every rank
            vocab, train_ids, val_ids, measured_on = self._data(cfg, text, val_text)
            if resume and run_dir is not None:
                check_resume_sizes(run_dir, {"model.vocab_size": len(vocab)})
            model = build_model(cfg.model, len(vocab))
            cfg = replace(cfg, model=model.config)
            if run_dir is not None:
                cfg = replace(cfg, run_dir=str(run_dir))
            train_batches, val_batches = build_batches(
                cfg.data, train_ids, val_ids, seed=cfg.train.seed, dist=dist
            )
            if dist.is_main:
                n_params = sum(p.numel() for p in model.parameters())
                self._say(
                    f"textgen: {len(train_ids):,} train / {len(val_ids):,} validation "
                    f"characters, vocabulary {len(vocab)}, {cfg.model.cell} "
                    f"{cfg.model.num_layers}x{cfg.model.hidden_size}, {n_params:,} parameters"
                    + (f" -> {run_dir}" if run_dir is not None else "")
                )
            train_cfg = replace(cfg.train, carry_state=cfg.data.mode == "tbptt")
            if run_dir is None:
                train_cfg = replace(train_cfg, plot=False)  # nobody will see the temporary curves
            scratch = tempfile.TemporaryDirectory() if run_dir is None else contextlib.nullcontext()
            with scratch as tmp:
                out_dir = Path(run_dir if run_dir is not None else tmp)
                result = Trainer(
                    model,
                    lm_loss,
                    train_batches,
                    val_data=val_batches,
                    config=train_cfg,
                    run_dir=out_dir,
                    save_config=config_lib.to_dict(cfg),
                    extra_json={"vocab.json": vocab.to_dict()},
                    meta=self._trainer_meta(),
                    resume=resume,
                    overwrite=overwrite,
                    dist=dist,
                ).fit()
                kept = result.evals[-1] if result.evals else None
                best = out_dir / "best"
                if dist.is_main and (best / "model.safetensors").is_file():
                    load_model_weights(model, best)  # the best evaluation, not the last step
                    kept = read_json(best / "best.json")
        finally:
            cleanup_distributed()
        self.model_ = model.eval()
        self.vocab_ = vocab
        self.config = replace(self.config, model=replace(self.config.model, vocab_size=len(vocab)))
        self.result_: TrainResult = result
        self.history_ = [dict(e) for e in result.evals]
        self.metrics_ = _metrics(kept, measured_on)

    def _data(
        self, cfg: TextgenConfig, text: Text | None, val_text: Text | None
    ) -> tuple[CharVocab, torch.Tensor, torch.Tensor, str]:
        """The vocabulary, the training and validation ids, and what validation is."""
        d = cfg.data
        if d.mode not in ("tbptt", "random"):
            raise UserError(f"data.mode must be tbptt or random, got {d.mode!r}")
        tail = f"the last {d.val_fraction:.0%} of"
        if text is None and val_text is None:
            return (*prepare_data(d), f"{tail} {d.source} (validation split)")
        train = load_text(d.source) if text is None else _read_text(text, "text")
        what = d.source if text is None else "the text passed to fit"
        if isinstance(text, os.PathLike):
            what = os.fspath(text)
        if val_text is None:
            vocab, train_ids, val_ids = encode_texts(train, val_fraction=d.val_fraction)
            return vocab, train_ids, val_ids, f"{tail} {what} (validation split)"
        val = _read_text(val_text, "val_text")
        vocab, train_ids, val_ids = encode_texts(train, val)
        return vocab, train_ids, val_ids, f"val_text passed to fit ({len(val):,} characters)"

    # -- generate / predict / evaluate ---------------------------------------------

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
        """Yield ``length`` generated characters one by one (O(1) work each).

        Every argument is checked here, before the first character: an empty
        prompt, a character the model never saw, or an option out of range is a
        :class:`~rnnkit.errors.UserError`. ``seed`` makes the sample reproducible.
        """
        self._check_fitted()
        if length < 0:
            raise UserError(f"length must be >= 0, got {length}")
        if not prompt:
            raise UserError("the prompt is empty; pass at least one character, e.g. --prompt 'A'")
        check_sampling(temperature=temperature, top_k=top_k, top_p=top_p)
        device = next(self.model_.parameters()).device
        ids = self.vocab_.encode(prompt).to(device)  # (P,); unknown characters -> UserError
        gen = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
        return self._chars(ids, length, temperature, top_k, top_p, gen)

    def _chars(
        self,
        ids: torch.Tensor,
        length: int,
        temperature: float,
        top_k: int,
        top_p: float,
        gen: torch.Generator | None,
    ) -> Iterator[str]:
        model: CharLM = self.model_
        for i in model.generate(
            ids, length, temperature=temperature, top_k=top_k, top_p=top_p, generator=gen
        ):
            yield self.vocab_.chars_[i]

    def generate(
        self,
        prompt: str,
        length: int = 500,
        *,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> str:
        """The prompt followed by ``length`` generated characters (see :meth:`stream`)."""
        chars = self.stream(
            prompt, length, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed
        )
        with self._threads():
            return prompt + "".join(chars)

    def predict(
        self,
        prompts: str | Iterable[str],
        length: int = 500,
        *,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
    ) -> list[str]:
        """:meth:`generate` for each prompt: a list with one string per prompt.

        A single str is one prompt. Each prompt is sampled with the same ``seed``,
        so ``predict([p])[0] == generate(p)`` for the same options.
        """
        self._check_fitted()
        items = [prompts] if isinstance(prompts, str) else list(prompts)
        if not all(isinstance(p, str) for p in items):
            raise UserError("prompts must be a str or a list of str")
        options = dict(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
        return [self.generate(p, length, **options) for p in items]  # type: ignore[arg-type]

    def evaluate(
        self, text: Text | None = None, *, batch_size: int = 32, seq_len: int = 256
    ) -> dict[str, float]:
        """Loss (nats/char), bits/char and perplexity of ``text``, state carried throughout.

        ``text``: a str, or a ``pathlib.Path`` of a UTF-8 file; None: the
        validation split of the config's ``data.source`` (its last ``val_fraction``).
        Returns ``loss``, ``bits_per_char``, ``perplexity`` and ``characters``.
        """
        self._check_fitted()
        if text is None:
            body = validation_text(self.config.data)
        else:
            body = load_text(text) if isinstance(text, os.PathLike) else _read_text(text, "text")
        with self._threads():
            return evaluate_ids(
                self.model_, self.vocab_.encode(body), batch_size=batch_size, seq_len=seq_len
            )

    # -- save / load hooks -----------------------------------------------------------

    def _artifacts(self) -> dict[str, Any]:
        return {"vocab.json": self.vocab_.to_dict()}

    def _restore(self, directory: Path) -> None:
        self.vocab_ = CharVocab.from_dict(read_json(directory / "vocab.json"))
        model_cfg = replace(self.config.model, vocab_size=len(self.vocab_))
        self.config = replace(self.config, model=model_cfg)
        model = CharLM(model_cfg)
        load_model_weights(model, directory)
        self.model_ = model.eval()


def _metrics(kept: dict[str, Any] | None, measured_on: str) -> dict[str, Any]:
    """The kept model's validation metrics from its evaluation record."""
    if not kept or kept.get("val_loss") is None:
        return {}
    loss = float(kept["val_loss"])
    return {
        "loss": loss,
        "bits_per_char": loss / math.log(2),
        "perplexity": math.exp(loss),
        "measured_on": measured_on,
    }
