"""The house config mechanism shared by all pipelines.

A pipeline's config is a tree of ``@dataclass(kw_only=True)`` classes (e.g.
``TextgenConfig(data=..., model=CharLMConfig(...), train=TrainConfig(...))``).
Values come, later ones winning, from

1. the dataclass defaults;
2. a preset: a TOML file ``rnnkit/<app>/presets/<name>.toml`` (or any ``.toml`` path),
   whose tables mirror the tree (``[model] hidden_size = 512``);
3. dotted command-line overrides: ``--model.hidden_size=512 --train.lr=1e-3``.

Unknown keys and wrong types are rejected with a one-line
:class:`~rnnkit.errors.UserError` that names the key and the expected type.
Fields whose metadata has ``derived=True`` (e.g. ``vocab_size``, computed from
the data) cannot be set. Usage::

    parser = sub.add_parser("train")
    add_config_arguments(parser, TextgenConfig)          # --model.hidden_size ... with --help
    ...
    cfg = config_from_args(TextgenConfig, args, app="textgen")

    cfg = load_config(TextgenConfig, preset="shakespeare", overrides=["train.lr=1e-3"])
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from rnnkit.errors import UserError

__all__ = [
    "PACKAGE_ROOT",
    "add_config_arguments",
    "apply_overrides",
    "overrides_from_args",
    "config_fields",
    "config_from_args",
    "from_dict",
    "load_config",
    "preset_path",
    "presets_dir",
    "to_dict",
]

T = TypeVar("T")

# Presets ship inside each application's package (src/rnnkit/<app>/presets/*.toml),
# so they are there for a wheel install as well as a source checkout.
# RNNKIT_CONFIGS=DIR reads DIR/<app>/*.toml instead.
PACKAGE_ROOT = Path(__file__).resolve().parent


def presets_dir(app: str) -> Path:
    """The folder of an application's presets."""
    root = os.environ.get("RNNKIT_CONFIGS")
    return Path(root) / app if root else PACKAGE_ROOT / app / "presets"


_ARG_PREFIX = "cfg:"


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_config(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _optional_inner(tp: Any) -> Any | None:
    """``X`` for ``X | None``, else None."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0]
    return None


def _type_name(tp: Any) -> str:
    inner = _optional_inner(tp)
    if inner is not None:
        return f"{inner.__name__} or none"
    return getattr(tp, "__name__", str(tp))


def config_fields(cls: type, prefix: str = "") -> list[tuple[str, Any, dataclasses.Field]]:
    """Every settable leaf of a config tree as (dotted key, type, field)."""
    out = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        key = prefix + f.name
        if _is_config(tp):
            out.extend(config_fields(tp, key + "."))
        elif not f.metadata.get("derived"):
            out.append((key, tp, f))
    return out


def _check_value(key: str, tp: Any, value: Any) -> Any:
    """Type-check a TOML/JSON value against ``tp``; ints are accepted for floats."""
    inner = _optional_inner(tp)
    if inner is not None:
        return None if value is None else _check_value(key, inner, value)
    ok = (
        isinstance(value, bool)
        if tp is bool
        else (isinstance(value, int) and not isinstance(value, bool))
        if tp is int
        else (isinstance(value, (int, float)) and not isinstance(value, bool))
        if tp is float
        else isinstance(value, tp)
        if isinstance(tp, type)
        else True
    )
    if not ok:
        raise UserError(
            f"config key {key} must be {_type_name(tp)}, got {type(value).__name__} {value!r}"
        )
    return float(value) if tp is float else value


def _parse_string(key: str, tp: Any, text: str) -> Any:
    """Convert a command-line string to ``tp``."""
    inner = _optional_inner(tp)
    if inner is not None:
        return None if text.lower() in ("none", "null", "") else _parse_string(key, inner, text)
    try:
        if tp is bool:
            low = text.lower()
            if low in ("true", "1", "yes", "on"):
                return True
            if low in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if tp is int:
            return int(text)
        if tp is float:
            return float(text)
        if tp is str:
            return text
    except ValueError:
        pass
    else:
        raise UserError(f"config key {key} has unsupported type {_type_name(tp)}")
    raise UserError(f"--{key} must be {_type_name(tp)}, got {text!r}")


def _field_default(f: dataclasses.Field) -> Any:
    """A field's default value (calling its factory), or None when it has none."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def from_dict(
    cls: type[T], data: Mapping[str, Any], *, prefix: str = "", base: T | None = None
) -> T:
    """Build ``cls`` from a nested dict, rejecting unknown keys and wrong types.

    Keys missing from ``data`` keep the value in ``base`` when given, so a
    preset's ``[train]`` table changes only the keys it names and keeps the
    pipeline's own defaults (its field's ``default_factory``) for the rest,
    not the bare defaults of the section's class.
    """
    if not isinstance(data, Mapping):
        raise UserError(f"config section {prefix.rstrip('.') or '<root>'} must be a table")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        key = prefix + name
        if name not in fields:
            raise UserError(
                f"unknown config key {key}; valid keys here: {', '.join(sorted(fields))}"
            )
        tp = hints[name]
        if _is_config(tp):
            section_base = getattr(base, name) if base is not None else None
            if section_base is None:
                section_base = _field_default(fields[name])
            kwargs[name] = from_dict(tp, value, prefix=key + ".", base=section_base)
        else:
            kwargs[name] = _check_value(key, tp, value)
    return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config tree as a JSON/TOML-able nested dict."""
    return dataclasses.asdict(cfg)


def _set(cfg: Any, key: str, value: Any) -> Any:
    """A copy of ``cfg`` with dotted ``key`` set to ``value``."""
    head, _, rest = key.partition(".")
    if rest:
        return dataclasses.replace(cfg, **{head: _set(getattr(cfg, head), rest, value)})
    return dataclasses.replace(cfg, **{head: value})


def apply_overrides(cfg: T, overrides: Iterable[str] | Mapping[str, Any]) -> T:
    """Apply ``["model.hidden_size=512", ...]`` (strings) or ``{"model.hidden_size": 512}``."""
    leaves = {key: tp for key, tp, _ in config_fields(type(cfg))}
    items = (
        list(overrides.items())
        if isinstance(overrides, Mapping)
        else [tuple(o.split("=", 1)) if "=" in o else (o, None) for o in overrides]
    )
    for key, value in items:
        key = key.lstrip("-")
        if key not in leaves:
            raise UserError(f"unknown config key {key}; see --help for the valid keys")
        if value is None:
            raise UserError(f"config override {key} needs a value: {key}=VALUE")
        tp = leaves[key]
        value = _parse_string(key, tp, value) if isinstance(value, str) else value
        cfg = _set(cfg, key, _check_value(key, tp, value))
    return cfg


def preset_path(app: str, preset: str) -> Path:
    """``rnnkit/<app>/presets/<preset>.toml``, or ``preset`` itself if it is a .toml path."""
    p = Path(preset)
    if p.suffix == ".toml":
        if not p.is_file():
            raise UserError(f"preset file {p} not found")
        return p
    path = presets_dir(app) / f"{preset}.toml"
    if not path.is_file():
        known = sorted(q.stem for q in presets_dir(app).glob("*.toml"))
        raise UserError(
            f"unknown preset {preset!r} for {app}; choose one of {', '.join(known) or '(none)'} "
            "or pass a .toml file"
        )
    return path


def load_config(
    cls: type[T],
    *,
    app: str | None = None,
    preset: str | None = None,
    overrides: Iterable[str] | Mapping[str, Any] = (),
) -> T:
    """Defaults <- preset TOML <- overrides."""
    data: dict[str, Any] = {}
    if preset:
        path = preset_path(app or "", preset)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"preset {path} is not valid TOML ({exc})") from exc
    cfg = from_dict(cls, data)
    return apply_overrides(cfg, overrides)


def add_config_arguments(
    parser: argparse.ArgumentParser, cls: type, *, exclude: Iterable[str] = ()
) -> None:
    """Add ``--<dotted.key> VALUE`` for every leaf of ``cls`` (shown in ``--help``).

    ``exclude``: dotted keys the pipeline sets itself (not settable from the command line).
    """
    group = parser.add_argument_group(
        "config overrides", "Override any config value: --section.key=VALUE (after --preset)."
    )
    default = cls()
    skip = set(exclude)
    for key, tp, _f in config_fields(cls):
        if key in skip:
            continue
        value = default
        for part in key.split("."):
            value = getattr(value, part)
        group.add_argument(
            f"--{key}",
            dest=_ARG_PREFIX + key,
            metavar=_type_name(tp).upper().replace(" ", "_"),
            default=argparse.SUPPRESS,
            help=f"default: {value!r}",
        )


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--section.key=VALUE`` options that argparse collected, as dotted keys."""
    return {
        name[len(_ARG_PREFIX) :]: value
        for name, value in vars(args).items()
        if name.startswith(_ARG_PREFIX)
    }


def config_from_args(
    cls: type[T], args: argparse.Namespace, *, app: str, preset: str | None = None
) -> T:
    """The config from ``--preset`` and the dotted overrides parsed by argparse."""
    return load_config(cls, app=app, preset=preset, overrides=overrides_from_args(args))
