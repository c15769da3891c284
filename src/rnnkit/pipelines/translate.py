"""Neural machine translation: a bidirectional-RNN encoder, an attentional RNN decoder.

Read top to bottom: config -> data and tokenisation -> scoring (sacrebleu) ->
the translator (fit / translate / evaluate / save / load) -> command line.
Python API::

    from rnnkit.pipelines.translate import Translator, load_config

    tr = Translator(load_config(preset="tiny")).fit(pairs, val_pairs=dev_pairs)
    tr.translate(["A man is riding a bicycle."], beam=5)
    tr.evaluate(dev_pairs, beam=5)        # BLEU and chrF with sacrebleu's signatures
    tr.save("models/en-de"); tr = Translator.load("models/en-de")

Command line::

    rnnkit translate train --data multi30k --src en --tgt de --run-dir runs/en-de
    rnnkit translate eval --checkpoint runs/en-de --data val.en,val.de --beam 5
    rnnkit translate predict --checkpoint runs/en-de "A man is riding a bicycle."
    rnnkit translate predict --checkpoint runs/en-de --input in.txt --output out.txt
    rnnkit translate predict --checkpoint runs/en-de "A dog runs." --plot-attention a.png

Tokenisation: one byte-level BPE model per language (Hugging Face
``tokenizers``, :class:`rnnkit.data.tokenizers.SubwordTokenizer`, case kept),
fitted on the training pairs only and saved as ``tokenizer.json``; outputs
are decoded back to plain text before scoring, so BLEU is sacrebleu's own
tokenisation of detokenised text (comparable with published figures).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from rnnkit import config as house_config
from rnnkit.data.parallel import Pair, PairBatches, clean_pairs, load_pairs
from rnnkit.data.tokenizers import SubwordTokenizer
from rnnkit.errors import UserError
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.training import (
    StepResult,
    TrainConfig,
    Trainer,
    TrainResult,
    load_model_weights,
    read_json,
    resolve_checkpoint,
    seed_everything,
    write_checkpoint,
)
from rnnkit.translation import beam_search, greedy_search, max_lengths

__all__ = [
    "DecodeConfig",
    "TranslateConfig",
    "TranslateDataConfig",
    "Translator",
    "add_cli",
    "load_config",
    "score",
    "train",
]

# ---------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------


@dataclass(kw_only=True)
class TranslateDataConfig:
    source: str = "multi30k"  # multi30k | SRC_FILE,TGT_FILE | FILE.tsv (gzip accepted)
    src_lang: str = "en"  # multi30k only: en or de
    tgt_lang: str = "de"
    val_source: str = ""  # "": multi30k -> its validation split, else the last val_fraction
    val_fraction: float = 0.05
    vocab_size: int = 8000  # byte-level BPE vocabulary per language (>= 260)
    max_tokens: int = 100  # training pairs with a longer side (subword tokens) are dropped
    batch_size: int = 64
    bleu_sentences: int = 0  # validation sentences decoded for BLEU at each evaluation; 0 = all


@dataclass(kw_only=True)
class DecodeConfig:
    beam: int = 5  # 1 = greedy
    alpha: float = 1.0  # length normalisation: score / length ** alpha
    max_len_ratio: float = 2.0  # at most max(10, ceil(ratio * source tokens)) output tokens
    batch_size: int = 64


def _default_train() -> TrainConfig:
    return TrainConfig(
        max_steps=5000,
        lr=2e-3,
        min_lr=1e-4,
        warmup_steps=200,
        eval_interval=500,
        checkpoint_interval=500,
        eval_metric="bleu",
        eval_mode="max",
        carry_state=False,
    )


@dataclass(kw_only=True)
class TranslateConfig:
    data: TranslateDataConfig = field(default_factory=TranslateDataConfig)
    model: Seq2SeqConfig = field(default_factory=Seq2SeqConfig)
    train: TrainConfig = field(default_factory=_default_train)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    label_smoothing: float = 0.1
    sampling_ratio: float = 0.0  # scheduled sampling: feed own predictions with this probability
    epochs: int = 0  # > 0: max_steps = epochs x batches per epoch, BLEU evaluated every epoch
    run_dir: str = "runs/translate"


def load_config(*, preset: str | None = None, overrides: Any = ()) -> TranslateConfig:
    """Defaults <- ``configs/translate/<preset>.toml`` <- overrides."""
    return house_config.load_config(
        TranslateConfig, app="translate", preset=preset, overrides=overrides
    )


def _check_config(cfg: TranslateConfig) -> None:
    if not 0.0 <= cfg.label_smoothing < 1.0:
        raise UserError(f"label_smoothing must be in [0, 1), got {cfg.label_smoothing}")
    if not 0.0 <= cfg.sampling_ratio <= 1.0:
        raise UserError(f"sampling_ratio must be in [0, 1], got {cfg.sampling_ratio}")
    if cfg.epochs < 0:
        raise UserError(f"epochs must be >= 0, got {cfg.epochs}")
    if cfg.data.max_tokens < 1:
        raise UserError(f"data.max_tokens must be >= 1, got {cfg.data.max_tokens}")
    if not 0.0 < cfg.data.val_fraction < 1.0:
        raise UserError(f"data.val_fraction must be in (0, 1), got {cfg.data.val_fraction}")
    _check_decode(cfg.decode.beam, cfg.decode.alpha, cfg.decode.max_len_ratio)


def _check_decode(beam: int, alpha: float, ratio: float) -> None:
    if beam < 1:
        raise UserError(f"beam must be >= 1 (1 = greedy), got {beam}")
    if alpha < 0:
        raise UserError(f"alpha (length normalisation) must be >= 0, got {alpha}")
    if ratio <= 0:
        raise UserError(f"max_len_ratio must be > 0, got {ratio}")


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def prepare_pairs(cfg: TranslateDataConfig) -> tuple[list[Pair], list[Pair]]:
    """Training and validation pairs from ``cfg`` (empty pairs dropped, counts printed)."""
    pairs = load_pairs(cfg.source, src_lang=cfg.src_lang, tgt_lang=cfg.tgt_lang)
    if cfg.val_source:
        val = load_pairs(cfg.val_source, src_lang=cfg.src_lang, tgt_lang=cfg.tgt_lang, split="val")
    elif cfg.source.partition(":")[0] == "multi30k":
        val = load_pairs("multi30k:val", src_lang=cfg.src_lang, tgt_lang=cfg.tgt_lang)
    else:
        n_val = max(1, int(round(len(pairs) * cfg.val_fraction)))
        pairs, val = pairs[:-n_val], pairs[-n_val:]
    return _cleaned(pairs, "training"), _cleaned(val, "validation")


def _cleaned(pairs: Sequence[Pair], what: str) -> list[Pair]:
    kept, dropped = clean_pairs(pairs)
    if dropped:
        print(f"translate: dropped {dropped} {what} pairs with an empty side", file=sys.stderr)
    if not kept:
        raise UserError(f"no {what} sentence pairs left (all empty); check the data")
    return kept


# ---------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------


def score(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """Corpus BLEU and chrF by sacrebleu (detokenised text in, its own tokenisation).

    Returns ``bleu``, ``chrf`` and sacrebleu's signatures (``bleu_signature``,
    ``chrf_signature``), which state the settings so scores are comparable.
    """
    from sacrebleu.metrics import BLEU, CHRF

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    bleu, chrf = BLEU(), CHRF()
    b = bleu.corpus_score(list(hypotheses), [list(references)])
    c = chrf.corpus_score(list(hypotheses), [list(references)])
    return {
        "bleu": b.score,
        "chrf": c.score,
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
        "sentences": len(hypotheses),
    }


# ---------------------------------------------------------------------------
# The translator
# ---------------------------------------------------------------------------


class Translator:
    """Encoder-decoder translation with subword tokenisers (scikit-learn style).

    Args:
        config: the whole pipeline config; ``None``: the defaults.

    Attributes (after ``fit`` or ``load``): ``model_`` (:class:`Seq2Seq`),
    ``src_tokenizer_``, ``tgt_tokenizer_`` and, after ``fit``, ``result_``.
    """

    def __init__(self, config: TranslateConfig | None = None) -> None:
        self.config = config if config is not None else TranslateConfig()
        self.model_: Seq2Seq | None = None
        self.src_tokenizer_: SubwordTokenizer | None = None
        self.tgt_tokenizer_: SubwordTokenizer | None = None
        self.result_: TrainResult | None = None

    def _check_fitted(self) -> None:
        if self.model_ is None:
            raise RuntimeError("the translator is not fitted; call fit() or load() first")

    # -- encoding ------------------------------------------------------------

    def _encode(self, tok: SubwordTokenizer, texts: Sequence[str]) -> list[list[int]]:
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
        pairs: Sequence[Pair | tuple[str, str]] | None = None,
        *,
        val_pairs: Sequence[Pair | tuple[str, str]] | None = None,
        run_dir: str | Path | None = None,
        resume: bool = False,
    ) -> Translator:
        """Fit the tokenisers on ``pairs`` and train the model (teacher forcing).

        ``pairs=None`` reads ``config.data``; ``val_pairs=None`` then follows
        ``config.data`` too (otherwise the last ``val_fraction`` of ``pairs``).
        Validation BLEU (greedy) is computed at each evaluation and picks ``best/``.
        """
        cfg = self.config
        _check_config(cfg)
        seed_everything(cfg.train.seed)
        if pairs is None:
            train_pairs, val = prepare_pairs(cfg.data)
        else:
            train_pairs = _cleaned([Pair(*p) for p in pairs], "training")
            if val_pairs is None:
                n_val = max(1, int(round(len(train_pairs) * cfg.data.val_fraction)))
                train_pairs, val = train_pairs[:-n_val], train_pairs[-n_val:]
        if val_pairs is not None:
            val = _cleaned([Pair(*p) for p in val_pairs], "validation")
        d = cfg.data
        self.src_tokenizer_ = SubwordTokenizer(vocab_size=d.vocab_size, lowercase=False)
        self.tgt_tokenizer_ = SubwordTokenizer(vocab_size=d.vocab_size, lowercase=False)
        self.src_tokenizer_.fit(p.src for p in train_pairs)
        self.tgt_tokenizer_.fit(p.tgt for p in train_pairs)
        src = self._encode(self.src_tokenizer_, [p.src for p in train_pairs])
        tgt = self._encode(self.tgt_tokenizer_, [p.tgt for p in train_pairs])
        keep = [i for i in range(len(src)) if len(src[i]) <= d.max_tokens >= len(tgt[i])]
        if len(keep) < len(src):
            print(
                f"translate: dropped {len(src) - len(keep)} training pairs longer than "
                f"data.max_tokens={d.max_tokens} subword tokens",
                file=sys.stderr,
            )
        if not keep:
            raise UserError(f"no training pairs within data.max_tokens={d.max_tokens}; raise it")
        src, tgt = [src[i] for i in keep], [tgt[i] for i in keep]
        model_cfg = replace(
            cfg.model,
            src_vocab_size=len(self.src_tokenizer_),
            tgt_vocab_size=len(self.tgt_tokenizer_) + 2,  # + BOS, EOS
        )
        self.model_ = model = Seq2Seq(model_cfg)
        self.config = cfg = replace(cfg, model=model_cfg)
        batches = PairBatches(
            src, tgt, d.batch_size, bos=model.bos_id, eos=model.eos_id, seed=cfg.train.seed
        )
        val_src = self._encode(self.src_tokenizer_, [p.src for p in val])
        val_tgt = self._encode(self.tgt_tokenizer_, [p.tgt for p in val])
        val_batches = PairBatches(
            val_src, val_tgt, d.batch_size, bos=model.bos_id, eos=model.eos_id, shuffle=False
        )
        bleu_pairs = val[: d.bleu_sentences] if d.bleu_sentences else val
        train_cfg = replace(cfg.train, carry_state=False)
        if cfg.epochs:
            train_cfg = replace(
                train_cfg, max_steps=cfg.epochs * len(batches), eval_interval=len(batches)
            )

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

        def evaluate(m: torch.nn.Module) -> dict[str, float]:
            hyps = self.translate([p.src for p in bleu_pairs], beam=1)
            return {"bleu": score(hyps, [p.tgt for p in bleu_pairs])["bleu"]}

        n_params = sum(p.numel() for p in model.parameters())
        print(
            f"translate: {len(src):,} training / {len(val):,} validation pairs, vocabularies "
            f"{model_cfg.src_vocab_size} / {model_cfg.tgt_vocab_size}, {model_cfg.cell} "
            f"{model_cfg.num_layers}x{model_cfg.hidden_size} {model_cfg.attention} attention, "
            f"{n_params:,} parameters, {train_cfg.max_steps} steps ({len(batches)} per epoch)"
            + (f" -> {run_dir}" if run_dir else ""),
            file=sys.stderr,
        )
        trainer = Trainer(
            model,
            loss_fn,
            batches,
            val_data=val_batches,
            evaluate=evaluate,
            config=train_cfg,
            run_dir=run_dir,
            save_config=house_config.to_dict(cfg),
            extra_json=self._artifacts(),
            resume=resume,  # continue run_dir/checkpoint (tokenisers refit deterministically)
        )
        self.result_ = trainer.fit()
        if run_dir is not None:
            # Continue with the best model (highest validation BLEU), as saved in best/.
            best = Path(run_dir) / "best"
            if (best / "model.safetensors").exists():
                load_model_weights(model, best)
        model.eval()
        return self

    def _artifacts(self) -> dict[str, Any]:
        return {
            "tokenizer.json": {
                "src": self.src_tokenizer_.to_dict(),
                "tgt": self.tgt_tokenizer_.to_dict(),
            }
        }

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
        _check_decode(beam, alpha, ratio)
        model = self.model_
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        out: list[list[int]] = [[] for _ in src]
        batches = PairBatches(
            src,
            None,
            batch_size or dc.batch_size,
            bos=model.bos_id,
            eos=model.eos_id,
            shuffle=False,
        )
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
                if progress:
                    print(f"translated {done}/{len(src)}", file=sys.stderr, flush=True)
        finally:
            model.train(was_training)
        return out

    def translate(
        self, sentences: Sequence[str], *, beam: int | None = None, **kwargs: Any
    ) -> list[str]:
        """Translate plain sentences (``beam=1``: greedy; default ``config.decode.beam``)."""
        self._check_fitted()
        if isinstance(sentences, str):
            raise UserError("translate() takes a list of sentences; wrap one sentence in [...]")
        if not sentences:
            return []
        ids = self.translate_ids(self._encode_src(sentences), beam=beam, **kwargs)
        return [self._decode(h) for h in ids]

    def evaluate(
        self, pairs: Sequence[Pair | tuple[str, str]], *, beam: int | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """BLEU and chrF (sacrebleu) of the translations of ``pairs`` against their targets."""
        pairs = _cleaned([Pair(*p) for p in pairs], "evaluation")
        hyps = self.translate([p.src for p in pairs], beam=beam, **kwargs)
        return {**score(hyps, [p.tgt for p in pairs]), "hypotheses": hyps}

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
        src = self._encode_src([sentence])[0]
        hyp = self.translate_ids([src], beam=beam)[0]
        model.eval()
        s = torch.tensor([src])  # (1, S)
        tgt_in = torch.tensor([[model.bos_id, *hyp]])  # (1, T)
        out = model(s, torch.tensor([len(src)]), tgt_in)
        src_tokens = [self.src_tokenizer_.decode([i]) for i in src]
        n = len(self.tgt_tokenizer_)
        tgt_tokens = [self.tgt_tokenizer_.decode([i]) if i < n else "?" for i in hyp] + ["</s>"]
        return src_tokens, tgt_tokens, out.attention[0]  # (T, S)

    def plot_attention(self, sentence: str, path: str | Path, *, beam: int | None = None) -> Path:
        """Save the attention heatmap of ``sentence``'s translation as a PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        src_tokens, tgt_tokens, w = self.attention(sentence, beam=beam)
        fig, ax = plt.subplots(
            figsize=(max(4, 0.45 * len(src_tokens) + 2), max(3, 0.4 * len(tgt_tokens) + 1.5))
        )
        ax.imshow(w.numpy(), cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(src_tokens)), src_tokens, rotation=90)
        ax.set_yticks(range(len(tgt_tokens)), tgt_tokens)
        ax.set_xlabel("source")
        ax.set_ylabel("translation")
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path

    # -- save / load ---------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write config.json, model.safetensors and tokenizer.json to a directory."""
        self._check_fitted()
        return write_checkpoint(
            path,
            model=self.model_,
            config=house_config.to_dict(self.config),
            extra_json=self._artifacts(),
        )

    @classmethod
    def load(cls, path: str | Path) -> Translator:
        """Load a checkpoint directory, or a run directory's ``best/`` (else ``checkpoint/``)."""
        d = resolve_checkpoint(
            path, required=("config.json", "model.safetensors", "tokenizer.json")
        )
        try:
            cfg = house_config.from_dict(TranslateConfig, read_json(d / "config.json"))
        except UserError as exc:
            raise UserError(f"{d / 'config.json'} is not a translate config ({exc})") from exc
        toks = read_json(d / "tokenizer.json")
        if not isinstance(toks, dict) or set(toks) != {"src", "tgt"}:
            raise UserError(f"{d / 'tokenizer.json'} is malformed; the checkpoint is damaged")
        tr = cls(cfg)
        tr.src_tokenizer_ = SubwordTokenizer.from_dict(toks["src"])
        tr.tgt_tokenizer_ = SubwordTokenizer.from_dict(toks["tgt"])
        model = Seq2Seq(cfg.model)
        load_model_weights(model, d)
        tr.model_ = model.eval()
        return tr


def train(cfg: TranslateConfig, *, resume: bool = False) -> Translator:
    """Train from ``cfg`` (data from ``cfg.data``); the run goes to ``cfg.run_dir``."""
    return Translator(cfg).fit(run_dir=cfg.run_dir, resume=resume)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _cmd_train(args: argparse.Namespace) -> int:
    cfg = house_config.train_config(
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
    tr = train(cfg, resume=args.resume)
    res = tr.result_
    if res is not None and res.evals:
        last = res.evals[-1]
        print(
            f"done: {res.step} steps, validation BLEU (greedy) {last.get('bleu', math.nan):.2f} "
            f"last / {res.best_metric:.2f} best, val_loss {last.get('val_loss', math.nan):.4f}; "
            f"{res.tokens_per_s:,.0f} target tokens/s; run directory {cfg.run_dir}"
        )
    return 0


def _eval_pairs(tr: Translator, data: str | None) -> tuple[str, list[Pair]]:
    d = tr.config.data
    if data is None:
        if d.val_source:
            data = d.val_source
        elif d.source.partition(":")[0] == "multi30k":
            data = "multi30k:val"
        else:
            raise UserError("pass --data SRC_FILE,TGT_FILE (or a TSV file, or multi30k:val)")
    pairs = load_pairs(data, src_lang=d.src_lang, tgt_lang=d.tgt_lang, split="val")
    return data, _cleaned(pairs, "evaluation")


def _cmd_eval(args: argparse.Namespace) -> int:
    tr = Translator.load(args.checkpoint)
    what, pairs = _eval_pairs(tr, args.data)
    hyps = tr.translate(
        [p.src for p in pairs],
        beam=args.beam,
        alpha=args.alpha,
        max_len_ratio=args.max_len_ratio,
        batch_size=args.batch_size,
        progress=True,
    )
    m = score(hyps, [p.tgt for p in pairs])
    if args.output:
        Path(args.output).write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
        print(f"{len(hyps)} translations -> {args.output}", file=sys.stderr)
    beam = args.beam if args.beam is not None else tr.config.decode.beam
    print(f"{what}: {m['sentences']} sentences, beam {beam}")
    print(f"BLEU {m['bleu']:.2f}  ({m['bleu_signature']})")
    print(f"chrF {m['chrf']:.2f}  ({m['chrf_signature']})")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    if bool(args.sentences) == bool(args.input):
        raise UserError("pass sentences as arguments or --input FILE (one of the two)")
    tr = Translator.load(args.checkpoint)
    if args.input:
        from rnnkit.data.parallel import read_lines

        sentences = read_lines(args.input)
        empty = [i + 1 for i, s in enumerate(sentences) if not s.strip()]
        if empty:
            raise UserError(
                f"{args.input} has {len(empty)} empty lines (first: line {empty[0]}); "
                "remove them so output line i translates input line i"
            )
    else:
        sentences = args.sentences
    kw = {"alpha": args.alpha, "max_len_ratio": args.max_len_ratio, "batch_size": args.batch_size}
    hyps = tr.translate(sentences, beam=args.beam, progress=bool(args.output), **kw)
    if args.plot_attention:
        if len(sentences) != 1:
            raise UserError("--plot-attention needs exactly one sentence")
        path = tr.plot_attention(sentences[0], args.plot_attention, beam=args.beam)
        print(f"attention heatmap -> {path}", file=sys.stderr)
    if args.output:
        Path(args.output).write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
        print(f"{len(hyps)} translations -> {args.output}", file=sys.stderr)
    else:
        for h in hyps:
            print(h)
    return 0


def _decode_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint",
        required=True,
        help="run directory (uses best/, else checkpoint/) or a checkpoint directory (required)",
    )
    p.add_argument(
        "--beam",
        type=int,
        default=None,
        help="beam size; 1 = greedy (default: the checkpoint's decode.beam, 5 unless changed)",
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=None,
        help="length normalisation exponent: score / length**alpha (default 1.0)",
    )
    p.add_argument(
        "--max-len-ratio",
        type=float,
        default=None,
        help="at most max(10, ceil(ratio * source tokens)) output tokens (default 2.0)",
    )
    p.add_argument("--batch-size", type=int, default=None, help="sentences per batch (default 64)")


def add_cli(subparsers: Any) -> None:
    """Register ``rnnkit translate {train,eval,predict}``."""
    verbs = house_config.add_app_parser(
        subparsers,
        "translate",
        help="machine translation (seq2seq with attention): train, eval, predict",
        description="Neural machine translation: bidirectional GRU/LSTM encoder, attentional "
        "decoder with input feeding, subword (BPE) tokenisation, beam search, sacrebleu scores.",
    )
    t = house_config.add_train_parser(
        verbs,
        "translate",
        TranslateConfig,
        help="train a translation model",
        description="Train an encoder-decoder with attention. Values come from the defaults, "
        "then --preset (configs/translate/NAME.toml), then --section.key=VALUE overrides. "
        "Data: multi30k, SRC_FILE,TGT_FILE (aligned lines) or a two-column TSV; gzip accepted. "
        "Pairs with an empty side and training pairs longer than data.max_tokens subword "
        "tokens are dropped (the counts are printed).",
        data_help="multi30k, SRC_FILE,TGT_FILE or FILE.tsv",
        resume_help="continue the run in --run-dir from its last checkpoint with its saved "
        "config (--data and overrides still apply; a larger --train.max_steps extends it)",
    )
    t.add_argument("--src", default=None, help="source language for multi30k: en or de")
    t.add_argument("--tgt", default=None, help="target language for multi30k: de or en")
    t.set_defaults(func=_cmd_train)

    e = verbs.add_parser(
        "eval",
        help="BLEU and chrF (sacrebleu) on a parallel corpus",
        description="Translate the source side and score it against the target side with "
        "sacrebleu (detokenised text); prints sacrebleu's signatures.",
    )
    _decode_args(e)
    e.add_argument(
        "--data",
        default=None,
        help="SRC_FILE,TGT_FILE, FILE.tsv or multi30k:val "
        "(default: the training run's validation data when it is multi30k)",
    )
    e.add_argument("--output", default=None, help="also write the translations to this file")
    e.set_defaults(func=_cmd_eval)

    r = verbs.add_parser(
        "predict",
        help="translate sentences",
        description="Translate sentences given as arguments or one per line in --input.",
    )
    _decode_args(r)
    r.add_argument("sentences", nargs="*", help="sentences to translate")
    r.add_argument("--input", default=None, help="file with one sentence per line (gzip ok)")
    r.add_argument("--output", default=None, help="write translations here, one per line")
    r.add_argument(
        "--plot-attention",
        default=None,
        metavar="PNG",
        help="save the attention heatmap of the (single) sentence's translation",
    )
    r.set_defaults(func=_cmd_predict)
