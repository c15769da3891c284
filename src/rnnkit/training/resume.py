"""Resuming with a config that does not fit the run: a one-line error that says so.

A resumed run continues the weights in ``RUN_DIR/checkpoint``; a config whose
model shape or data differ from the run's would not fit them (``--resume
--model.hidden_size=512``), and the weights would then be reported as a
damaged checkpoint, which they are not. The applications call these checks
before anything is loaded (:func:`check_resume_config`: the values the user
set) and after the data is read (:func:`check_resume_sizes`: vocabularies and
other sizes taken from the data).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rnnkit import config as config_lib
from rnnkit.errors import UserError
from rnnkit.training.checkpoint import read_json, resolve_checkpoint

__all__ = ["check_resume_config", "check_resume_sizes", "config_conflicts", "saved_run_config"]

_NEW_RUN = "start a new run with --overwrite (Python: overwrite=True) or another --run-dir"


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + str(k)] = v
    return out


def saved_run_config(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The config a run saved with its checkpoint (``RUN_DIR/checkpoint/config.json``)."""
    d = resolve_checkpoint(Path(run_dir) / "checkpoint", required=("config.json",))
    saved = read_json(d / "config.json")
    return saved if isinstance(saved, dict) else {}


def config_conflicts(cfg: Any, saved: Mapping[str, Any], keys: Iterable[str]) -> list[str]:
    """``key=now (run: saved)`` for every settable leaf of ``cfg`` under ``keys``
    (dotted keys, or prefixes ending in ``.``) whose value differs from ``saved``."""
    wanted = tuple(keys)
    flat = _flat(saved)
    out = []
    for key, _, _ in config_lib.config_fields(type(cfg)):
        if key not in flat or not any(key == k or key.startswith(k) for k in wanted):
            continue
        value: Any = cfg
        for part in key.split("."):
            value = getattr(value, part)
        if value != flat[key] and not _same_files(value, flat[key]):
            out.append(f"{key}={value!r} (the run's: {flat[key]!r})")
    return out


def _same_files(a: Any, b: Any) -> bool:
    """Whether two data sources name the same existing files (``a.tsv`` and ``./a.tsv``;
    ``SRC,TGT`` pairs part by part)."""
    if not (isinstance(a, str) and isinstance(b, str)):
        return False
    parts_a, parts_b = a.split(","), b.split(",")
    if len(parts_a) != len(parts_b):
        return False
    try:
        return all(
            os.path.samefile(os.path.expanduser(x.strip()), os.path.expanduser(y.strip()))
            for x, y in zip(parts_a, parts_b, strict=True)
        )
    except (OSError, ValueError):
        return False


def check_resume_config(
    run_dir: str | os.PathLike[str],
    cfg: Any,
    keys: Iterable[str],
    saved: Mapping[str, Any] | None = None,
) -> None:
    """Refuse to resume ``run_dir`` with a ``cfg`` that differs from the run's own config
    in ``keys`` (the model's shape, what the vocabulary is fitted on)."""
    saved = saved_run_config(run_dir) if saved is None else saved
    conflicts = config_conflicts(cfg, saved, keys)
    if conflicts:
        more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        raise UserError(
            f"cannot resume {run_dir} with {conflicts[0]}{more}: the run's weights were trained "
            f"with its own value; drop the change to resume, or {_NEW_RUN}"
        )


def check_resume_sizes(run_dir: str | os.PathLike[str], sizes: Mapping[str, int]) -> None:
    """Refuse to resume ``run_dir`` when sizes taken from the data (``{"model.vocab_size":
    65}``) differ from the run's: the data changed since the run started."""
    flat = _flat(saved_run_config(run_dir))
    for key, value in sizes.items():
        if key in flat and flat[key] != value:
            raise UserError(
                f"cannot resume {run_dir}: the data gives {key}={value}, the run was trained "
                f"with {flat[key]}, so the data changed since the run started; resume with the "
                f"same data, or {_NEW_RUN}"
            )
