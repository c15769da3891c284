"""Checkpoints as directories, written atomically, loaded without unpickling.

A checkpoint is a directory::

    config.json            what the caller passes as ``config`` (the pipeline's config)
    model.safetensors      the model's state dict (shared/tied tensors handled)
    <name>.json            extra JSON artefacts (e.g. ``vocab.json``)
    optimizer.safetensors  optimizer state tensors (training checkpoints only)
    trainer_state.json     step, data position, best metric, RNG states, optimizer
                           param groups and non-tensor optimizer state
    carry.safetensors      the carried TBPTT hidden state, if any

Everything is written into a fresh temporary directory beside the target,
flushed, and renamed into place (``os.replace``), so a crash at any moment
leaves either the previous checkpoint or the new one, never a mix. While the
new directory replaces the old one, the old one briefly lives at
``<dir>.old``; :func:`resolve_checkpoint` falls back to it if a crash hit
exactly there.

Nothing here calls ``pickle``: tensors go through safetensors and everything
else through JSON.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from rnnkit.errors import UserError

__all__ = [
    "MODEL_FILES",
    "TRAINING_FILES",
    "flatten_state",
    "get_rng_state",
    "load_model_weights",
    "model_tensors",
    "load_optimizer_state",
    "optimizer_state_to_files",
    "read_json",
    "resolve_checkpoint",
    "set_rng_state",
    "unflatten_state",
    "write_checkpoint",
]

MODEL_FILES = ("config.json", "model.safetensors")
TRAINING_FILES = ("optimizer.safetensors", "trainer_state.json")


# ---------------------------------------------------------------------------
# Atomic directory writes
# ---------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def model_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` as safetensors can store it: CPU copies, tied tensors once.

    Two cases of shared storage reach here. Tied weights (an output layer
    sharing the embedding) are the same tensor under two names: the first
    name is kept and ``load_model_weights`` fills the other back in. Views
    into one buffer are different tensors: on CUDA the recurrent modules
    (and torch.nn's) move all their weights into one flat buffer for cuDNN,
    and safetensors' own ``save_model`` refuses those ("None is covering the
    entire storage"). Copying every tensor to its own CPU storage handles both.
    """
    out: dict[str, torch.Tensor] = {}
    seen: set[tuple[Any, ...]] = set()
    for name, t in model.state_dict().items():
        key = (t.device, t.data_ptr(), tuple(t.shape), t.stride(), t.dtype)
        if t.numel() and key in seen:
            continue  # the same tensor under another name (tied weights)
        seen.add(key)
        out[name] = t.detach().to("cpu", copy=True).contiguous()
    return out


def write_checkpoint(
    path: str | os.PathLike[str],
    *,
    model: torch.nn.Module,
    config: Mapping[str, Any] | None = None,
    extra_json: Mapping[str, Any] | None = None,
    tensors: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
    json_files: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint directory atomically and return its path.

    Args:
        path: the final directory (replaced if it exists).
        model: its ``state_dict()`` goes to ``model.safetensors``.
        config: written to ``config.json`` (must be JSON-serialisable).
        extra_json: more JSON artefacts, ``{"vocab.json": {...}}``.
        tensors: more safetensors files, ``{"optimizer.safetensors": {name: tensor}}``.
        json_files: more JSON files (same as ``extra_json``; kept apart for clarity
            between user artefacts and trainer bookkeeping).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=final.name + ".tmp-", dir=final.parent))
    try:
        save_file(model_tensors(model), tmp / "model.safetensors", metadata={"format": "pt"})
        files: dict[str, Any] = {"config.json": dict(config or {})}
        files.update(extra_json or {})
        files.update(json_files or {})
        for name, obj in files.items():
            with open(tmp / name, "w", encoding="utf-8") as f:
                json.dump(obj, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
        for name, group in (tensors or {}).items():
            # safetensors refuses non-contiguous or shared tensors: give it clean copies.
            save_file({k: v.detach().contiguous().clone() for k, v in group.items()}, tmp / name)
        for child in tmp.iterdir():
            if child.suffix == ".safetensors":
                with open(child, "rb") as f:
                    os.fsync(f.fileno())
        _fsync_dir(tmp)
        old = final.with_name(final.name + ".old")
        if final.exists():
            if old.exists():
                shutil.rmtree(old)
            os.replace(final, old)
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def resolve_checkpoint(
    path: str | os.PathLike[str], *, required: tuple[str, ...] = MODEL_FILES
) -> Path:
    """Return the checkpoint directory at ``path``, checking that ``required`` files exist.

    ``path`` may be a checkpoint directory or a run directory holding
    ``best/`` or ``checkpoint/`` (``best`` preferred). A directory left at
    ``<path>.old`` by a crash during replacement is used if ``path`` is gone.

    Raises:
        UserError: the directory does not exist or lacks one of the files.
    """
    p = Path(path)
    if not p.exists() and p.with_name(p.name + ".old").is_dir():
        p = p.with_name(p.name + ".old")
    if not p.is_dir():
        raise UserError(
            f"checkpoint directory {p} does not exist; pass the run directory written by "
            "training (or its checkpoint/ or best/ subdirectory)"
        )
    if not (p / "model.safetensors").exists():
        for sub in ("best", "checkpoint"):
            cand = p / sub
            if not cand.exists() and (p / (sub + ".old")).is_dir():
                cand = p / (sub + ".old")
            if (cand / "model.safetensors").exists():
                p = cand
                break
    missing = [name for name in required if not (p / name).is_file()]
    if missing:
        raise UserError(
            f"checkpoint directory {p} is missing {', '.join(missing)}; it must hold "
            f"{', '.join(required)} as written by training - pass a complete checkpoint "
            "directory or train again"
        )
    return p


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, turning a malformed file into a one-line :class:`UserError`."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); the checkpoint is damaged") from exc


def load_model_weights(model: torch.nn.Module, directory: str | os.PathLike[str]) -> None:
    """Load ``model.safetensors`` from ``directory`` into ``model`` (strict)."""
    file = Path(directory) / "model.safetensors"
    state = load_file(str(file))
    own = model.state_dict()
    # Tied parameters are stored once by save_model; fill the aliases back in.
    for name in own:
        if name not in state:
            for other, tensor in own.items():
                if other in state and tensor.data_ptr() == own[name].data_ptr():
                    state[name] = state[other]
                    break
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(
            f"{file} does not match the model built from config.json ({first}); "
            "the checkpoint is damaged or from another version"
        ) from exc


# ---------------------------------------------------------------------------
# Nested states (TBPTT carry, optimizer state) <-> flat tensor dicts + JSON spec
# ---------------------------------------------------------------------------


def flatten_state(obj: Any, prefix: str = "") -> tuple[Any, dict[str, torch.Tensor]]:
    """Split a nest of tuples/lists/dicts of tensors into (JSON spec, flat tensors)."""
    tensors: dict[str, torch.Tensor] = {}

    def walk(o: Any, key: str) -> Any:
        if isinstance(o, torch.Tensor):
            tensors[key] = o
            return {"tensor": key}
        if isinstance(o, (tuple, list)):
            return {
                "seq": [walk(v, f"{key}.{i}") for i, v in enumerate(o)],
                "tuple": isinstance(o, tuple),
            }
        if isinstance(o, dict):
            return {"dict": [[k, walk(v, f"{key}.{k}")] for k, v in o.items()]}
        return {"value": o}

    return walk(obj, prefix or "s"), tensors


def unflatten_state(spec: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""
    if "tensor" in spec:
        return tensors[spec["tensor"]]
    if "seq" in spec:
        items = [unflatten_state(s, tensors) for s in spec["seq"]]
        return tuple(items) if spec["tuple"] else items
    if "dict" in spec:
        return {k: unflatten_state(v, tensors) for k, v in spec["dict"]}
    return spec["value"]


def optimizer_state_to_files(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``optimizer.state_dict()`` as (JSON-able dict, flat tensor dict)."""
    sd = optimizer.state_dict()
    spec, tensors = flatten_state(sd["state"], "state")
    return {"state": spec, "param_groups": sd["param_groups"]}, tensors


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, spec: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]
) -> None:
    """Restore what :func:`optimizer_state_to_files` wrote."""
    state = unflatten_state(spec["state"], tensors)
    # JSON turned the integer parameter ids into strings and tuples into lists.
    state = {int(k): v for k, v in state.items()}
    groups = []
    for g in spec["param_groups"]:
        g = dict(g)
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# ---------------------------------------------------------------------------
# RNG states: Python, NumPy, torch (CPU + CUDA)
# ---------------------------------------------------------------------------


def get_rng_state() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """All global RNG states as (JSON-able dict, tensors)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    json_part = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    return json_part, tensors


def set_rng_state(json_part: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
    """Restore what :func:`get_rng_state` returned."""
    version, internal, gauss = json_part["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = json_part["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
