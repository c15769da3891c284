"""Speech recognition: log-mel features -> recurrent acoustic model -> CTC -> text.

Read top to bottom: config -> data (sources, splits, features, skips) ->
:class:`SpeechRecognizer` (fit, transcribe, stream, evaluate, save, load) ->
train -> command line. Python API::

    from rnnkit.pipelines import speech

    cfg = speech.load_config(preset="fsdd")
    rec, result = speech.train(cfg)                    # writes cfg.run_dir
    rec = speech.SpeechRecognizer.load(cfg.run_dir)    # best/ (or checkpoint/)
    print(rec.transcribe(["one.wav"], beam=8)[0].text)
    print(rec.evaluate(utterances))                    # {"wer": ..., "cer": ...}

Command line::

    rnnkit speech train --data fsdd --run-dir runs/speech
    rnnkit speech eval --checkpoint runs/speech --data test.csv --beam 8
    rnnkit speech transcribe --checkpoint runs/speech clip.wav --beam 8 --timestamps

Bad data is skipped with a count during training (unreadable or empty audio,
characters outside the alphabet, audio too short for its transcript under
CTC); ``eval`` and ``transcribe`` raise a one-line error instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from rnnkit import config as house_config
from rnnkit.data.audio import FeatureConfig, LogMel, load_audio, spec_augment
from rnnkit.data.speech import (
    CharVocab,
    SpeechBatch,
    SpeechBatches,
    Utterance,
    connected_digits,
    ctc_min_frames,
    fsdd_take,
    load_source,
    normalize_text,
)
from rnnkit.errors import UserError
from rnnkit.models.ctc_asr import CTCASR, CTCASRConfig, ctc_loss
from rnnkit.speech.decode import (
    CharNgramLM,
    Word,
    greedy_decode,
    prefix_beam_search,
    word_times,
)
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

__all__ = [
    "SpeechConfig",
    "SpeechDataConfig",
    "SpeechRecognizer",
    "Transcript",
    "add_cli",
    "load_config",
    "load_splits",
    "train",
]

# ---------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------


@dataclass(kw_only=True)
class SpeechDataConfig:
    source: str = "fsdd"  # fsdd | a .csv/.tsv/.jsonl manifest | a LibriSpeech-style folder
    task: str = "words"  # words: utterances as given | connected: joined clips (1-7 words)
    split: str = "take"  # fsdd: take (takes 5-9 test, 10-14 val) | speaker (holdout_speaker)
    holdout_speaker: str = "theo"  # split=speaker: the test speaker
    val_fraction: float = 0.1  # manifests/folders: random validation share
    speakers: str = ""  # fsdd: comma-separated speakers to use; empty = all six
    max_take: int = 0  # fsdd: use takes 5..max_take only (small runs); 0 = all (5-49)
    connected_train: int = 3000  # task=connected: utterances per split (val/test: a tenth)
    min_words: int = 1
    max_words: int = 7
    batch_size: int = 32
    lm_order: int = 3  # character n-gram LM fitted on the training transcripts


def _default_train() -> TrainConfig:
    return TrainConfig(
        max_steps=2000,
        lr=3e-3,
        min_lr=1e-4,
        warmup_steps=100,
        eval_interval=200,
        checkpoint_interval=500,
        eval_metric="val_wer",
        eval_mode="min",
        carry_state=False,
        grad_clip=5.0,
    )


@dataclass(kw_only=True)
class SpeechConfig:
    data: SpeechDataConfig = field(default_factory=SpeechDataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: CTCASRConfig = field(default_factory=CTCASRConfig)
    train: TrainConfig = field(default_factory=_default_train)
    run_dir: str = "runs/speech"


def load_config(*, preset: str | None = None, overrides: Any = ()) -> SpeechConfig:
    """Defaults <- ``configs/speech/<preset>.toml`` <- overrides (``["model.cell=gru"]``)."""
    return house_config.load_config(SpeechConfig, app="speech", preset=preset, overrides=overrides)


# ---------------------------------------------------------------------------
# Data: sources and splits
# ---------------------------------------------------------------------------


def _say(msg: str) -> None:
    print(msg, file=sys.stderr)


def load_splits(cfg: SpeechConfig) -> tuple[list[Utterance], list[Utterance], list[Utterance]]:
    """(train, validation, test) utterances for ``cfg.data``.

    FSDD, ``split=take``: takes 5-9 of every speaker are the test set, 10-14
    validation, the rest training (the README's advice; takes 0-4 are FSDD's
    own test split, not in the mirror). ``split=speaker``: ``holdout_speaker``
    is the test set, takes 5-9 of the others validation. Other sources: a
    seeded random ``val_fraction`` is validation, the test set is empty (pass
    a manifest to ``eval``). ``task=connected`` then joins clips of each split.
    """
    d = cfg.data
    if d.task not in ("words", "connected"):
        raise UserError(f"data.task must be words or connected, got {d.task!r}")
    if d.split not in ("take", "speaker"):
        raise UserError(f"data.split must be take or speaker, got {d.split!r}")
    if d.source == "fsdd":
        speakers = [s.strip() for s in d.speakers.split(",") if s.strip()]
        utts = load_source("fsdd", speakers=speakers, max_take=d.max_take)
        if d.split == "speaker":
            if d.holdout_speaker not in {u.speaker for u in utts}:
                raise UserError(
                    f"data.holdout_speaker {d.holdout_speaker!r} is not among the speakers used "
                    f"({', '.join(sorted({u.speaker for u in utts}))})"
                )
            test = [u for u in utts if u.speaker == d.holdout_speaker]
            rest = [u for u in utts if u.speaker != d.holdout_speaker]
            val = [u for u in rest if fsdd_take(u) <= 9]
            train = [u for u in rest if fsdd_take(u) > 9]
        else:
            test = [u for u in utts if fsdd_take(u) <= 9]
            val = [u for u in utts if 10 <= fsdd_take(u) <= 14]
            train = [u for u in utts if fsdd_take(u) > 14]
    else:
        utts = load_source(d.source)
        if not 0 < d.val_fraction < 1:
            raise UserError(f"data.val_fraction must be in (0, 1), got {d.val_fraction}")
        order = np.random.default_rng(cfg.train.seed).permutation(len(utts))
        n_val = max(1, int(round(len(utts) * d.val_fraction)))
        val = [utts[i] for i in order[:n_val]]
        train = [utts[i] for i in order[n_val:]]
        test = []
    if not train or not val:
        raise UserError(
            f"the data gives {len(train)} training and {len(val)} validation utterances; "
            "both need at least one (use more data, or a larger data.max_take)"
        )
    if d.task == "connected":
        sr = cfg.features.sample_rate
        n = d.connected_train

        def join(part: list[Utterance], count: int, seed: int) -> list[Utterance]:
            clips = [(_audio(u, sr), u.text) for u in part]
            return connected_digits(
                clips,
                count,
                sample_rate=sr,
                min_digits=d.min_words,
                max_digits=d.max_words,
                seed=seed,
            )

        seed = cfg.train.seed
        train = join(train, n, seed)
        val = join(val, max(1, n // 10), seed + 1)
        test = join(test, max(1, n // 10), seed + 2) if test else []
    return train, val, test


def _audio(u: Utterance, sample_rate: int) -> np.ndarray:
    if isinstance(u.audio, np.ndarray):
        return np.asarray(u.audio, dtype=np.float32).flatten()
    return load_audio(u.audio, sample_rate)


def _as_utterance(x: str | Path | np.ndarray, i: int) -> Utterance:
    if isinstance(x, np.ndarray | torch.Tensor):
        return Utterance(np.asarray(x, dtype=np.float32), "", "", f"array {i}")
    return Utterance(str(x), "", "", str(x))


class Transcript(NamedTuple):
    text: str
    words: list[Word]  # per-word (word, start_s, end_s) from the alignment


# ---------------------------------------------------------------------------
# The recognizer
# ---------------------------------------------------------------------------


class SpeechRecognizer:
    """Features + acoustic model + vocabulary (+ character LM): audio in, text out.

    Build with a config and :meth:`fit`, or :meth:`load` a saved one.
    Learned attributes after ``fit``: ``vocab_``, ``features_`` (fitted
    :class:`LogMel`), ``model_``, ``lm_``.
    """

    def __init__(self, config: SpeechConfig | None = None) -> None:
        self.config = config or SpeechConfig()
        self.vocab_: CharVocab | None = None
        self.features_: LogMel | None = None
        self.model_: CTCASR | None = None
        self.lm_: CharNgramLM | None = None

    # -- data -> tensors ---------------------------------------------------------

    def _features(
        self, utts: Sequence[Utterance], *, skip: bool
    ) -> list[tuple[torch.Tensor, list[int]]]:
        """(un-normalised log-mels (T, M), labels) per utterance.

        ``skip=True``: unreadable/empty audio, characters outside the vocabulary
        and audio too short for its transcript under CTC are dropped and counted;
        ``skip=False``: the first one raises :class:`UserError`.
        """
        assert self.vocab_ is not None and self.features_ is not None
        sr, s = self.config.features.sample_rate, self.config.model.subsample
        s = s if self.config.model.conv_channels else 1
        out, skipped = [], {"unreadable": 0, "unknown characters": 0, "too short for CTC": 0}
        for u in utts:
            try:
                audio = _audio(u, sr)
            except UserError:
                if not skip:
                    raise
                skipped["unreadable"] += 1
                continue
            text = normalize_text(u.text)
            if self.vocab_.unknown(text) or not text:
                if not skip:
                    self.vocab_.encode(text)  # raises the vocabulary error
                    raise UserError(f"utterance {u.key} has an empty transcript")
                skipped["unknown characters"] += 1
                continue
            labels = self.vocab_.encode(text)
            feats = self.features_.logmel(audio)  # (T, M)
            if feats.size(0) // s < ctc_min_frames(labels):
                if not skip:
                    raise UserError(
                        f"{u.key}: {feats.size(0)} frames (/{s} = {feats.size(0) // s}) is too "
                        f"short for its transcript {text!r} under CTC (needs "
                        f"{ctc_min_frames(labels)}); remove it"
                    )
                skipped["too short for CTC"] += 1
                continue
            out.append((feats, labels))
        dropped = {k: v for k, v in skipped.items() if v}
        if dropped:
            _say(
                f"speech: skipped {sum(dropped.values())} of {len(utts)} utterances ("
                + ", ".join(f"{v} {k}" for k, v in dropped.items())
                + ")"
            )
        return out

    def _normalised(
        self, items: list[tuple[torch.Tensor, list[int]]]
    ) -> list[tuple[torch.Tensor, list[int]]]:
        assert self.features_ is not None
        return [(self.features_.normalize(f), t) for f, t in items]

    # -- training -------------------------------------------------------------

    def _loss(self, model: torch.nn.Module, batch: SpeechBatch, state: Any) -> StepResult:
        feats = batch.feats
        if model.training:
            feats = spec_augment(feats, batch.feat_lens, self.config.features)
        out = model(feats, batch.feat_lens)
        loss = ctc_loss(out, batch.targets, batch.target_lens)
        return StepResult(loss, None, int(batch.target_lens.sum()))

    def fit(
        self,
        train: Sequence[Utterance],
        val: Sequence[Utterance],
        *,
        run_dir: str | Path | None = None,
        resume: bool = False,
    ) -> TrainResult:
        """Fit vocabulary, feature normalisation, LM and model; checkpoints go to ``run_dir``.

        ``resume=True`` continues ``run_dir/checkpoint`` (the vocabulary, features and
        LM are refitted deterministically from the same data first).
        """
        cfg = self.config
        seed_everything(cfg.train.seed)
        texts = [normalize_text(u.text) for u in train]
        self.vocab_ = CharVocab().fit([t for t in texts if t])
        self.lm_ = CharNgramLM(cfg.data.lm_order).fit([t for t in texts if t])
        self.features_ = LogMel(cfg.features)
        train_items = self._features(train, skip=True)
        val_items = self._features(val, skip=True)
        if not train_items or not val_items:
            raise UserError("no usable training or validation utterances are left after skipping")
        self.features_.fit([f for f, _ in train_items])
        train_items, val_items = self._normalised(train_items), self._normalised(val_items)
        model_cfg = replace(cfg.model, input_size=cfg.features.n_mels, vocab_size=len(self.vocab_))
        self.config = cfg = replace(cfg, model=model_cfg)
        self.model_ = CTCASR(model_cfg)
        n_params = sum(p.numel() for p in self.model_.parameters())
        _say(
            f"speech: {len(train_items)} train / {len(val_items)} validation utterances, "
            f"{len(self.vocab_) - 1} characters + blank, {model_cfg.cell} "
            f"{model_cfg.num_layers}x{model_cfg.hidden_size}"
            f"{' bidirectional' if model_cfg.bidirectional else ''}, {n_params:,} parameters"
            + (f" -> {run_dir}" if run_dir else "")
        )
        batches = SpeechBatches(train_items, cfg.data.batch_size, seed=cfg.train.seed)
        val_batches = SpeechBatches(val_items, cfg.data.batch_size, shuffle=False)

        def evaluate(model: torch.nn.Module) -> dict[str, float]:
            hyps, refs = [], []
            with torch.no_grad():
                device = next(model.parameters()).device
                for b in val_batches:
                    out = model(b.feats.to(device), b.feat_lens)
                    for i in range(b.feats.size(0)):
                        n = int(out.lengths[i])
                        hyps.append(self.vocab_.decode(greedy_decode(out.log_probs[i, :n]).labels))
                        refs.append(
                            self.vocab_.decode(b.targets[i, : int(b.target_lens[i])].tolist())
                        )
            return _error_rates(refs, hyps, prefix="val_")

        trainer = Trainer(
            self.model_,
            self._loss,
            batches,
            val_data=val_batches,
            evaluate=evaluate,
            config=replace(cfg.train, carry_state=False),
            run_dir=run_dir,
            save_config=house_config.to_dict(cfg),
            extra_json=self._extra_json(),
            resume=resume,
        )
        result = trainer.fit()
        if run_dir is not None and (Path(run_dir) / "best" / "model.safetensors").exists():
            load_model_weights(self.model_, Path(run_dir) / "best")  # the best validation WER
        self.model_.cpu().eval()  # inference runs on the CPU (transcribe, stream, save)
        return result

    # -- inference --------------------------------------------------------------

    def _check_fitted(self) -> None:
        if self.model_ is None:
            raise UserError("the recognizer is not trained: call fit() or SpeechRecognizer.load()")

    @property
    def frame_seconds(self) -> float:
        """Duration of one output frame (after subsampling)."""
        assert self.model_ is not None
        return (
            self.config.features.hop_length
            * self.model_.subsample
            / self.config.features.sample_rate
        )

    def _decode(self, log_probs: torch.Tensor, beam: int, lm_weight: float) -> Transcript:
        assert self.vocab_ is not None
        if beam <= 1 and lm_weight == 0:
            dec = greedy_decode(log_probs)
        else:
            lm = self.lm_ if lm_weight > 0 else None
            dec = prefix_beam_search(
                log_probs, max(beam, 1), lm=lm, chars=self.vocab_.chars_, lm_weight=lm_weight
            )
        chars = self.vocab_.chars_
        text = normalize_text(self.vocab_.decode(dec.labels))
        return Transcript(text, word_times(dec.labels, dec.frames, chars, self.frame_seconds))

    @torch.no_grad()
    def log_probs(self, audio: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(normalised features (T, M), log-probabilities (T', V)) of mono audio."""
        self._check_fitted()
        assert self.features_ is not None and self.model_ is not None
        feats = self.features_(audio)  # (T, M)
        if feats.size(0) < self.model_.subsample:
            raise UserError(
                f"the audio is too short ({len(audio)} samples); it needs at least "
                f"{self.config.features.win_length} samples for one feature frame"
            )
        out = self.model_.eval()(feats[None])  # (1, T', V)
        return feats, out.log_probs[0]

    def transcribe(
        self,
        inputs: Iterable[str | Path | np.ndarray],
        *,
        beam: int = 1,
        lm_weight: float = 0.0,
    ) -> list[Transcript]:
        """Transcribe audio files or mono float arrays (at ``features.sample_rate``).

        ``beam=1`` is greedy decoding; ``beam>1`` prefix beam search, with the
        character LM when ``lm_weight > 0``.
        """
        self._check_fitted()
        out = []
        for i, x in enumerate(inputs):
            u = _as_utterance(x, i)
            _, lp = self.log_probs(_audio(u, self.config.features.sample_rate))
            out.append(self._decode(lp, beam, lm_weight))
        return out

    @torch.no_grad()
    def stream(self, chunks: Iterable[np.ndarray]) -> Iterator[str]:
        """Streaming greedy transcription: audio chunks in, the partial transcript after each.

        Needs a unidirectional model and ``features.norm`` global or none. Audio
        is kept only until its feature frames exist; the recurrent state carries
        the rest (O(1) memory per step), and frames wait in groups of
        ``model.subsample`` for the front end. The last partial transcript equals
        the offline greedy transcript of the whole audio.
        """
        self._check_fitted()
        assert self.model_ is not None and self.features_ is not None and self.vocab_ is not None
        if self.model_.config.bidirectional:
            raise UserError("streaming needs a unidirectional model (model.bidirectional=false)")
        if self.config.features.norm == "utterance":
            raise UserError("streaming needs features.norm global or none (not utterance)")
        W, H = self.config.features.win_length, self.config.features.hop_length
        s = self.model_.subsample
        audio = np.zeros(0, dtype=np.float32)
        pending = torch.zeros(0, self.config.features.n_mels)  # frames not yet in a group of s
        state: Any = None
        best_prev, labels = 0, []
        self.model_.eval()
        for chunk in chunks:
            audio = np.concatenate([audio, np.asarray(chunk, dtype=np.float32).flatten()])
            n_frames = 0 if len(audio) < W else (len(audio) - W) // H + 1
            if n_frames:
                feats = self.features_(audio[: (n_frames - 1) * H + W])  # (n, M)
                audio = audio[n_frames * H :]  # keep the overlap for the next frame
                pending = torch.cat([pending, feats], 0)
            usable = pending.size(0) // s * s
            if usable:
                out = self.model_(pending[None, :usable], None, state)  # (1, usable/s, V)
                state = out.state
                pending = pending[usable:]
                for k in out.log_probs[0].argmax(-1).tolist():
                    if k != 0 and k != best_prev:
                        labels.append(k)
                    best_prev = k
            yield normalize_text(self.vocab_.decode(labels))

    def evaluate(
        self, utts: Sequence[Utterance], *, beam: int = 1, lm_weight: float = 0.0
    ) -> dict[str, float]:
        """WER and CER (jiwer) of ``utts``; bad utterances raise :class:`UserError`."""
        self._check_fitted()
        items = self._features(utts, skip=False)
        assert self.vocab_ is not None and self.model_ is not None
        hyps, refs = [], []
        for feats, labels in items:
            with torch.no_grad():
                out = self.model_.eval()(self.features_.normalize(feats)[None])  # type: ignore[union-attr]
            hyps.append(self._decode(out.log_probs[0], beam, lm_weight).text)
            refs.append(self.vocab_.decode(labels))
        result = _error_rates(refs, hyps)
        result["utterances"] = float(len(refs))
        return result

    # -- persistence -------------------------------------------------------------

    def _extra_json(self) -> dict[str, Any]:
        assert self.vocab_ is not None and self.features_ is not None and self.lm_ is not None
        return {
            "vocab.json": self.vocab_.to_dict(),
            "features.json": self.features_.to_dict(),
            "lm.json": self.lm_.to_dict(),
        }

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json``, ``model.safetensors``, ``vocab.json``, ``features.json``,
        ``lm.json`` to ``directory``."""
        self._check_fitted()
        return write_checkpoint(
            directory,
            model=self.model_,  # type: ignore[arg-type]
            config=house_config.to_dict(self.config),
            extra_json=self._extra_json(),
        )

    @classmethod
    def load(cls, checkpoint: str | Path) -> SpeechRecognizer:
        """Load a run directory (``best/`` or ``checkpoint/``) or a checkpoint directory."""
        d = resolve_checkpoint(
            checkpoint,
            required=("config.json", "model.safetensors", "vocab.json", "features.json"),
        )
        try:
            cfg = house_config.from_dict(SpeechConfig, read_json(d / "config.json"))
        except UserError as exc:
            raise UserError(f"{d / 'config.json'} is not a speech config ({exc})") from exc
        rec = cls(cfg)
        rec.vocab_ = CharVocab.from_dict(read_json(d / "vocab.json"))
        rec.features_ = LogMel(cfg.features).load_dict(read_json(d / "features.json"))
        if (d / "lm.json").is_file():
            rec.lm_ = CharNgramLM.from_dict(read_json(d / "lm.json"))
        rec.model_ = CTCASR(cfg.model)
        load_model_weights(rec.model_, d)
        rec.model_.eval()
        return rec


def _error_rates(refs: list[str], hyps: list[str], prefix: str = "") -> dict[str, float]:
    import jiwer

    return {
        f"{prefix}wer": float(jiwer.wer(refs, hyps)),
        f"{prefix}cer": float(jiwer.cer(refs, hyps)),
    }


# ---------------------------------------------------------------------------
# Train
# ---------------------------------------------------------------------------


def train(cfg: SpeechConfig, *, resume: bool = False) -> tuple[SpeechRecognizer, TrainResult]:
    """Load the data, fit a recognizer; checkpoints and metrics go to ``cfg.run_dir``."""
    cfg.features.validate()
    replace(cfg.model, input_size=1, vocab_size=2).validate()  # fail before loading data
    train_utts, val_utts, _ = load_splits(cfg)
    rec = SpeechRecognizer(cfg)
    result = rec.fit(train_utts, val_utts, run_dir=cfg.run_dir, resume=resume)
    return rec, result


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _cmd_train(args: argparse.Namespace) -> int:
    cfg = house_config.train_config(
        SpeechConfig, args, app="speech", default_run_dir=SpeechConfig().run_dir
    )
    if args.data:
        cfg = replace(cfg, data=replace(cfg.data, source=args.data))
    if args.run_dir:
        cfg = replace(cfg, run_dir=args.run_dir)
    rec, result = train(cfg, resume=args.resume)
    last = result.evals[-1] if result.evals else {}
    print(
        f"done: {result.step} steps, val WER {last.get('val_wer', float('nan')):.4f}, "
        f"val CER {last.get('val_cer', float('nan')):.4f}, best val WER {result.best_metric:.4f}; "
        f"run directory {cfg.run_dir}"
    )
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    rec = SpeechRecognizer.load(args.checkpoint)
    if args.data:
        utts, what = load_source(args.data), args.data
    else:
        _, _, utts = load_splits(rec.config)
        what = f"{rec.config.data.source} (held-out test split)"
        if not utts:
            raise UserError("this run's data has no test split; pass --data MANIFEST")
    m = rec.evaluate(utts, beam=args.beam, lm_weight=args.lm_weight)
    decoder = "greedy" if args.beam <= 1 and args.lm_weight == 0 else f"beam {args.beam}"
    print(
        f"{what}: {int(m['utterances'])} utterances | {decoder} | WER {m['wer']:.4f} | "
        f"CER {m['cer']:.4f}"
    )
    return 0


def _plot_alignment(rec: SpeechRecognizer, audio: np.ndarray, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    feats, lp = rec.log_probs(audio)
    raw = rec.features_.logmel(audio)  # type: ignore[union-attr]  # (T, M) for display
    best = lp.argmax(-1).tolist()  # (T',)
    s = rec.model_.subsample  # type: ignore[union-attr]
    fig, (a1, a2) = plt.subplots(
        2, 1, figsize=(10, 4), sharex=True, gridspec_kw={"height_ratios": [4, 1]}
    )
    a1.imshow(raw.T.numpy(), origin="lower", aspect="auto", interpolation="nearest")
    a1.set_ylabel("mel channel")
    a1.set_title(title)
    chars = rec.vocab_.chars_  # type: ignore[union-attr]
    a2.step(np.arange(len(best)) * s, [0 if k == 0 else 1 for k in best], where="post", lw=0.8)
    for t, k in enumerate(best):
        if k != 0 and (t == 0 or best[t - 1] != k):
            a2.text(t * s, 0.5, chars[k - 1].replace(" ", "_"), fontsize=8)
    a2.set_yticks([0, 1], ["blank", "char"])
    a2.set_xlabel(f"feature frame ({rec.config.features.hop_ms:g} ms)")
    a2.set_xlim(0, feats.size(0))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _cmd_transcribe(args: argparse.Namespace) -> int:
    rec = SpeechRecognizer.load(args.checkpoint)
    sr = rec.config.features.sample_rate
    if args.plot and len(args.files) != 1:
        raise UserError("--plot takes one audio file; transcribe files one at a time to plot")
    for path in args.files:
        if args.stream:
            if args.beam > 1:
                raise UserError("--stream decodes greedily; drop --beam or --stream")
            audio = load_audio(path, sr)
            step = max(1, int(sr * args.chunk_ms / 1000))
            text = ""
            for text in rec.stream(audio[i : i + step] for i in range(0, len(audio), step)):
                print(f"\r{path}: {text}", end="", flush=True)
            print()
        else:
            (t,) = rec.transcribe([path], beam=args.beam, lm_weight=args.lm_weight)
            print(f"{path}: {t.text}")
            if args.timestamps:
                for w in t.words:
                    print(f"  {w.start:7.2f} {w.end:7.2f}  {w.word}")
        if args.plot:
            _plot_alignment(rec, load_audio(path, sr), args.plot, Path(path).name)
            print(f"wrote {args.plot}")
    return 0


def add_cli(subparsers: Any) -> None:
    """Register ``rnnkit speech {train,eval,transcribe}``."""
    fmt = argparse.ArgumentDefaultsHelpFormatter
    verbs = house_config.add_app_parser(
        subparsers,
        "speech",
        help="speech recognition with recurrent CTC models: train, eval, transcribe",
        description="Speech recognition: log-mel features, a (bi)directional LSTM/GRU "
        "acoustic model trained with CTC, greedy or prefix beam search decoding.",
    )
    t = house_config.add_train_parser(
        verbs,
        "speech",
        SpeechConfig,
        help="train a recognizer",
        description="Train a CTC recognizer. Values come from the defaults, then --preset "
        "(configs/speech/NAME.toml), then --section.key=VALUE overrides. Unreadable audio, "
        "unknown characters and audio too short for its transcript are skipped and counted.",
        data_help="fsdd, a manifest (.csv/.tsv/.jsonl with path and transcript) or a "
        "LibriSpeech-style folder",
        resume_help="continue the run in --run-dir from its last checkpoint with its saved "
        "config (--data and overrides still apply; a larger --train.max_steps extends it)",
        exclude=(
            "model.input_size",
            "model.vocab_size",
        ),
    )
    t.set_defaults(func=_cmd_train)

    def decoding(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--checkpoint",
            required=True,
            help="run directory (uses best/ or checkpoint/) or checkpoint directory",
        )
        q.add_argument("--beam", type=int, default=1, help="beam width; 1 = greedy decoding")
        q.add_argument(
            "--lm-weight",
            type=float,
            default=0.0,
            help="weight of the character n-gram LM in beam search; 0 = no LM",
        )

    e = verbs.add_parser(
        "eval",
        help="word and character error rate",
        formatter_class=fmt,
        description="Word error rate (WER) and character error rate (CER), computed with jiwer.",
    )
    decoding(e)
    e.add_argument(
        "--data",
        default=None,
        help="fsdd, a manifest or a folder; default: the held-out test split of the training data",
    )
    e.set_defaults(func=_cmd_eval)

    r = verbs.add_parser(
        "transcribe",
        help="transcribe audio files",
        formatter_class=fmt,
        description="Transcribe WAV/FLAC files (resampled and down-mixed as needed).",
    )
    decoding(r)
    r.add_argument("files", nargs="+", help="audio files")
    r.add_argument("--timestamps", action="store_true", help="print per-word start/end seconds")
    r.add_argument(
        "--stream",
        action="store_true",
        help="feed the audio in chunks and print partial transcripts (unidirectional models)",
    )
    r.add_argument("--chunk-ms", type=float, default=100.0, help="chunk length for --stream")
    r.add_argument(
        "--plot", default=None, help="write a PNG of the log-mel spectrogram and CTC alignment"
    )
    r.set_defaults(func=_cmd_transcribe)
