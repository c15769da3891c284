"""The translator: subword tokenisers + :class:`~rnnkit.translate.model.Seq2Seq` + search.

Longer than 400 lines: the estimator contract is one class (fit with its tokenisers,
BPE-dropout and checkpoint averaging; translate, evaluate, attention); the pieces it
composes live in data.py, model.py, search.py and averaging.py.

::

    from rnnkit import Translator

    tr = Translator(preset="tiny", epochs=1).fit(pairs, val_pairs=dev_pairs)
    tr.translate(["A man is riding a bicycle."], beam=5)   # tr.predict(...) is the same
    tr.evaluate(dev_pairs, beam=5)        # BLEU and chrF with sacrebleu's signatures
    tr.save("models/en-de"); tr = Translator.load("models/en-de")

Tokenisation: one byte-level BPE model per language (Hugging Face
``tokenizers``, :class:`rnnkit.data.tokenizers.SubwordTokenizer`, case kept),
fitted on the training pairs only and saved as ``tokenizer.json``; outputs
are decoded back to plain text before scoring, so BLEU is sacrebleu's own
tokenisation of detokenised text (comparable with published figures). With
``data.bpe_dropout`` the training pairs are segmented again every epoch by
BPE-dropout; validation and translation always segment deterministically.

With ``average_last = K`` the weights at the last K evaluation points are
averaged at the end of ``fit`` (:mod:`rnnkit.translate.averaging`) and the
average is kept when it scores better on validation. In a run directory the
snapshots live in ``snapshots/``, the average in ``average/``; a kept average
becomes ``best/`` and the best single evaluation point moves to ``best_single/``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from rnnkit import config as config_lib
from rnnkit.data.tokenizers import SubwordTokenizer
from rnnkit.errors import UserError
from rnnkit.estimator import Estimator
from rnnkit.training import (
    StepResult,
    Trainer,
    TrainResult,
    check_run_dir,
    load_model_weights,
    read_json,
    seed_everything,
    write_checkpoint,
)
from rnnkit.training.resume import check_resume_config, check_resume_sizes
from rnnkit.translate.averaging import (
    Snapshots,
    average_weights,
    keep_single_best,
    prepare_run_dir,
)
from rnnkit.translate.config import (
    RESUME_KEYS,
    TranslateConfig,
    check_config,
    check_decode,
    plan_steps,
)
from rnnkit.translate.data import (
    PairBatches,
    PairsLike,
    Resample,
    as_pairs,
    cleaned,
    eval_source,
    fit_pairs,
    load_pairs,
)
from rnnkit.translate.metrics import score
from rnnkit.translate.model import Seq2Seq
from rnnkit.translate.search import beam_search, greedy_search, max_lengths

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Translator"]


class Translator(Estimator):
    """Encoder-decoder translation with subword tokenisers (the rnnkit estimator contract).

    Construct from keywords and/or a preset (``Translator(preset="tiny", epochs=1)``;
    every option is a key of :class:`~rnnkit.translate.config.TranslateConfig`).

    Attributes (after ``fit`` or ``load``): ``model_`` (:class:`Seq2Seq`, eval mode),
    ``src_tokenizer_``, ``tgt_tokenizer_``, ``metrics_`` (validation metrics of the
    kept model) and, after ``fit``, ``result_`` (the TrainResult) and ``history_``
    (one dict per evaluation).
    """

    app = "translate"
    config_class = TranslateConfig
    artifact_files = ("tokenizer.json",)

    # -- encoding ------------------------------------------------------------

    @staticmethod
    def _encode(tok: SubwordTokenizer, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in tok.tokenizer_.encode_batch(list(texts))]

    def _encode_src(self, sentences: Sequence[str]) -> list[list[int]]:
        for i, s in enumerate(sentences):
            if not isinstance(s, str) or not s.strip():
                raise UserError(
                    f"sentence {i + 1} is empty; every sentence to translate needs some text"
                )
        return self._encode(self.src_tokenizer_, [s.strip() for s in sentences])

    def _decode(self, ids: list[int]) -> str:
        n = len(self.tgt_tokenizer_)
        return self.tgt_tokenizer_.decode([i for i in ids if i < n]).strip()

    # -- fit -----------------------------------------------------------------

    def fit(
        self,
        pairs: PairsLike | None = None,
        *,
        val_pairs: PairsLike | None = None,
        run_dir: str | Path | None = None,
        resume: bool = False,
        overwrite: bool = False,
    ) -> Translator:
        """Fit the tokenisers on ``pairs`` and train the model (teacher forcing).

        ``pairs=None`` reads ``config.data``; ``val_pairs=None`` then follows
        ``config.data`` too (otherwise the last ``data.val_fraction`` of ``pairs``).
        Validation BLEU (greedy) is computed at each evaluation and picks ``best/``;
        with a ``run_dir`` the fitted model is that best one.
        """
        cfg = self._runtime_config()
        check_config(cfg)  # the whole config, before any data is read
        check_run_dir(run_dir, resume=resume, overwrite=overwrite)
        if resume and run_dir is not None:
            check_resume_config(run_dir, cfg, RESUME_KEYS)
        with self._threads(), self._quiet():
            self._fit(cfg, pairs, val_pairs, run_dir, resume, overwrite)
        return self

    def _fit(
        self,
        cfg: TranslateConfig,
        pairs: PairsLike | None,
        val_pairs: PairsLike | None,
        run_dir: str | Path | None,
        resume: bool,
        overwrite: bool,
    ) -> None:
        seed_everything(cfg.train.seed)
        d = cfg.data
        train_pairs, val, measured_on = fit_pairs(d, pairs, val_pairs, self._say)
        self.src_tokenizer_ = SubwordTokenizer(vocab_size=d.vocab_size, lowercase=False)
        self.tgt_tokenizer_ = SubwordTokenizer(vocab_size=d.vocab_size, lowercase=False)
        self.src_tokenizer_.fit(p.src for p in train_pairs)
        self.tgt_tokenizer_.fit(p.tgt for p in train_pairs)
        src = self._encode(self.src_tokenizer_, [p.src for p in train_pairs])
        tgt = self._encode(self.tgt_tokenizer_, [p.tgt for p in train_pairs])
        keep = [i for i in range(len(src)) if len(src[i]) <= d.max_tokens >= len(tgt[i])]
        if len(keep) < len(src):
            self._say(
                f"translate: dropped {len(src) - len(keep)} training pairs longer than "
                f"data.max_tokens={d.max_tokens} subword tokens"
            )
        if not keep:
            raise UserError(f"no training pairs within data.max_tokens={d.max_tokens}; raise it")
        src, tgt = [src[i] for i in keep], [tgt[i] for i in keep]
        resample = None
        if d.bpe_dropout > 0:
            resample = self._bpe_dropout(
                [train_pairs[i].src for i in keep],
                [train_pairs[i].tgt for i in keep],
                d.bpe_dropout,
                cfg.train.seed,
            )
        model_cfg = replace(
            cfg.model,
            src_vocab_size=len(self.src_tokenizer_),
            tgt_vocab_size=len(self.tgt_tokenizer_) + 2,  # + BOS, EOS
        )
        if resume and run_dir is not None:
            sizes = {
                "model.src_vocab_size": model_cfg.src_vocab_size,
                "model.tgt_vocab_size": model_cfg.tgt_vocab_size,
            }
            check_resume_sizes(run_dir, sizes)
        self.model_ = model = Seq2Seq(model_cfg)
        cfg = replace(cfg, model=model_cfg)
        self.config = replace(self.config, model=model_cfg)
        batches = PairBatches(
            src,
            tgt,
            d.batch_size,
            bos=model.bos_id,
            eos=model.eos_id,
            seed=cfg.train.seed,
            resample=resample,
        )
        val_src = self._encode(self.src_tokenizer_, [p.src for p in val])
        val_tgt = self._encode(self.tgt_tokenizer_, [p.tgt for p in val])
        val_batches = PairBatches(
            val_src, val_tgt, d.batch_size, bos=model.bos_id, eos=model.eos_id, shuffle=False
        )
        bleu_pairs = val[: d.bleu_sentences] if d.bleu_sentences else val
        steps, every, length = plan_steps(cfg, len(batches))
        train_cfg = replace(cfg.train, carry_state=False, max_steps=steps, eval_interval=every)

        def loss_fn(m: torch.nn.Module, batch: Any, state: Any) -> StepResult:
            loss = m.loss(
                batch.src,
                batch.src_len,
                batch.tgt_in,
                batch.tgt_out,
                label_smoothing=cfg.label_smoothing if m.training else 0.0,
                sampling_ratio=cfg.sampling_ratio,
            )
            return StepResult(loss, None, int((batch.tgt_out != 0).sum()))

        snapshots = None
        if cfg.average_last:
            where = Path(run_dir) / "snapshots" if run_dir is not None else None
            snapshots = Snapshots(cfg.average_last, where)
        if run_dir is not None:
            prepare_run_dir(Path(run_dir), resume=resume)

        def evaluate(m: torch.nn.Module) -> dict[str, float]:
            hyps = self.translate([p.src for p in bleu_pairs], beam=1)
            if snapshots is not None and not averaged:
                snapshots.add(m, trainer.pos.step)  # the trainer's step at this evaluation
            return {"bleu": score(hyps, [p.tgt for p in bleu_pairs])["bleu"]}

        averaged = False  # True while the average is scored: nothing to snapshot then
        n_params = sum(p.numel() for p in model.parameters())
        enc = model_cfg.encoder_layers or model_cfg.num_layers
        self._say(
            f"translate: {len(src):,} training / {len(val):,} validation pairs, vocabularies "
            f"{model_cfg.src_vocab_size} / {model_cfg.tgt_vocab_size}, {model_cfg.cell} "
            f"encoder {enc}x{model_cfg.hidden_size} (bidirectional), decoder "
            f"{model_cfg.num_layers}x{model_cfg.hidden_size}, {model_cfg.attention} attention, "
            f"{n_params:,} parameters, {length} ({len(batches)} per epoch)"
            + (f", BPE-dropout {d.bpe_dropout:g}" if d.bpe_dropout else "")
            + (f", averaging the last {cfg.average_last} evaluations" if snapshots else "")
            + (f" -> {run_dir}" if run_dir else "")
        )
        trainer = Trainer(
            model,
            loss_fn,
            batches,
            val_data=val_batches,
            evaluate=evaluate,
            config=train_cfg,
            run_dir=run_dir,
            save_config=config_lib.to_dict(cfg),
            extra_json=self._artifacts(),
            meta=self._trainer_meta(),
            resume=resume,  # continue run_dir/checkpoint (tokenisers refit deterministically)
            overwrite=overwrite,
        )
        self.result_: TrainResult = trainer.fit()
        self.history_ = [dict(e) for e in self.result_.evals]
        kept = self.history_[-1] if self.history_ else {}
        if run_dir is not None:
            # Continue with the best model (highest validation BLEU), as saved in best/.
            best = Path(run_dir) / "best"
            if (best / "model.safetensors").exists():
                load_model_weights(model, best)
                if (best / "best.json").is_file():
                    kept = read_json(best / "best.json")
        model.eval()
        self.metrics_ = _plain_metrics(kept, len(val), len(bleu_pairs), measured_on)
        if snapshots is not None:
            averaged = True
            self._keep_average(trainer, snapshots, kept, cfg, run_dir)

    def _bpe_dropout(
        self, src_texts: list[str], tgt_texts: list[str], dropout: float, seed: int
    ) -> Resample:
        """The training pairs' segmentation for an epoch, by BPE-dropout (a function of
        the epoch alone: a resumed run segments its epoch again exactly)."""
        src_tok, tgt_tok = self.src_tokenizer_, self.tgt_tokenizer_

        def resample(epoch: int) -> tuple[list[list[int]], list[list[int]]]:
            base = (seed * 1_000_003 + epoch) * 2  # one stream per side and epoch
            return (
                src_tok.encode_sampled(src_texts, dropout=dropout, seed=base),
                tgt_tok.encode_sampled(tgt_texts, dropout=dropout, seed=base + 1),
            )

        return resample

    def _keep_average(
        self,
        trainer: Trainer,
        snapshots: Snapshots,
        kept: dict[str, Any],
        cfg: TranslateConfig,
        run_dir: str | Path | None,
    ) -> None:
        """Score the average of the snapshots; keep it (model_, metrics_, best/) if better."""
        steps = snapshots.steps()
        metric, higher = cfg.train.eval_metric, cfg.train.eval_mode == "max"
        if len(steps) < 2 or metric not in kept:
            self._say(
                f"translate: average_last={cfg.average_last}, but the run has {len(steps)} "
                "evaluation point(s): nothing to average"
            )
            return
        model = self.model_
        own = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(average_weights(snapshots.states(model)))
        scores = trainer.evaluate()  # the loop's own evaluation (val_loss, greedy BLEU)
        model.eval()
        new, old = float(scores[metric]), float(kept[metric])
        better = new > old if higher else new < old
        what = f"the average of the weights at steps {', '.join(map(str, steps))}"
        self._say(
            f"translate: {what}: {metric} {new:.4f} against {old:.4f} (step {kept.get('step')}); "
            + ("kept" if better else "not kept")
        )
        entry = {"step": steps[-1], **scores}
        run = Path(run_dir) if run_dir is not None else None
        meta = {**self._trainer_meta(), "metrics": {**entry, "averaged_steps": steps}}
        config = config_lib.to_dict(cfg)
        if run is not None:
            write_checkpoint(
                run / "average", model=model, config=config, extra_json=self._artifacts(), meta=meta
            )
        if not better:
            model.load_state_dict(own)
            self.metrics_[f"average_{metric}"] = new
            self.metrics_["measured_on"] += (
                f"; {what} (average_last={cfg.average_last}) scored {metric} {new:.4f} "
                "and was not kept"
            )
            return
        self.metrics_ = {
            **{k: float(v) for k, v in scores.items()},
            "step": steps[-1],
            "measured_on": f"{self.metrics_['measured_on']}; the weights are {what} "
            f"(average_last={cfg.average_last}), which beat the best single evaluation point "
            f"({metric} {old:.4f} at step {kept.get('step')})",
            "averaged_checkpoints": len(steps),
            f"single_{metric}": old,
        }
        if run is not None:
            keep_single_best(run)  # best/ -> best_single/, then best/ is the average
            write_checkpoint(
                run / "best", model=model, config=config, extra_json=self._artifacts(),
                json_files={"best.json": entry}, meta={**meta, "metrics": self.metrics_},
            )  # fmt: skip

    def _artifacts(self) -> dict[str, Any]:
        return {
            "tokenizer.json": {
                "src": self.src_tokenizer_.to_dict(),
                "tgt": self.tgt_tokenizer_.to_dict(),
            }
        }

    def _restore(self, directory: Path) -> None:
        toks = read_json(directory / "tokenizer.json")
        if not isinstance(toks, dict) or set(toks) != {"src", "tgt"}:
            raise UserError(
                f"{directory / 'tokenizer.json'} is malformed; the checkpoint is damaged"
            )
        self.src_tokenizer_ = SubwordTokenizer.from_dict(toks["src"])
        self.tgt_tokenizer_ = SubwordTokenizer.from_dict(toks["tgt"])
        model = Seq2Seq(self.config.model)
        load_model_weights(model, directory)
        self.model_ = model.eval()

    # -- translate -----------------------------------------------------------

    @torch.no_grad()
    def translate_ids(
        self,
        src: Sequence[Sequence[int]],
        *,
        beam: int | None = None,
        alpha: float | None = None,
        max_len_ratio: float | None = None,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> list[list[int]]:
        """Decode source id lists (batched, sorted by length); target ids without BOS/EOS."""
        self._check_fitted()
        dc = self.config.decode
        beam = dc.beam if beam is None else beam
        alpha = dc.alpha if alpha is None else alpha
        ratio = dc.max_len_ratio if max_len_ratio is None else max_len_ratio
        check_decode(beam, alpha, ratio)
        model = self.model_
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        out: list[list[int]] = [[] for _ in src]
        bs = batch_size or dc.batch_size
        batches = PairBatches(src, None, bs, bos=model.bos_id, eos=model.eos_id, shuffle=False)
        try:
            done = 0
            for batch in batches:
                s, lens = batch.src.to(device), batch.src_len
                limit = max_lengths(lens, ratio)
                if beam == 1:
                    hyps = greedy_search(model, s, lens, limit)
                else:
                    hyps = beam_search(model, s, lens, limit, beam=beam, alpha=alpha)
                for i, h in zip(batch.index.tolist(), hyps, strict=True):
                    out[i] = h
                done += len(hyps)
                if progress and self.verbose:
                    print(f"translated {done}/{len(src)}", file=sys.stderr, flush=True)
        finally:
            model.train(was_training)
        return out

    def translate(
        self, sentences: Sequence[str], *, beam: int | None = None, **kwargs: Any
    ) -> list[str]:
        """Translate plain sentences (``beam=1``: greedy; default ``config.decode.beam``).

        ``alpha``, ``max_len_ratio``, ``batch_size`` override ``config.decode``;
        ``progress=True`` reports decoded counts on stderr.
        """
        self._check_fitted()
        if isinstance(sentences, str):
            raise UserError("translate() takes a list of sentences; wrap one sentence in [...]")
        if not sentences:
            return []
        with self._threads():
            ids = self.translate_ids(self._encode_src(sentences), beam=beam, **kwargs)
        return [self._decode(h) for h in ids]

    def predict(self, sentences: Sequence[str], **kwargs: Any) -> list[str]:
        """The translations of ``sentences`` (the same as :meth:`translate`)."""
        return self.translate(sentences, **kwargs)

    def evaluate(
        self, pairs: PairsLike | None = None, *, beam: int | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """BLEU and chrF (sacrebleu) of the translations of ``pairs`` against their targets.

        ``pairs=None``: the validation data that the config names (``data.val_source``,
        or ``multi30k:val`` when ``data.source`` is multi30k; an error otherwise).
        Returns ``bleu``, ``chrf``, their signatures, ``sentences``, ``beam`` and
        the ``hypotheses``.
        """
        self._check_fitted()
        if pairs is None:
            d = self.config.data
            pairs = load_pairs(
                eval_source(d), src_lang=d.src_lang, tgt_lang=d.tgt_lang, split="val"
            )
        pairs = cleaned(as_pairs(pairs, "evaluation"), "evaluation", self._say)
        hyps = self.translate([p.src for p in pairs], beam=beam, **kwargs)
        used = self.config.decode.beam if beam is None else beam
        return {**score(hyps, [p.tgt for p in pairs]), "beam": used, "hypotheses": hyps}

    @torch.no_grad()
    def attention(
        self, sentence: str, *, beam: int | None = None
    ) -> tuple[list[str], list[str], torch.Tensor]:
        """The translation's attention: (source tokens, target tokens + EOS, weights (T, S)).

        The weights are those of the decoder re-run on the chosen translation
        (teacher forcing), which are the weights the search saw along that path.
        """
        self._check_fitted()
        model = self.model_
        device = next(model.parameters()).device
        src = self._encode_src([sentence])[0]
        with self._threads():
            hyp = self.translate_ids([src], beam=beam)[0]
            was_training = model.training
            model.eval()
            s = torch.tensor([src], device=device)  # (1, S)
            tgt_in = torch.tensor([[model.bos_id, *hyp]], device=device)  # (1, T)
            out = model(s, torch.tensor([len(src)]), tgt_in)
            model.train(was_training)
        src_tokens = [self.src_tokenizer_.decode([i]) for i in src]
        n = len(self.tgt_tokenizer_)
        tgt_tokens = [self.tgt_tokenizer_.decode([i]) if i < n else "?" for i in hyp] + ["</s>"]
        return src_tokens, tgt_tokens, out.attention[0].cpu()  # (T, S)

    def plot_attention(
        self, sentence: str, path: str | Path | None = None, *, beam: int | None = None
    ) -> Figure:
        """The attention heatmap of ``sentence``'s translation; saved as an image at ``path``."""
        from matplotlib.figure import Figure

        src_tokens, tgt_tokens, w = self.attention(sentence, beam=beam)
        fig = Figure(
            figsize=(max(4, 0.45 * len(src_tokens) + 2), max(3, 0.4 * len(tgt_tokens) + 1.5))
        )
        ax = fig.subplots()
        ax.imshow(w.numpy(), cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(src_tokens)), src_tokens, rotation=90)
        ax.set_yticks(range(len(tgt_tokens)), tgt_tokens)
        ax.set_xlabel("source")
        ax.set_ylabel("translation")
        fig.tight_layout()
        if path is not None:
            fig.savefig(Path(path), dpi=120)
        return fig


def _plain_metrics(
    entry: dict[str, Any], n_val: int, n_bleu: int, measured_on: str
) -> dict[str, Any]:
    """The kept model's evaluation as plain numbers, with what they were measured on."""
    out: dict[str, Any] = {k: float(v) for k, v in entry.items() if k != "step"}
    if "step" in entry:
        out["step"] = int(entry["step"])
    if out:
        bleu_part = f"BLEU (greedy) on the first {n_bleu}" if n_bleu < n_val else "BLEU (greedy)"
        out["measured_on"] = f"{n_val} validation pairs from {measured_on}; {bleu_part}"
    return out
