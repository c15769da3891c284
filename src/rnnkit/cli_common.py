"""Command-line pieces shared by every application: one grammar for all of them.

Every application's ``cli.py`` builds its verbs from these, so a concept has
one name everywhere (a test walks every parser to keep it so):

- ``rnnkit APP train``: ``--data``, ``--preset``, ``--run-dir`` (where a run is
  written), ``--resume``, ``--overwrite``, ``--device``, ``--threads``,
  ``--seed``, ``--json PATH`` and ``--section.key=VALUE`` overrides;
- ``rnnkit APP eval|predict|<verb>``: ``--checkpoint`` (a run directory or a
  saved model folder to read), ``--device``, ``--threads``, ``--json PATH``.

Unknown options are reported on one line (:class:`StrictArgumentParser`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from rnnkit import config as config_lib
from rnnkit.errors import UserError

__all__ = [
    "StrictArgumentParser",
    "add_app_parser",
    "add_checkpoint_argument",
    "add_json_argument",
    "add_runtime_arguments",
    "add_train_parser",
    "add_verb_parser",
    "runtime_kwargs",
    "train_config",
    "write_json",
]

T = TypeVar("T")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _threads(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be a positive integer or auto, got {text!r}"
        ) from None


def add_runtime_arguments(p: argparse.ArgumentParser, *, seed: bool = True) -> None:
    """``--device``, ``--threads`` (and ``--seed``): the runtime options of every verb."""
    g = p.add_argument_group("runtime")
    g.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:N or mps (default: the config's, cpu)"
    )
    g.add_argument(
        "--threads",
        type=_threads,
        default=None,
        help="torch CPU threads, or auto (the default): torch's count on a quiet machine, "
        "the cores other processes leave free on a busy one (rnnkit.runtime)",
    )
    if seed:
        g.add_argument("--seed", type=int, default=None, help="random seed (default: the config's)")


def runtime_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The estimator keyword arguments of :func:`add_runtime_arguments`' options."""
    return {
        name: getattr(args, name)
        for name in ("device", "threads", "seed")
        if getattr(args, name, None) is not None
    }


def add_checkpoint_argument(p: argparse.ArgumentParser) -> None:
    """``--checkpoint DIR``: what every reading verb loads."""
    p.add_argument(
        "--checkpoint",
        required=True,
        metavar="DIR",
        help="a run directory (uses best/, else checkpoint/) or a folder written by save()",
    )


def add_json_argument(p: argparse.ArgumentParser, *, what: str = "the results") -> None:
    """``--json PATH``: machine-readable output of a verb ('-' for stdout)."""
    p.add_argument(
        "--json", default=None, metavar="PATH", help=f"also write {what} as JSON here ('-': stdout)"
    )


def _plain(obj: Any) -> Any:
    """JSON-safe: NaN/inf become null (strict JSON has no NaN), NumPy scalars become numbers."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if hasattr(obj, "tolist"):
        return _plain(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | os.PathLike[str] | None, obj: Any) -> None:
    """Write ``obj`` as strict JSON to ``path`` ('-': stdout); nothing when ``path`` is None.

    The file is written whole or not at all (a temporary file renamed into place).
    """
    if path is None:
        return
    text = json.dumps(_plain(obj), indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    if str(path) == "-":
        sys.stdout.write(text)
        return
    target = Path(path)
    if target.is_dir():
        raise UserError(f"--json {path} is a directory; pass a file path such as metrics.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)
    print(f"json: {target}", file=sys.stderr)


def add_verb_parser(
    verbs: Any,
    name: str,
    *,
    help: str,
    description: str,
    aliases: Iterable[str] = (),
    json_what: str = "the results",
) -> argparse.ArgumentParser:
    """A reading verb (``eval``, ``predict``, ...): --checkpoint, runtime options, --json."""
    p = verbs.add_parser(
        name,
        aliases=list(aliases),
        help=help,
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,
    )
    add_checkpoint_argument(p)
    add_runtime_arguments(p, seed=False)
    add_json_argument(p, what=json_what)
    return p


class StrictArgumentParser(argparse.ArgumentParser):
    """An argparse parser that reports unknown options on one line (``error: ...``, exit 2).

    Use it for verbs with config overrides: ``sub.add_subparsers(parser_class=
    StrictArgumentParser)``. A mistyped ``--model.hiden_size=5`` then gets
    ``error: unknown option --model.hiden_size for 'rnnkit textgen train'; did you
    mean --model.hidden_size? (see --help)`` instead of a usage dump.
    """

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            import difflib

            bad = extras[0].split("=", 1)[0]
            known = [o for a in self._actions for o in a.option_strings]
            close = difflib.get_close_matches(bad, known, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            self.exit(2, f"error: unknown option {bad} for '{self.prog}'; {hint}(see --help)\n")
        return namespace, extras

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def add_app_parser(subparsers: Any, name: str, *, help: str, description: str) -> Any:
    """``rnnkit NAME <verb> ...``: register an application; return its verb subparsers.

    A bare ``rnnkit NAME`` prints that parser's help (``_parser``), and the verbs
    report unknown options on one line (:class:`StrictArgumentParser`).
    """
    p = subparsers.add_parser(name, help=help, description=description)
    p.set_defaults(_parser=p)
    return p.add_subparsers(dest="verb", metavar="<verb>", parser_class=StrictArgumentParser)


# Trainer fields every application sets itself: not command-line options.
_TRAIN_FIXED = ("train.carry_state", "train.state_batch_dim", "run_dir")


def add_train_parser(
    verbs: Any,
    app: str,
    cls: type,
    *,
    help: str,
    description: str,
    data_help: str,
    resume_help: str,
    exclude: Iterable[str] = (),
) -> argparse.ArgumentParser:
    """The ``train`` verb every application shares: ``--data``, ``--preset``,
    ``--run-dir``, ``--resume`` and ``--section.key=VALUE`` for every field of ``cls``
    (but ``exclude`` and the trainer fields the pipeline sets itself)."""
    t = verbs.add_parser(
        "train",
        help=help,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,
        description=description,
    )
    t.add_argument("--data", default=None, help=f"{data_help} (shortcut for --data.source)")
    t.add_argument(
        "--preset",
        default=None,
        help=f"preset name (rnnkit/{app}/presets/NAME.toml) or a .toml file",
    )
    t.add_argument(
        "--run-dir", default=None, help=f"where checkpoints and metrics go (default runs/{app})"
    )
    t.add_argument("--resume", action="store_true", help=resume_help)
    t.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a run already in --run-dir (without it such a run is never overwritten)",
    )
    add_runtime_arguments(t)
    add_json_argument(t, what="the validation metrics of the kept model")
    config_lib.add_config_arguments(t, cls, exclude=(*_TRAIN_FIXED, *exclude))
    return t


def train_config(cls: type[T], args: argparse.Namespace, *, app: str, default_run_dir: str) -> T:
    """The config of ``rnnkit APP train``, the same way in every application.

    A fresh run: defaults <- ``--preset`` <- ``--section.key=VALUE``. With
    ``--resume``: the run's own saved config (``RUN_DIR/checkpoint/config.json``)
    <- this command's ``--section.key=VALUE`` (e.g. a larger ``--train.max_steps``
    to extend the run); ``--preset`` is not read again.
    """
    if not getattr(args, "resume", False):
        return config_lib.config_from_args(cls, args, app=app, preset=args.preset)
    from rnnkit.training.checkpoint import read_json, resolve_checkpoint
    from rnnkit.training.rundir import check_run_dir

    run_dir = Path(args.run_dir or default_run_dir)
    check_run_dir(run_dir, resume=True, overwrite=getattr(args, "overwrite", False))
    saved = resolve_checkpoint(run_dir / "checkpoint", required=("config.json",))
    try:
        cfg = config_lib.from_dict(cls, read_json(saved / "config.json"))
    except UserError as exc:
        raise UserError(f"{saved / 'config.json'} is not a {app} config ({exc})") from exc
    return config_lib.apply_overrides(cfg, config_lib.overrides_from_args(args))
