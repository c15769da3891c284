"""SpeechRecognizer: audio in, text out (log-mel features -> recurrent CTC model -> decoder).

Longer than 400 lines: one estimator class read top to bottom (fit, decoding,
streaming, scoring, plotting, the save/load hooks); split, the contract would scatter.

Read top to bottom: fit -> transcribe/predict, stream, evaluate, plot_alignment ->
the save/load hooks of the base :class:`~rnnkit.estimator.Estimator`::

    from rnnkit import SpeechRecognizer

    rec = SpeechRecognizer(preset="fsdd").fit(run_dir="runs/speech-fsdd")  # the config's data
    rec = SpeechRecognizer.load("runs/speech-fsdd")     # best/ (or checkpoint/)
    rec.transcribe(["one.wav"], beam=8)[0].text         # Transcript(text, words)
    rec.predict(["one.wav"])                            # ["one"]
    rec.evaluate()                                      # the held-out test split: WER, CER

Bad data is skipped with a count during training (unreadable or empty audio,
characters outside the alphabet, audio too short for its transcript under
CTC, audio longer than ``data.max_audio_seconds``); ``evaluate`` and ``transcribe``
raise a one-line error instead (and take audio of any length).
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rnnkit import config as config_lib
from rnnkit.errors import UserError
from rnnkit.estimator import Estimator
from rnnkit.speech.augment import Augmenter, spec_augment
from rnnkit.speech.batches import (
    CharVocab,
    SpeechBatch,
    SpeechBatches,
    ctc_min_frames,
    encode_utterances,
    greedy_error_rates,
)
from rnnkit.speech.config import SpeechConfig
from rnnkit.speech.data import (
    AudioInput,
    Utterance,
    as_utterances,
    audio_of,
    eval_utterances,
    load_splits,
    normalize_text,
    split_off_validation,
)
from rnnkit.speech.decode import (
    CharNgramLM,
    Transcript,
    error_rates,
    greedy_decode,
    prefix_beam_search,
    word_times,
)
from rnnkit.speech.features import LogMel
from rnnkit.speech.model import CTCASR, ctc_loss
from rnnkit.speech.plots import plot_alignment
from rnnkit.training import (
    StepResult,
    Trainer,
    check_run_dir,
    load_model_weights,
    read_json,
    seed_everything,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SpeechRecognizer"]


def _decoder_name(
    beam: int, lm_weight: float, lexicon: bool = False, warps: Sequence[float] = ()
) -> str:
    warped = f" + warps {','.join(f'{w:g}' for w in warps)}" if warps else ""
    if beam <= 1 and lm_weight == 0 and not lexicon:
        return "greedy" + warped
    return (
        f"beam {beam}"
        + (f" + LM {lm_weight:g}" if lm_weight else "")
        + (" + lexicon" if lexicon else "")
        + warped
    )


def _check_warps(warps: Sequence[float] | None) -> tuple[float, ...]:
    """Test-time warp factors as floats; a one-line error for anything else."""
    try:
        out = tuple(float(w) for w in (warps or ()))
    except (TypeError, ValueError):
        raise UserError(f"warps must be numbers such as 0.9,1.0,1.1, got {warps!r}") from None
    if any(not 0.5 <= w <= 1.5 for w in out):
        raise UserError(
            f"warps must be factors between 0.5 and 1.5 (e.g. 0.9,1.0,1.1), got {list(out)}"
        )
    return out


class SpeechRecognizer(Estimator):
    """Features + acoustic model + vocabulary (+ character LM): audio in, text out.

    Build from a config or a preset (``SpeechRecognizer(preset="tiny", max_steps=20)``)
    and :meth:`fit`, or :meth:`load` a saved one. Learned attributes after
    ``fit``: ``vocab_``, ``features_`` (fitted :class:`LogMel`), ``model_``,
    ``lm_``, ``history_``, ``metrics_``, ``result_``.
    """

    app = "speech"
    config_class = SpeechConfig
    artifact_files = ("vocab.json", "features.json")  # lm.json is optional

    def _loss(self, model: torch.nn.Module, batch: SpeechBatch, state: Any) -> StepResult:
        feats = batch.feats
        if model.training:
            feats = spec_augment(feats, batch.feat_lens, self.config.features)
        out = model(feats, batch.feat_lens)
        loss = ctc_loss(out, batch.targets, batch.target_lens)
        return StepResult(loss, None, int(batch.target_lens.sum()))

    def fit(
        self,
        train: Sequence[Utterance] | None = None,
        val: Sequence[Utterance] | None = None,
        *,
        run_dir: str | os.PathLike[str] | None = None,
        resume: bool = False,
        overwrite: bool = False,
    ) -> SpeechRecognizer:
        """Fit vocabulary, feature normalisation, LM and model; return ``self``.

        ``train``/``val``: utterances; both ``None`` reads the config's
        ``data.source`` and its splits (:func:`~rnnkit.speech.data.load_splits`);
        ``val=None`` alone holds out a seeded ``data.val_fraction`` of ``train``.
        ``run_dir``: where ``checkpoint/``, ``best/`` (lowest validation WER, the
        model kept) and ``metrics.jsonl`` go (``None``: nothing is written).
        ``resume=True`` continues ``run_dir/checkpoint`` (vocabulary, features and
        LM are refitted deterministically from the same data first);
        ``overwrite=True`` replaces a run already there.
        """
        cfg = self._runtime_config()
        cfg.data.validate()
        cfg.features.validate()
        cfg.augment.validate()
        replace(cfg.model, input_size=1, vocab_size=2).validate()  # fail before loading data
        cfg.train.validate()
        check_run_dir(run_dir, resume=resume, overwrite=overwrite)
        if train is None and val is not None:
            raise UserError("pass train utterances with val (or neither: the config's data)")
        with self._threads(), self._quiet():
            if train is None:
                train, val, _ = load_splits(cfg, quiet=not self.verbose)
            elif val is None:
                train, val = split_off_validation(list(train), cfg)
            self._fit(cfg, list(train), list(val), run_dir, resume, overwrite)
        return self

    def _fit(
        self,
        cfg: SpeechConfig,
        train: list[Utterance],
        val: list[Utterance],
        run_dir: str | os.PathLike[str] | None,
        resume: bool,
        overwrite: bool,
    ) -> None:
        seed_everything(cfg.train.seed)
        texts = [t for t in (normalize_text(u.text) for u in train) if t]
        self.vocab_ = CharVocab().fit(texts)
        self.lm_: CharNgramLM | None = CharNgramLM(cfg.data.lm_order).fit(texts)
        self.features_ = LogMel(cfg.features)
        s = cfg.model.subsample if cfg.model.conv_channels else 1
        limit = cfg.data.max_audio_seconds
        kw: dict[str, Any] = {"subsample": s, "skip": True, "say": self._say, "max_seconds": limit}
        train_audio: list[np.ndarray] = []
        train_items = encode_utterances(
            train,
            self.vocab_,
            self.features_,
            audio_out=train_audio if cfg.augment.active else None,
            **kw,
        )
        val_items = encode_utterances(val, self.vocab_, self.features_, **kw)
        if not train_items or not val_items:
            raise UserError("no usable training or validation utterances are left after skipping")
        self.features_.fit([f for f, _ in train_items])
        train_items = [(self.features_.normalize(f), t) for f, t in train_items]
        val_items = [(self.features_.normalize(f), t) for f, t in val_items]
        model_cfg = replace(cfg.model, input_size=cfg.features.n_mels, vocab_size=len(self.vocab_))
        self.config = replace(self.config, model=model_cfg)
        cfg = replace(cfg, model=model_cfg)
        self.model_ = CTCASR(model_cfg)
        n_params = sum(p.numel() for p in self.model_.parameters())
        self._say(
            f"speech: {len(train_items)} train / {len(val_items)} validation utterances, "
            f"{len(self.vocab_) - 1} characters + blank, {model_cfg.cell} "
            f"{model_cfg.num_layers}x{model_cfg.hidden_size}"
            f"{' bidirectional' if model_cfg.bidirectional else ''}, {n_params:,} parameters"
            + (f" -> {run_dir}" if run_dir else "")
        )
        if cfg.augment.active:  # features computed batch by batch from augmented audio
            augmenter = Augmenter(
                self.features_,
                cfg.augment,
                babble=train_audio,
                min_frames=lambda labels: ctc_min_frames(labels) * s,
            )
            audio_items = [(a, t) for a, (_, t) in zip(train_audio, train_items, strict=True)]
            batches = SpeechBatches(
                audio_items, cfg.data.batch_size, seed=cfg.train.seed, featurize=augmenter
            )
        else:
            batches = SpeechBatches(train_items, cfg.data.batch_size, seed=cfg.train.seed)
        val_batches = SpeechBatches(val_items, cfg.data.batch_size, shuffle=False)
        trainer = Trainer(
            self.model_,
            self._loss,
            batches,
            val_data=val_batches,
            evaluate=functools.partial(greedy_error_rates, batches=val_batches, vocab=self.vocab_),
            config=replace(cfg.train, carry_state=False),
            run_dir=run_dir,
            save_config=config_lib.to_dict(cfg),
            extra_json=self._artifacts(),
            meta=self._trainer_meta(),
            resume=resume,
            overwrite=overwrite,
        )
        result = trainer.fit()
        kept = result.evals[-1] if result.evals else {}
        best = Path(run_dir) / "best" if run_dir is not None else None
        if best is not None and (best / "model.safetensors").exists():
            load_model_weights(self.model_, best)  # the best validation WER
            if (best / "best.json").is_file():
                kept = read_json(best / "best.json")
        self.model_.eval()
        self.result_ = result
        self.history_ = list(result.evals)
        self.metrics_: dict[str, Any] = {
            k: float(v) for k, v in kept.items() if k != "step" and isinstance(v, int | float)
        }
        self.metrics_["measured_on"] = f"the validation set ({len(val_items)} utterances)"

    # -- inference -----------------------------------------------------------------

    def _device(self) -> torch.device:
        return next(self.model_.parameters()).device

    @property
    def frame_seconds(self) -> float:
        """Duration of one output frame (after subsampling)."""
        self._check_fitted()
        f = self.config.features
        return f.hop_length * self.model_.subsample / f.sample_rate

    def _lexicon(self) -> list[str]:
        words = getattr(getattr(self, "lm_", None), "words_", None)
        if not words:
            raise UserError(
                "this model was saved without a lexicon (lm.json from an older rnnkit); "
                "decode without lexicon, or retrain"
            )
        return list(words)

    def _decode(
        self, log_probs: torch.Tensor, beam: int, lm_weight: float, lexicon: bool = False
    ) -> Transcript:
        if beam <= 1 and lm_weight == 0 and not lexicon:
            dec = greedy_decode(log_probs)
        else:
            lm = getattr(self, "lm_", None) if lm_weight > 0 else None
            if lm_weight > 0 and lm is None:
                raise UserError("this model was saved without lm.json; use lm_weight=0")
            dec = prefix_beam_search(
                log_probs,
                max(beam, 1),
                lm=lm,
                chars=self.vocab_.chars_,
                lm_weight=lm_weight,
                lexicon=self._lexicon() if lexicon else None,
            )
        chars = self.vocab_.chars_
        text = normalize_text(self.vocab_.decode(dec.labels))
        return Transcript(text, word_times(dec.labels, dec.frames, chars, self.frame_seconds))

    @torch.no_grad()
    def log_probs(
        self, audio: np.ndarray, *, warps: Sequence[float] = ()
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(normalised features (T, M), log-probabilities (T', V)) of mono audio, on the CPU.

        ``warps``: test-time vocal-tract-length warps (e.g. ``(0.9, 1.0, 1.1)``). The
        model's posteriors for the features under each mel-axis warp (the VTLP of
        training, :func:`~rnnkit.speech.features.vtlp_warp`) are averaged, frame by
        frame (a warp keeps the frames): an ensemble over vocal tract lengths that
        needs no labels, for voices unlike the training speakers'. ``()``: no warp.
        """
        self._check_fitted()
        warps = _check_warps(warps)
        feats = self.features_(audio)  # (T, M)
        if feats.size(0) < self.model_.subsample:
            raise UserError(
                f"the audio is too short ({len(audio)} samples); it needs at least "
                f"{self.config.features.win_length} samples for one feature frame"
            )
        if not warps:
            return feats, self._model_log_probs(feats)
        views = [
            self._model_log_probs(self.features_.normalize(self.features_.logmel(audio, vtlp=w)))
            for w in warps
        ]
        return feats, torch.logsumexp(torch.stack(views), 0) - math.log(len(views))

    def _model_log_probs(self, feats: torch.Tensor) -> torch.Tensor:
        """(T', V) log-probabilities of normalised features (T, M), on the CPU."""
        out = self.model_.eval()(feats[None].to(self._device()))  # (1, T', V)
        return out.log_probs[0].cpu()

    def transcribe(
        self,
        inputs: AudioInput | Iterable[AudioInput],
        *,
        beam: int = 1,
        lm_weight: float = 0.0,
        lexicon: bool = False,
        warps: Sequence[float] = (),
    ) -> list[Transcript]:
        """Transcribe audio files or mono float arrays (at ``features.sample_rate``).

        ``inputs``: one path or 1-D array, or a list of them; one
        :class:`~rnnkit.speech.decode.Transcript` (text, per-word times) each.
        ``beam=1`` is greedy decoding; ``beam>1`` prefix beam search, with the
        character LM when ``lm_weight > 0``; ``lexicon=True`` lets beam search spell
        only words of the training transcripts; ``warps`` averages the model over
        test-time vocal-tract warps (:meth:`log_probs`).
        """
        self._check_fitted()
        warps = _check_warps(warps)
        out = []
        with self._threads():
            for u in as_utterances(inputs):
                audio = audio_of(u, self.config.features.sample_rate)
                _, lp = self.log_probs(audio, warps=warps)
                out.append(self._decode(lp, beam, lm_weight, lexicon))
        return out

    def predict(
        self,
        inputs: AudioInput | Iterable[AudioInput],
        *,
        beam: int = 1,
        lm_weight: float = 0.0,
        lexicon: bool = False,
        warps: Sequence[float] = (),
    ) -> list[str]:
        """The transcripts' text of :meth:`transcribe` (one string per input)."""
        out = self.transcribe(inputs, beam=beam, lm_weight=lm_weight, lexicon=lexicon, warps=warps)
        return [t.text for t in out]

    @torch.no_grad()
    def stream(self, chunks: Iterable[np.ndarray]) -> Iterator[str]:
        """Streaming greedy transcription: audio chunks in, the partial transcript after each.

        Needs a unidirectional model and ``features.norm`` global, causal_cmn or none. Audio
        is kept only until its feature frames exist; the recurrent state carries
        the rest (O(1) memory per step), and frames wait in groups of
        ``model.subsample`` for the front end. When the chunks end, ``features.tail_ms``
        of silence is fed (one more partial transcript) so the model can emit what it
        heard last. The last partial transcript equals the offline greedy transcript
        of the whole audio.
        """
        self._check_fitted()
        if self.model_.config.bidirectional:
            raise UserError("streaming needs a unidirectional model (model.bidirectional=false)")
        if self.config.features.norm in ("utterance", "cmn"):
            raise UserError(
                f"streaming needs features.norm global, causal_cmn or none (this model uses "
                f"{self.config.features.norm}, which needs the whole utterance)"
            )
        W, H = self.config.features.win_length, self.config.features.hop_length
        s = self.model_.subsample
        device = self._device()
        audio = np.zeros(0, dtype=np.float32)
        pending = torch.zeros(0, self.config.features.n_mels)  # frames not yet in a group of s
        state: Any = None
        norm_state: Any = None
        best_prev, labels = 0, []
        self.model_.eval()
        flush = np.zeros(self.features_.tail_samples, dtype=np.float32)
        for chunk in itertools.chain(chunks, [flush] if len(flush) else []):
            with self._threads():
                audio = np.concatenate([audio, np.asarray(chunk, dtype=np.float32).flatten()])
                n_frames = 0 if len(audio) < W else (len(audio) - W) // H + 1
                if n_frames:
                    raw = self.features_.logmel(audio[: (n_frames - 1) * H + W], tail=False)
                    feats, norm_state = self.features_.normalize_stream(raw, norm_state)
                    audio = audio[n_frames * H :]  # keep the overlap for the next frame
                    pending = torch.cat([pending, feats], 0)
                usable = pending.size(0) // s * s
                if usable:
                    x = pending[None, :usable].to(device)  # (1, usable, M)
                    out = self.model_(x, None, state)  # (1, usable/s, V)
                    state = out.state
                    pending = pending[usable:]
                    for k in out.log_probs[0].argmax(-1).tolist():
                        if k != 0 and k != best_prev:
                            labels.append(k)
                        best_prev = k
            yield normalize_text(self.vocab_.decode(labels))

    def evaluate(
        self,
        data: Sequence[Utterance] | str | os.PathLike[str] | None = None,
        *,
        beam: int = 1,
        lm_weight: float = 0.0,
        lexicon: bool = False,
        warps: Sequence[float] = (),
    ) -> dict[str, Any]:
        """WER and CER (jiwer) of ``data``; bad utterances raise :class:`UserError`.

        ``data``: utterances, a source (``fsdd``, a manifest, a folder), or
        ``None`` for the held-out test split of the config's ``data.source``.
        Decoding as in :meth:`transcribe`.
        Returns ``{"wer", "cer", "utterances", "decoder", "measured_on"}``.
        """
        self._check_fitted()
        warps = _check_warps(warps)
        utts, what = eval_utterances(self.config, data, quiet=not self.verbose)
        if not utts:
            raise UserError("no utterances to evaluate; pass at least one")
        hyps, refs = [], []
        sr = self.config.features.sample_rate
        with self._threads(), torch.no_grad():
            items = encode_utterances(
                utts, self.vocab_, self.features_, subsample=self.model_.subsample, skip=False
            )
            for u, (feats, labels) in zip(utts, items, strict=True):
                if warps:
                    _, lp = self.log_probs(audio_of(u, sr), warps=warps)
                else:
                    lp = self._model_log_probs(self.features_.normalize(feats))
                hyps.append(self._decode(lp, beam, lm_weight, lexicon).text)
                refs.append(self.vocab_.decode(labels))
        result: dict[str, Any] = dict(error_rates(refs, hyps))
        result["utterances"] = len(refs)
        result["decoder"] = _decoder_name(beam, lm_weight, lexicon, warps)
        result["measured_on"] = what
        return result

    def plot_alignment(
        self,
        audio: AudioInput,
        path: str | os.PathLike[str] | None = None,
        *,
        title: str | None = None,
    ) -> Figure:
        """Log-mel spectrogram and per-frame CTC argmax of one clip (a path or samples);
        returns the matplotlib Figure and saves it to ``path`` when given."""
        self._check_fitted()
        (u,) = as_utterances(audio)
        with self._threads():
            x = audio_of(u, self.config.features.sample_rate)
            _, lp = self.log_probs(x)
            raw = self.features_.logmel(x)  # (T, M), un-normalised for display
        if title is None:
            title = Path(u.key).name if isinstance(u.audio, str) else ""
        return plot_alignment(
            raw.numpy(),
            lp.argmax(-1).tolist(),
            self.vocab_.chars_,
            subsample=self.model_.subsample,
            hop_ms=self.config.features.hop_ms,
            title=title,
            path=path,
        )

    # -- save / load (the folder layout is the base class's) -----------------------------

    def _artifacts(self) -> dict[str, Any]:
        files = {"vocab.json": self.vocab_.to_dict(), "features.json": self.features_.to_dict()}
        if getattr(self, "lm_", None) is not None:
            files["lm.json"] = self.lm_.to_dict()
        return files

    def _restore(self, directory: Path) -> None:
        self.vocab_ = CharVocab.from_dict(read_json(directory / "vocab.json"))
        features = LogMel(self.config.features)
        self.features_ = features.load_dict(read_json(directory / "features.json"))
        lm = directory / "lm.json"
        self.lm_ = CharNgramLM.from_dict(read_json(lm)) if lm.is_file() else None
        model = CTCASR(self.config.model)
        load_model_weights(model, directory)
        self.model_ = model.eval()
