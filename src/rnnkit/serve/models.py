"""Which application a folder holds, loading it, and what ``GET /models`` says about it.

A folder is a saved model (``config.json`` + ``model.safetensors`` + ...), a
run directory (its ``best/``, else ``checkpoint/``, as ``Cls.load`` reads it)
or a sentiment ensemble (``ensemble.json``). The application comes from the
manifest's ``app`` field; folders written before manifests (rnnkit 0.1) are
recognised by the files only their application writes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rnnkit
from rnnkit.errors import UserError

__all__ = ["APPS", "Limits", "ServedModel", "detect_app", "jsonable", "load_models"]

# application -> (public estimator name, what its page tab is called)
APPS: dict[str, tuple[str, str]] = {
    "sentiment": ("SentimentClassifier", "Sentiment"),
    "textgen": ("TextGenerator", "Text generation"),
    "translate": ("Translator", "Translation"),
    "speech": ("SpeechRecognizer", "Speech"),
    "forecast": ("Forecaster", "Forecast"),
}


@dataclass(frozen=True)
class Limits:
    """Request size limits; a request over one gets 413 (sizes) or 422 (values)."""

    max_body_bytes: int = 10_000_000  # any request body, uploads included (413)
    max_text_chars: int = 2000  # a sentiment text, a prompt, a sentence (413)
    max_generate_chars: int = 2000  # characters generated per request (422)
    max_audio_seconds: float = 30.0  # an uploaded recording (413)
    max_horizon: int = 500  # forecast steps (422; a direct model: its own horizon)
    max_beam: int = 16  # beam size of translate and transcribe (422)
    max_series_points: int = 100_000  # values of a posted series or CSV (413)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ServedModel:
    """One loaded model: its URL name, application, estimator and what is known about it."""

    name: str
    app: str
    path: Path
    estimator: Any
    card: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def describe(self, limits: Limits) -> dict[str, Any]:
        """The ``GET /models`` entry: application, metrics, model card and page hints."""
        est = self.estimator
        return {
            "name": self.name,
            "app": self.app,
            "estimator": type(est).__name__,
            "title": APPS[self.app][1],
            "path": str(self.path),
            "metrics": jsonable(self.metrics),
            "card": self.card,
            "info": self.info,
            "limits": limits.as_dict(),
        }


def jsonable(obj: Any) -> Any:
    """Strict JSON values: NaN/inf become None, NumPy scalars plain numbers."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj if obj is None or isinstance(obj, str | int | float | bool) else str(obj)


def _manifest_app(d: Path) -> str | None:
    file = d / "manifest.json"
    if not file.is_file():
        return None
    try:
        app = json.loads(file.read_text(encoding="utf-8")).get("app")
    except (OSError, ValueError, AttributeError) as exc:
        raise UserError(f"damaged: {file} is not an rnnkit manifest; save or train again") from exc
    return app if isinstance(app, str) else None


def _files_app(d: Path) -> str | None:
    """The application of a folder written before manifests, by its artefact files."""
    has = {p.name for p in d.iterdir()} if d.is_dir() else set()
    if "forecaster.json" in has:
        return "forecast"
    if {"vocab.json", "features.json"} <= has:
        return "speech"
    if "vocab.json" in has:
        return "textgen"
    if {"tokenizer.json", "labels.json"} <= has:
        return "sentiment"
    if "tokenizer.json" in has:
        return "translate"
    return None


def _model_dir(path: Path) -> Path:
    """The folder that ``Cls.load(path)`` reads: ``path``, or its ``best/``/``checkpoint/``."""
    if (path / "model.safetensors").exists():
        return path
    for sub in ("best", "checkpoint"):
        if (path / sub / "model.safetensors").exists():
            return path / sub
    return path


def detect_app(path: str | Path) -> str:
    """The application of a saved model, run directory or ensemble (one-line error if none)."""
    p = Path(path)
    if not p.is_dir():
        what = "is a file" if p.exists() else "does not exist"
        raise UserError(
            f"{p} {what}; pass a run directory (runs/NAME) or a folder written by save()"
        )
    if (p / "ensemble.json").is_file():
        return "sentiment"
    d = _model_dir(p)
    app = _manifest_app(d) or _files_app(d)
    if app is None:
        raise UserError(
            f"{p} holds no rnnkit model (no manifest.json or model files in it, its best/ or "
            "checkpoint/); pass a run directory or a folder written by save()"
        )
    if app not in APPS:
        raise UserError(
            f"{p} holds a {app} model, which rnnkit serve cannot serve; pass one of "
            f"{', '.join(APPS)}"
        )
    return app


def _card(p: Path, est: Any) -> str:
    """The model card: ``README.md`` of the loaded folder (written by ``save()``), else,
    for a run directory (training writes no card), the card ``save()`` would write."""
    for d in (p, _model_dir(p)):
        if (d / "README.md").is_file():
            return (d / "README.md").read_text(encoding="utf-8", errors="replace")
    from rnnkit.model_card import model_card

    note = "(This run directory holds no README.md; this is the card that save() writes.)"
    return f"{note}\n\n{model_card(est)}"


def _metrics(p: Path, est: Any) -> dict[str, Any]:
    """The metrics saved with the model (``manifest.json``, or an ensemble's
    ``ensemble.json``); for a run directory whose ``best/`` was written by the training
    loop without them, its ``best.json`` record (step and validation figures)."""
    saved = dict(getattr(est, "metrics_", {}) or {})
    best = _model_dir(p) / "best.json"
    if saved or not best.is_file():
        return saved
    try:
        record = json.loads(best.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return saved
    return dict(record) if isinstance(record, dict) else saved


def _name(p: Path, taken: set[str]) -> str:
    base = p.resolve()
    if base.name in ("best", "checkpoint") and base.parent.name:
        base = base.parent
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", base.name).strip("-") or "model"
    candidate, k = name, 2
    while candidate in taken:
        candidate, k = f"{name}-{k}", k + 1
    return candidate


def _info(app: str, est: Any, limits: Limits) -> dict[str, Any]:
    """What the page needs to draw a model's tab (classes, horizons, sample rate, ...)."""
    if app == "sentiment":
        return {"classes": [str(c) for c in est.classes_]}
    if app == "textgen":
        chars = list(getattr(est.vocab_, "chars_", []))
        return {"vocabulary": "".join(chars)}
    if app == "translate":
        return {"beam": int(est.config.decode.beam)}
    if app == "speech":
        return {"sample_rate": int(est.config.features.sample_rate)}
    m = est.config.model
    direct = getattr(m, "mode", "direct") == "direct"
    ctx = est.context_
    return {
        "horizon": int(m.horizon),
        "max_horizon": min(limits.max_horizon, int(m.horizon)) if direct else limits.max_horizon,
        "lookback": int(m.lookback),
        "level": None if m.loss == "mse" else float(m.level),
        "series": list(ctx.names),
    }


def load_models(
    paths: Sequence[str | Path],
    *,
    limits: Limits | None = None,
    device: str | None = None,
    threads: int | None = None,
) -> list[ServedModel]:
    """Load every folder in ``paths`` with its application's estimator (``Cls.load``)."""
    if not paths:
        raise UserError("pass at least one run directory or saved model folder to serve")
    limits = limits or Limits()
    out: list[ServedModel] = []
    taken: set[str] = set()
    for raw in paths:
        p = Path(raw)
        app = detect_app(p)
        cls = getattr(rnnkit, APPS[app][0])
        est = cls.load(p, device=device, threads=threads, verbose=False)
        name = _name(p, taken)
        taken.add(name)
        info = _info(app, est, limits)
        out.append(ServedModel(name, app, p, est, _card(p, est), info, _metrics(p, est)))
    return out
