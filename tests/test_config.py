"""The house config mechanism: presets, dotted overrides, strict keys and types."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rnnkit import cli_common
from rnnkit import config as C
from rnnkit.errors import UserError


@dataclass(kw_only=True)
class Inner:
    size: int = 4
    rate: float = 0.5
    name: str = "lstm"
    on: bool = False
    limit: int | None = None
    derived: int = field(default=0, metadata={"derived": True})


@dataclass(kw_only=True)
class Outer:
    inner: Inner = field(default_factory=Inner)
    out: str = "runs/x"


def test_overrides_parse_each_type():
    cfg = C.apply_overrides(
        Outer(),
        [
            "inner.size=8",
            "inner.rate=1e-3",
            "inner.name=gru",
            "inner.on=true",
            "inner.limit=3",
            "out=runs/y",
        ],
    )
    assert cfg == Outer(inner=Inner(size=8, rate=0.001, name="gru", on=True, limit=3), out="runs/y")
    assert C.apply_overrides(cfg, ["inner.limit=none"]).inner.limit is None
    assert C.apply_overrides(cfg, {"inner.rate": 2}).inner.rate == 2.0  # int ok for float


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("inner.sise=3", "unknown config key inner.sise"),
        ("inner.size=3.5", "--inner.size must be int, got '3.5'"),
        ("inner.on=maybe", "--inner.on must be bool, got 'maybe'"),
        ("inner.derived=3", "unknown config key inner.derived"),
        ("inner.size", "needs a value"),
    ],
)
def test_bad_overrides_give_one_line_errors(override, message):
    with pytest.raises(UserError) as info:
        C.apply_overrides(Outer(), [override])
    assert message in str(info.value) and "\n" not in str(info.value)


def test_from_dict_rejects_unknown_keys_and_wrong_types():
    assert C.from_dict(Outer, {"inner": {"size": 2}}).inner.size == 2
    with pytest.raises(UserError, match="unknown config key inner.colour; valid keys here"):
        C.from_dict(Outer, {"inner": {"colour": 1}})
    with pytest.raises(UserError, match="config key inner.size must be int, got str '2'"):
        C.from_dict(Outer, {"inner": {"size": "2"}})
    with pytest.raises(UserError, match="must be int, got bool"):
        C.from_dict(Outer, {"inner": {"size": True}})
    with pytest.raises(UserError, match="section inner must be a table"):
        C.from_dict(Outer, {"inner": 3})


def test_preset_file_then_overrides(tmp_path):
    preset = tmp_path / "p.toml"
    preset.write_text('out = "a"\n[inner]\nsize = 16\nrate = 1\n')
    cfg = C.load_config(Outer, preset=str(preset), overrides=["inner.size=32"])
    assert cfg.out == "a" and cfg.inner.size == 32 and cfg.inner.rate == 1.0
    bad = tmp_path / "bad.toml"
    bad.write_text("[inner\n")
    with pytest.raises(UserError, match="not valid TOML"):
        C.load_config(Outer, preset=str(bad))
    with pytest.raises(UserError, match="unknown preset 'nope' for textgen; choose one of"):
        C.load_config(Outer, app="textgen", preset="nope")


def test_shipped_textgen_presets_load():
    import rnnkit.textgen
    from rnnkit.textgen import TextgenConfig

    shipped = sorted(p.stem for p in Path(rnnkit.textgen.__file__).parent.glob("presets/*.toml"))
    assert {"tiny", "shakespeare", "shakespeare_15min"} <= set(shipped)
    for name in shipped:
        cfg = C.load_config(TextgenConfig, app="textgen", preset=name)
        assert cfg.model.hidden_size > 0 and cfg.train.checkpoint_interval > 0
    budget = C.load_config(TextgenConfig, app="textgen", preset="shakespeare_15min").train
    assert budget.max_seconds == 900 and budget.max_steps > 10 * 1184  # the budget decides
    assert C.load_config(TextgenConfig, app="textgen", preset="shakespeare").model.num_layers == 2


def test_argparse_integration_and_strict_parser(capsys):
    parser = cli_common.StrictArgumentParser(prog="prog")
    C.add_config_arguments(parser, Outer, exclude=("out",))
    args = parser.parse_args(["--inner.size=7", "--inner.on", "yes"])
    assert C.config_from_args(Outer, args, app="x") == Outer(inner=Inner(size=7, on=True))
    assert "default: 4" in parser.format_help()
    for argv in (["--inner.sizes=3"], ["--out=z"]):
        with pytest.raises(SystemExit) as info:
            parser.parse_args(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: unknown option") and len(err.strip().splitlines()) == 1
    assert isinstance(parser, argparse.ArgumentParser)


def test_preset_section_keeps_the_pipelines_own_defaults():
    """A [inner] table changes only the keys it names; the rest keep the default_factory's
    values (the pipeline's defaults), not the bare defaults of the section's class."""

    @dataclass(kw_only=True)
    class Pipeline:
        inner: Inner = field(default_factory=lambda: Inner(size=32, name="gru"))

    cfg = C.from_dict(Pipeline, {"inner": {"rate": 0.1}})
    assert (cfg.inner.size, cfg.inner.name, cfg.inner.rate) == (32, "gru", 0.1)
    assert C.from_dict(Pipeline, {}).inner.size == 32


def test_train_verb_and_resume_use_the_saved_config(tmp_path):
    import json

    sub = argparse.ArgumentParser(prog="rnnkit").add_subparsers()
    verbs = cli_common.add_app_parser(sub, "x", help="an app", description="An app.")
    t = cli_common.add_train_parser(
        verbs, "x", Outer, help="train", description="Train.", data_help="data", resume_help="r"
    )
    helptext = t.format_help()
    for option in ("--data", "--preset", "--run-dir", "--resume", "--inner.size"):
        assert option in helptext
    # A fresh run: defaults <- overrides.
    args = t.parse_args(["--inner.size=7"])
    assert cli_common.train_config(Outer, args, app="x", default_run_dir="runs/x").inner.size == 7
    # --resume: the run's saved config, then this command's overrides; no preset read.
    ck = tmp_path / "checkpoint"
    ck.mkdir()
    (ck / "config.json").write_text(json.dumps(C.to_dict(Outer(inner=Inner(size=9, rate=0.1)))))
    args = t.parse_args(["--run-dir", str(tmp_path), "--resume", "--inner.rate=0.2"])
    cfg = cli_common.train_config(Outer, args, app="x", default_run_dir="runs/x")
    assert (cfg.inner.size, cfg.inner.rate) == (9, 0.2)
    args = t.parse_args(["--run-dir", str(tmp_path / "none"), "--resume"])
    with pytest.raises(UserError, match="holds no checkpoint/ to resume from; drop --resume"):
        cli_common.train_config(Outer, args, app="x", default_run_dir="runs/x")
