"""Checkpoints and saved models as directories: atomic, verified, never unpickled.

Longer than 400 lines: writing and verifying a directory are two halves of one
format and stay together.

A checkpoint (or a saved model) is a directory::

    config.json            what the caller passes as ``config`` (the pipeline's config)
    model.safetensors      the model's state dict (shared/tied tensors handled)
    <name>.json            extra JSON artefacts (e.g. ``vocab.json``)
    optimizer.safetensors  optimizer state tensors (training checkpoints only)
    trainer_state.json     step, data position, best metric, RNG states, optimizer
                           param groups and non-tensor optimizer state
    carry.safetensors      the carried TBPTT hidden state, if any
    README.md              a model card, when the writer passes one
    manifest.json          written last: format version, who wrote it (application,
                           estimator, rnnkit version), metrics, and the size and
                           sha256 of every other file

Everything is written into a fresh temporary directory beside the target,
flushed, and moved into place, so a crash at any moment leaves either the
previous directory or the new one: when the target held only what an earlier
save wrote, the whole directory is swapped (the old one briefly lives at
``<dir>.old``; :func:`resolve_checkpoint` falls back to it if a crash hit
exactly there). Saving never deletes what it did not write: a non-empty
directory that is not an rnnkit checkpoint is refused, and files of the user's
beside a saved model stay (the new files are moved in one by one, the
manifest last, so an interrupted save reads as damaged rather than as a mix).

Loading verifies the manifest (:func:`verify_checkpoint`): a truncated or
altered file is a one-line "damaged" error naming it. Directories written
before manifests existed load unverified. Nothing here calls ``pickle``:
tensors go through safetensors and everything else through JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from rnnkit.errors import UserError

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "MODEL_FILES",
    "TRAINING_FILES",
    "load_model_weights",
    "load_tensors",
    "model_tensors",
    "read_json",
    "read_manifest",
    "resolve_checkpoint",
    "verify_checkpoint",
    "write_checkpoint",
]

MODEL_FILES = ("config.json", "model.safetensors")
TRAINING_FILES = ("optimizer.safetensors", "trainer_state.json")
MANIFEST = "manifest.json"
# Version 1: manifest.json with per-file sha256. A reader refuses a newer version.
FORMAT_VERSION = 1
# Seconds to sleep between writing a checkpoint and moving it into place; only the
# kill -9 tests set it, to kill a process in the middle of a checkpoint write.
_TEST_DELAY_ENV = "RNNKIT_TEST_CHECKPOINT_DELAY"


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


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of a checkpoint directory; ``None`` for a directory without one."""
    file = Path(directory) / MANIFEST
    if not file.is_file():
        return None
    manifest = read_json(file)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise UserError(f"damaged: {file} is not an rnnkit manifest; save or train again")
    return manifest


def _tmp_prefix(final: Path) -> str:
    return f"{final.name}.tmp-{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process
        return True
    return True


def _clean_leftovers(final: Path) -> None:
    """Remove ``<name>.tmp-<pid>-*`` directories that a killed writer left beside ``final``."""
    with contextlib.suppress(OSError):
        for entry in final.parent.iterdir():
            rest = (
                entry.name[len(final.name) + 5 :]
                if entry.name.startswith(final.name + ".tmp-")
                else ""
            )
            pid = rest.split("-", 1)[0]
            if entry.is_dir() and pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(entry, ignore_errors=True)


def _owned_names(final: Path, new_names: set[str]) -> set[str] | None:
    """Names in ``final`` that an earlier rnnkit save wrote; ``None`` when ``final`` is
    not an rnnkit checkpoint (it must not be written into)."""
    try:
        manifest = read_manifest(final)
    except UserError:  # a damaged manifest: still our directory
        return set(new_names) | {MANIFEST}
    if manifest is not None:
        return set(manifest["files"]) | {MANIFEST}
    if (final / "model.safetensors").is_file() and (final / "config.json").is_file():
        return set(new_names) | set(MODEL_FILES)  # written before manifests existed
    return None


def write_checkpoint(
    path: str | os.PathLike[str],
    *,
    model: torch.nn.Module,
    config: Mapping[str, Any] | None = None,
    extra_json: Mapping[str, Any] | None = None,
    tensors: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
    json_files: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    card: str | None = None,
) -> Path:
    """Write a checkpoint directory atomically and return its path.

    Args:
        path: the final directory: new, empty, or one an earlier save wrote
            (replaced; files of the user's in it are kept). Anything else is refused.
        model: its ``state_dict()`` goes to ``model.safetensors``.
        config: written to ``config.json`` (must be JSON-serialisable).
        extra_json: more JSON artefacts, ``{"vocab.json": {...}}``.
        tensors: more safetensors files, ``{"optimizer.safetensors": {name: tensor}}``.
        json_files: more JSON files (same as ``extra_json``; kept apart for clarity
            between user artefacts and trainer bookkeeping).
        meta: more manifest fields (``app``, ``estimator``, ``metrics``).
        card: the text of ``README.md`` (a model card); ``None``: no card.

    Raises:
        UserError: ``path`` is a file, or a non-empty directory that is not an
            rnnkit checkpoint (nothing is written then).
    """
    final = Path(os.path.abspath(path))
    if final.exists() and not final.is_dir():
        raise UserError(f"{path} is a file, not a directory; pass a directory path to save into")
    final.parent.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(final)
    tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(final), dir=final.parent))
    try:
        save_file(model_tensors(model), tmp / "model.safetensors", metadata={"format": "pt"})
        files: dict[str, Any] = {"config.json": dict(config or {})}
        files.update(extra_json or {})
        files.update(json_files or {})
        for name, obj in files.items():
            with open(tmp / name, "w", encoding="utf-8") as f:
                json.dump(obj, f, indent=1)
        for name, group in (tensors or {}).items():
            # safetensors refuses non-contiguous or shared tensors: give it clean copies.
            save_file({k: v.detach().contiguous().clone() for k, v in group.items()}, tmp / name)
        if card is not None:
            (tmp / "README.md").write_text(card, encoding="utf-8")
        manifest: dict[str, Any] = {
            "format": "rnnkit",
            "format_version": FORMAT_VERSION,
            "rnnkit_version": _version(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **dict(meta or {}),
            "files": {},
        }
        for child in sorted(tmp.iterdir()):
            with open(child, "rb") as f:
                os.fsync(f.fileno())
            manifest["files"][child.name] = {
                "size": child.stat().st_size,
                "sha256": _sha256(child),
            }
        with open(tmp / MANIFEST, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        if _TEST_DELAY_ENV in os.environ:  # fault-injection tests: widen the write window
            time.sleep(float(os.environ[_TEST_DELAY_ENV]))
        _move_into_place(tmp, final, set(manifest["files"]) | {MANIFEST})
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _move_into_place(tmp: Path, final: Path, new_names: set[str]) -> None:
    if not final.exists():
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        return
    entries = {e.name for e in final.iterdir()}
    is_cwd = final == Path.cwd().resolve() or final == Path(os.path.abspath(os.curdir))
    if not entries and not is_cwd:
        final.rmdir()
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        return
    owned = _owned_names(final, new_names) if entries else set()
    if owned is None:
        raise UserError(
            f"{final} is not empty and is not an rnnkit model or checkpoint directory; "
            "nothing was written - pass a new or empty directory"
        )
    if not (entries - owned) and not is_cwd:
        # Only our own files: swap the whole directory (atomic).
        old = final.with_name(final.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        shutil.rmtree(old, ignore_errors=True)
        return
    # The user's files live here too: move ours in one by one, the manifest last
    # (removed first, so an interrupted save reads as damaged, never as a mix).
    (final / MANIFEST).unlink(missing_ok=True)
    for name in sorted(new_names - {MANIFEST}):
        os.replace(tmp / name, final / name)
    for name in sorted((owned & entries) - new_names):
        (final / name).unlink(missing_ok=True)  # left by the earlier save, not written now
    os.replace(tmp / MANIFEST, final / MANIFEST)
    _fsync_dir(final)
    tmp.rmdir()


def _version() -> str:
    from rnnkit import __version__

    return __version__


def verify_checkpoint(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    """Check every file of ``directory`` against its manifest; return the manifest.

    Returns ``None`` for a directory written before manifests existed (nothing
    to check). Raises :class:`UserError` ("damaged: FILE ...") for a missing,
    truncated or altered file, and for a format newer than this rnnkit reads.
    """
    d = Path(directory)
    manifest = read_manifest(d)
    if manifest is None:
        return None
    version = manifest.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise UserError(
            f"{d} was written by a newer rnnkit ({manifest.get('rnnkit_version', '?')}, format "
            f"{version}; this rnnkit {_version()} reads format {FORMAT_VERSION}); upgrade rnnkit"
        )
    for name, entry in manifest["files"].items():
        file = d / name
        if not file.is_file():
            raise UserError(f"damaged: {file} is missing; save or train again, or restore it")
        size = file.stat().st_size
        if size != entry.get("size") or _sha256(file) != entry.get("sha256"):
            what = "truncated or extended" if size != entry.get("size") else "altered"
            raise UserError(
                f"damaged: {file} ({what} since it was saved; its sha256 differs from "
                f"{MANIFEST}); save or train again, or restore it from a backup"
            )
    return manifest


def resolve_checkpoint(
    path: str | os.PathLike[str], *, required: tuple[str, ...] = MODEL_FILES
) -> Path:
    """Return the checkpoint directory at ``path``, verified, with ``required`` files.

    ``path`` may be a checkpoint directory or a run directory holding
    ``best/`` or ``checkpoint/`` (``best`` preferred). A directory left at
    ``<path>.old`` by a crash during replacement is used if ``path`` is gone.
    The files are checked against the manifest (:func:`verify_checkpoint`).

    Raises:
        UserError: the directory does not exist, lacks one of the files, or is damaged.
    """
    p = Path(path)
    if not p.exists() and p.with_name(p.name + ".old").is_dir():
        p = p.with_name(p.name + ".old")
    if p.exists() and not p.is_dir():
        raise UserError(
            f"{p} is a file; pass the directory written by training or save() "
            "(a run directory, or its best/ or checkpoint/ subdirectory)"
        )
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
            if (cand / "model.safetensors").exists() or (cand / MANIFEST).exists():
                p = cand
                break
    verify_checkpoint(p)
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
        raise UserError(f"damaged: {path} is not valid JSON ({exc}); save or train again") from exc
    except UnicodeDecodeError as exc:
        raise UserError(
            f"damaged: {path} is not UTF-8 text ({exc.reason}); save or train again"
        ) from exc


def load_tensors(file: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """``safetensors.torch.load_file`` with a one-line error for a missing or damaged file."""
    if not Path(file).is_file():
        raise UserError(f"damaged: {file} is missing; save or train again, or restore it")
    try:
        return load_file(str(file))
    except Exception as exc:  # safetensors raises its own SafetensorError (header, size)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"damaged: {file} is not a readable safetensors file ({first})") from exc


def load_model_weights(model: torch.nn.Module, directory: str | os.PathLike[str]) -> None:
    """Load ``model.safetensors`` from ``directory`` into ``model`` (strict)."""
    file = Path(directory) / "model.safetensors"
    state = load_tensors(file)
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
