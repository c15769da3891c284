"""``rnnkit speech train | eval | transcribe`` (``predict`` is another name for ``transcribe``).

Command line::

    rnnkit speech train --preset fsdd --run-dir runs/speech
    rnnkit speech eval --checkpoint runs/speech --data test.csv --beam 8 --json wer.json
    rnnkit speech transcribe --checkpoint runs/speech clip.wav --beam 8 --timestamps
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from rnnkit.cli_common import (
    add_app_parser,
    add_train_parser,
    add_verb_parser,
    runtime_kwargs,
    train_config,
    write_json,
)
from rnnkit.errors import UserError
from rnnkit.speech.config import SpeechConfig
from rnnkit.speech.estimator import SpeechRecognizer
from rnnkit.speech.features import load_audio

__all__ = ["add_cli"]


def _say(args: argparse.Namespace, line: str, **kwargs: Any) -> None:
    """A human-readable line on stdout (not when ``--json -`` owns stdout)."""
    if getattr(args, "json", None) != "-":
        print(line, **kwargs)


def _cmd_train(args: argparse.Namespace) -> int:
    cfg = train_config(SpeechConfig, args, app="speech", default_run_dir=SpeechConfig().run_dir)
    if args.data:
        cfg = replace(cfg, data=replace(cfg.data, source=args.data))
    if args.run_dir:
        cfg = replace(cfg, run_dir=args.run_dir)
    rec = SpeechRecognizer(config=cfg, **runtime_kwargs(args))
    rec.fit(run_dir=cfg.run_dir, resume=args.resume, overwrite=args.overwrite)
    result = rec.result_
    last = result.evals[-1] if result.evals else {}
    _say(
        args,
        f"done: {result.step} steps, val WER {last.get('val_wer', float('nan')):.4f}, "
        f"val CER {last.get('val_cer', float('nan')):.4f}, best val WER {result.best_metric:.4f}; "
        f"run directory {cfg.run_dir}",
    )
    write_json(args.json, rec.metrics_)
    return 0


def _load(args: argparse.Namespace) -> SpeechRecognizer:
    rec = SpeechRecognizer.load(args.checkpoint, device=args.device, threads=args.threads)
    return cast(SpeechRecognizer, rec)


def _cmd_eval(args: argparse.Namespace) -> int:
    rec = _load(args)
    m = rec.evaluate(
        args.data,
        beam=args.beam,
        lm_weight=args.lm_weight,
        lexicon=args.lexicon,
        warps=_warps(args.warps),
    )
    _say(
        args,
        f"{m['measured_on']}: {m['utterances']} utterances | {m['decoder']} | "
        f"WER {m['wer']:.4f} | CER {m['cer']:.4f}",
    )
    write_json(args.json, m)
    return 0


def _cmd_transcribe(args: argparse.Namespace) -> int:
    rec = _load(args)
    sr = rec.config.features.sample_rate
    if args.plot and len(args.files) != 1:
        raise UserError("--plot takes one audio file; transcribe files one at a time to plot")
    if args.stream and (args.beam > 1 or args.lexicon or args.lm_weight or args.warps):
        raise UserError(
            "--stream decodes greedily; drop --beam/--lm-weight/--lexicon/--warps or --stream"
        )
    results = []
    for path in args.files:
        words: list[dict[str, Any]] = []
        if args.stream:
            audio = load_audio(path, sr)
            step = max(1, int(sr * args.chunk_ms / 1000))
            text = ""
            for text in rec.stream(audio[i : i + step] for i in range(0, len(audio), step)):
                _say(args, f"\r{path}: {text}", end="", flush=True)
            _say(args, "")
        else:
            (t,) = rec.transcribe(
                path,
                beam=args.beam,
                lm_weight=args.lm_weight,
                lexicon=args.lexicon,
                warps=_warps(args.warps),
            )
            text = t.text
            words = [w._asdict() for w in t.words]
            _say(args, f"{path}: {text}")
            if args.timestamps:
                for w in t.words:
                    _say(args, f"  {w.start:7.2f} {w.end:7.2f}  {w.word}")
        results.append({"file": str(path), "text": text, "words": words})
        if args.plot:
            rec.plot_alignment(path, args.plot, title=Path(path).name)
            _say(args, f"wrote {args.plot}")
    write_json(args.json, results)
    return 0


def _warps(text: str | None) -> tuple[float, ...]:
    """``--warps 0.9,1.0,1.1`` as floats (range checked by the estimator)."""
    if not text:
        return ()
    try:
        return tuple(float(w) for w in text.split(","))
    except ValueError:
        raise UserError(
            f"--warps takes comma-separated factors such as 0.9,1.0,1.1, got {text!r}"
        ) from None


def _decoding_arguments(q: argparse.ArgumentParser) -> None:
    q.add_argument("--beam", type=int, default=1, help="beam width; 1 = greedy decoding")
    q.add_argument(
        "--lm-weight",
        type=float,
        default=0.0,
        help="weight of the character n-gram LM in beam search; 0 = no LM",
    )
    q.add_argument(
        "--lexicon",
        action="store_true",
        help="beam search spells only words of the training transcripts (closed vocabularies "
        "such as digits); use it with a beam, e.g. --beam 8",
    )
    q.add_argument(
        "--warps",
        metavar="A,B,...",
        help="average the model over test-time vocal-tract warps of the mel axis, e.g. "
        "0.9,0.95,1,1.05,1.1 (for voices unlike the training speakers'; costs one model "
        "pass per warp)",
    )


def add_cli(subparsers: Any) -> None:
    """Register ``rnnkit speech {train,eval,transcribe (predict)}``."""
    verbs = add_app_parser(
        subparsers,
        "speech",
        help="speech recognition with recurrent CTC models: train, eval, transcribe",
        description="Speech recognition: log-mel features, a (bi)directional LSTM/GRU "
        "acoustic model trained with CTC, greedy or prefix beam search decoding.",
    )
    t = add_train_parser(
        verbs,
        "speech",
        SpeechConfig,
        help="train a recognizer",
        description="Train a CTC recognizer. Values come from the defaults, then --preset "
        "(rnnkit/speech/presets/NAME.toml), then --section.key=VALUE overrides. Unreadable "
        "audio, unknown characters and audio too short for its transcript are skipped and "
        "counted.",
        data_help="fsdd, a manifest (.csv/.tsv/.jsonl with path and transcript) or a "
        "LibriSpeech-style folder",
        resume_help="continue the run in --run-dir from its last checkpoint with its saved "
        "config (--data and overrides still apply; a larger --train.max_steps extends it)",
        exclude=("model.input_size", "model.vocab_size"),
    )
    t.set_defaults(func=_cmd_train)

    e = add_verb_parser(
        verbs,
        "eval",
        help="word and character error rate",
        description="Word error rate (WER) and character error rate (CER), computed with jiwer.",
    )
    _decoding_arguments(e)
    e.add_argument(
        "--data",
        default=None,
        help="fsdd, a manifest or a folder; default: the held-out test split of the training data",
    )
    e.set_defaults(func=_cmd_eval)

    r = add_verb_parser(
        verbs,
        "transcribe",
        aliases=("predict",),
        help="transcribe audio files (also: predict)",
        description="Transcribe WAV/FLAC files (resampled and down-mixed as needed). "
        "'rnnkit speech predict' is the same command.",
        json_what="the transcripts (file, text, per-word times)",
    )
    _decoding_arguments(r)
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
