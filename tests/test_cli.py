"""The top-level command line: help, version, one-line errors, and one grammar for all apps."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from rnnkit import __version__
from rnnkit.cli import COMMANDS, build_parser, main

APPS = ("forecast", "sentiment", "textgen", "translate", "speech")
# Reading verbs that do not read a trained model (they train and score on the spot).
NO_CHECKPOINT = {("forecast", "backtest")}
# Names that mean the same as a shared option; the shared name must be used instead.
SYNONYMS = {
    "--out": "--run-dir",
    "--output-dir": "--run-dir",
    "--model-dir": "--checkpoint",
    "--ckpt": "--checkpoint",
    "--model": "--checkpoint",
    "--num-threads": "--threads",
    "--n-threads": "--threads",
    "--gpu": "--device",
    "--cuda": "--device",
    "--json-out": "--json",
    "--random-seed": "--seed",
}


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert len(capsys.readouterr().out.splitlines()) > 3


def test_python_dash_m_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rnnkit", "--version"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"rnnkit {__version__}"


def test_help_and_version_import_no_application() -> None:
    """``rnnkit --help`` must answer at once: no application (and no torch) is imported."""
    code = (
        "import sys; from rnnkit.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('torch', 'matplotlib', 'pandas')"
        " or m.split('.')[:2] in (['rnnkit', a] for a in "
        "('forecast', 'sentiment', 'textgen', 'translate', 'speech', 'experiments'))]\n"
        "print(sorted(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings}


def _verbs() -> list[tuple[str, str, argparse.ArgumentParser]]:
    apps = _subparsers(build_parser())
    out = []
    for app in APPS:
        for verb, p in _subparsers(apps[app]).items():
            out.append((app, verb, p))
    return out


def test_every_application_has_train_eval_and_predict() -> None:
    apps = _subparsers(build_parser())
    for app in APPS:
        verbs = set(_subparsers(apps[app]))
        assert {"train", "eval", "predict"} <= verbs, f"{app}: {sorted(verbs)}"


@pytest.mark.parametrize("app,verb,parser", _verbs(), ids=lambda v: v if isinstance(v, str) else "")
def test_one_grammar_for_every_verb(app: str, verb: str, parser: argparse.ArgumentParser) -> None:
    opts = _options(parser)
    clash = {o: SYNONYMS[o] for o in opts if o in SYNONYMS}
    assert not clash, f"rnnkit {app} {verb} uses {clash}: use the shared names"
    assert {"--device", "--threads"} <= opts, f"rnnkit {app} {verb}: {sorted(opts)}"
    if verb == "train":
        need = {"--data", "--preset", "--run-dir", "--resume", "--overwrite", "--seed", "--json"}
        assert need <= opts, f"rnnkit {app} train lacks {sorted(need - opts)}"
    elif (app, verb) not in NO_CHECKPOINT:
        assert "--checkpoint" in opts, f"rnnkit {app} {verb} reads a model without --checkpoint"
    if verb in ("eval", "predict"):
        assert "--json" in opts, f"rnnkit {app} {verb} lacks --json"


def test_unknown_option_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["textgen", "train", "--model.hiden_size=5"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown option --model.hiden_size")
    assert "did you mean --model.hidden_size" in err and len(err.splitlines()) == 1


def test_resume_without_a_checkpoint_says_to_drop_resume(tmp_path, capsys) -> None:
    code = main(["textgen", "train", "--resume", "--run-dir", str(tmp_path / "none")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "holds no checkpoint/ to resume from; drop --resume" in err, err
