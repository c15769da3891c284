"""Speaker-independent speech recognition: leave-one-speaker-out over the six FSDD speakers.

For each speaker (a *fold*): train the preset on the other five (their takes
10-49; takes 5-9 validate), then score all of the held-out speaker's takes 5-49
(450 clips; single digits, or connected digits built from them) with greedy
decoding, prefix beam search (beam 8), beam 8 + the character 3-gram LM, and
both again with the lexicon constraint (only words of the training transcripts).
With ``--warps 0.9,0.95,1,1.05,1.1`` greedy and beam 8 + LM + lexicon are also
scored with the model averaged over those test-time vocal-tract warps
(``SpeechRecognizer.evaluate(warps=...)``).
With ``--mic-check`` the same test clips are also scored as a microphone would
deliver them: resampled to 16 kHz and 44.1 kHz stereo, and with 0.5-1 s of
leading/trailing silence (digital zeros, and faint noise 50 dB down).
Streaming presets (unidirectional) are also scored through ``stream()`` in
100 ms chunks, with the share of utterances whose partial transcript showed
text before their last chunk arrived.

Prints one JSON line per fold and a summary (mean and worst WER), and writes
``<out>/fold-<speaker>.json`` and ``<out>/summary.json``. Folds run as separate
processes, ``--jobs`` at a time, one torch thread each; training is bounded by
steps (``train.max_steps``), so the figures do not depend on the machine's load.

    RNNKIT_DATA_MIRROR=file:///path/to/shared/data \\
      python benchmarks/speech_loso.py --preset fsdd_speaker --out runs/loso --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
DECODERS = (  # name, beam, LM weight, lexicon
    ("greedy", 1, 0.0, False),
    ("beam8", 8, 0.0, False),
    ("beam8_lm", 8, 0.3, False),
    ("beam8_lex", 8, 0.0, True),
    ("beam8_lm_lex", 8, 0.3, True),
)

__all__ = ["main", "mic_variants"]


def mic_variants(audio: np.ndarray, sr: int, rng: np.random.Generator) -> dict[str, tuple]:
    """(samples (N, C), rate) of one clip as microphones deliver it."""
    from scipy.signal import resample_poly

    def pad(x: np.ndarray, noise: bool) -> np.ndarray:
        lead, trail = (int(rng.uniform(0.5, 1.0) * sr) for _ in range(2))
        y = np.zeros(lead + len(x) + trail, dtype=np.float32)
        if noise:
            rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
            y += rng.standard_normal(len(y)).astype(np.float32) * rms * 10 ** (-50 / 20)
        y[lead : lead + len(x)] += x
        return y

    up16 = resample_poly(audio, 2, 1).astype(np.float32)
    up44 = resample_poly(audio, 441, 80).astype(np.float32)
    return {
        "16k_stereo": (np.stack([up16, 0.8 * up16], 1), 16000),
        "44k1_stereo": (np.stack([up44, 0.8 * up44], 1), 44100),
        "pad_zeros": (pad(audio, False)[:, None], sr),
        "pad_noise": (pad(audio, True)[:, None], sr),
    }


def run_fold(args: argparse.Namespace, speaker: str) -> dict:
    import soundfile as sf
    import torch

    from rnnkit import SpeechRecognizer
    from rnnkit.speech import Utterance, load_config
    from rnnkit.speech.data import audio_of, load_splits

    torch.set_num_threads(1)
    overrides = [
        "data.split=speaker",
        f"data.holdout_speaker={speaker}",
        *args.overrides,
    ]
    cfg = load_config(preset=args.preset, overrides=overrides)
    run_dir = Path(args.out) / speaker
    previous = Path(args.out, f"fold-{speaker}.json")
    if args.rescore:  # score the fold's saved model again (new decoders, the mic check)
        rec = SpeechRecognizer.load(run_dir, threads=1, verbose=False)
        out = json.loads(previous.read_text())
    else:
        rec = SpeechRecognizer(config=cfg, threads=1, verbose=False)
        t0 = time.perf_counter()
        rec.fit(run_dir=run_dir, overwrite=True)
        out = {
            "speaker": speaker,
            "preset": args.preset,
            "overrides": args.overrides,
            "steps": rec.result_.step,
            "train_seconds": round(time.perf_counter() - t0, 1),
            "best_val_wer": round(rec.result_.best_metric, 4),
        }
    _, _, test = load_splits(rec.config, quiet=True)
    out["test_utterances"] = len(test)
    out["test"] = out.get("test", {}) if args.rescore else {}  # rescore: add what is missing
    for name, beam, lm_weight, lexicon in DECODERS:
        if name in out["test"]:
            continue
        m = rec.evaluate(test, beam=beam, lm_weight=lm_weight, lexicon=lexicon)
        out["test"][name] = {"wer": round(m["wer"], 4), "cer": round(m["cer"], 4)}
    if args.warps:
        warps = [float(w) for w in args.warps.split(",")]
        out["warps"] = warps
        for name, beam, lm_weight, lexicon in DECODERS:
            if name in ("greedy", "beam8_lm_lex"):
                m = rec.evaluate(test, beam=beam, lm_weight=lm_weight, lexicon=lexicon, warps=warps)
                out["test"][f"{name}_warps"] = {
                    "wer": round(m["wer"], 4),
                    "cer": round(m["cer"], 4),
                }
    sr = rec.config.features.sample_rate
    if args.mic_check:
        rng = np.random.default_rng(0)
        variants: dict[str, list] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for i, u in enumerate(test):
                for name, (x, rate) in mic_variants(audio_of(u, sr), sr, rng).items():
                    path = Path(tmp, f"{name}-{i}.wav")
                    sf.write(path, x, rate, subtype="PCM_16")
                    variants.setdefault(name, []).append(Utterance(str(path), u.text))
            out["mic_check_greedy_wer"] = {
                name: round(rec.evaluate(utts)["wer"], 4) for name, utts in variants.items()
            }
    if not rec.config.model.bidirectional:
        import jiwer

        chunk = int(0.1 * sr)
        hyps, refs, early, at_end = [], [], 0, 0
        for u in test:
            x = audio_of(u, sr)
            chunks = np.split(x, range(chunk, len(x), chunk))
            parts = list(rec.stream(chunks))  # one per chunk, then one after the tail
            hyps.append(parts[-1] or "<empty>")
            refs.append(u.text)
            n = len(chunks)
            early += bool(n > 1 and parts[n - 2].strip())
            at_end += bool(parts[n - 1].strip())
        out["stream_100ms_wer"] = round(float(jiwer.wer(refs, hyps)), 4)
        # text on screen before the last 100 ms chunk of the utterance has arrived, and
        # once it has (before the features.tail_ms flush)
        out["stream_text_before_end"] = round(early / len(test), 4)
        out["stream_text_at_end"] = round(at_end / len(test), 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="fsdd_speaker")
    ap.add_argument("--out", default="runs/speech-loso", help="run folders and JSON results")
    ap.add_argument("--speakers", default=",".join(SPEAKERS), help="folds to run")
    ap.add_argument("--jobs", type=int, default=1, help="folds trained at once (1 thread each)")
    ap.add_argument("--mic-check", action="store_true", help="also score resampled/padded audio")
    ap.add_argument("--overrides", nargs="*", default=[], help="dotted config overrides")
    ap.add_argument(
        "--warps", help="also score test-time vocal-tract warps, e.g. 0.9,0.95,1,1.05,1.1"
    )
    ap.add_argument(
        "--summarize", action="store_true", help="only summarise the folds already in --out"
    )
    ap.add_argument(
        "--rescore", action="store_true", help="score the folds' saved models, do not train"
    )
    ap.add_argument("--fold", help=argparse.SUPPRESS)  # internal: run one fold in this process
    args = ap.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.fold:
        res = run_fold(args, args.fold)
        Path(out_dir, f"fold-{args.fold}.json").write_text(json.dumps(res) + "\n")
        print(json.dumps(res), flush=True)
        return
    speakers = [s for s in args.speakers.split(",") if s]
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    base = [sys.executable, __file__, "--preset", args.preset, "--out", args.out]
    if args.mic_check:
        base.append("--mic-check")
    if args.rescore:
        base.append("--rescore")
    if args.warps:
        base += ["--warps", args.warps]
    if args.overrides:
        base += ["--overrides", *args.overrides]
    pending, running = ([] if args.summarize else list(speakers)), []
    while pending or running:
        while pending and len(running) < max(1, args.jobs):
            running.append(subprocess.Popen([*base, "--fold", pending.pop(0)], env=env))
        time.sleep(2)
        for p in [p for p in running if p.poll() is not None]:
            running.remove(p)
            if p.returncode:
                sys.exit(f"a fold failed (exit {p.returncode}): {' '.join(p.args)}")
    folds = [json.loads(Path(out_dir, f"fold-{s}.json").read_text()) for s in speakers]
    summary: dict = {
        "preset": args.preset,
        "overrides": args.overrides,
        "folds": len(folds),
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "jobs": args.jobs,
        "loadavg_start_end": [round(load0, 1), round(os.getloadavg()[0], 1)],
    }
    names = [n for n in folds[0]["test"] if all(n in f["test"] for f in folds)]
    for name in names:
        wers = {f["speaker"]: f["test"][name]["wer"] for f in folds}
        summary[name] = {
            "mean_wer": round(float(np.mean(list(wers.values()))), 4),
            "worst_wer": max(wers.values()),
            "per_speaker": wers,
        }
    for key in ("stream_100ms_wer", "stream_text_before_end", "stream_text_at_end"):
        if all(key in f for f in folds):
            summary[key] = {
                "mean": round(float(np.mean([f[key] for f in folds])), 4),
                "per_speaker": {f["speaker"]: f[key] for f in folds},
            }
    if all("mic_check_greedy_wer" in f for f in folds):
        names = folds[0]["mic_check_greedy_wer"]
        summary["mic_check_greedy_mean_wer"] = {
            n: round(float(np.mean([f["mic_check_greedy_wer"][n] for f in folds])), 4)
            for n in names
        }
    Path(out_dir, "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
