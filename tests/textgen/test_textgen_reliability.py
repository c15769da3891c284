"""Faults and bad input in the text-generation application (issue 13), each for real.

Presets write periodic checkpoints; the whole config is checked before the
text is read; byte-order marks, directories and unreadable files;
``--temperature nan``; hints that name real options; resume with a config
(or a text) that does not fit the run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from rnnkit import TextGenerator
from rnnkit.cli import build_parser
from rnnkit.cli import main as cli_main
from rnnkit.errors import UserError
from rnnkit.textgen import load_config
from rnnkit.textgen.data import load_text
from testkit import without_file_permissions

TEXT = "the quick brown fox jumps over the lazy dog. " * 80
QUICK = ["--preset", "tiny", "--train.max_steps=4", "--train.eval_interval=4",
         "--model.hidden_size=16", "--model.embed_dim=8", "--data.batch_size=4",
         "--data.seq_len=16", "--train.progress=none", "--train.plot=false"]  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = cli_main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four steps of a tiny model (the run other tests read)."""
    tmp = tmp_path_factory.mktemp("textgen-reliability")
    corpus = tmp / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    run = tmp / "run"
    assert cli_main(["textgen", "train", "--data", str(corpus), "--run-dir", str(run), *QUICK]) == 0
    return run


@pytest.mark.parametrize("preset", [None, "shakespeare", "shakespeare_15min", "tiny"])
def test_every_preset_writes_periodic_checkpoints(preset: str | None) -> None:
    assert load_config(preset=preset).train.checkpoint_interval > 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model.cell": "transformer"}, "model.cell must be one of"),
        ({"data.mode": "chunks"}, "data.mode must be tbptt or random"),
        ({"data.seq_len": 0}, "data.seq_len must be >= 1"),
        ({"data.val_fraction": 1.5}, "data.val_fraction must be between 0 and 1"),
        ({"model.dropout": float("nan")}, "model.dropout must be a finite number"),
        ({"train.max_steps": 0}, "train.max_steps must be > 0"),
    ],
)
def test_the_whole_config_is_checked_before_the_text_is_read(
    tmp_path: Path, overrides: dict, message: str
) -> None:
    cfg = load_config(overrides={"data.source": str(tmp_path / "missing.txt"), **overrides})
    with pytest.raises(UserError, match=message):  # the file does not exist: config first
        TextGenerator(cfg, verbose=False).fit(run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_byte_order_mark_is_not_part_of_the_text(tmp_path: Path) -> None:
    path = tmp_path / "notepad.txt"
    path.write_bytes("\ufeffhello".encode())
    assert load_text(path) == "hello"  # was '\ufeffhello': a character the model would learn


def test_a_directory_and_an_unreadable_file_are_named_as_such(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(["textgen", "eval", "--checkpoint", str(run), "--data", str(tmp_path)],
                        capsys)  # fmt: skip
    assert code == 2 and "is a directory, not a file" in err  # said "not found"
    locked = tmp_path / "locked.txt"
    locked.write_text("hello", encoding="utf-8")
    locked.chmod(0)
    code_ = "from rnnkit.textgen.data import load_text; load_text(sys.argv[1])"
    err = without_file_permissions(code_, locked)
    assert "UserError: cannot read text file" in err and "permission denied" in err, err


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "1e-300"])
def test_a_temperature_out_of_range_is_one_line(
    run: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["textgen", "sample", "--checkpoint", str(run), "--prompt", "the", "--length", "5",
            "--temperature", value]  # fmt: skip
    code, _, err = _cli(argv, capsys)  # nan ended in a RuntimeError traceback from multinomial
    assert code == 2 and err.startswith("error: temperature must be"), err
    assert len(err.strip().splitlines()) == 1
    gen = TextGenerator.load(run, verbose=False)
    with pytest.raises(UserError, match="temperature must be"):
        gen.generate("the", 5, temperature=float(value))
    with pytest.raises(UserError, match="top_k must be an integer"):
        gen.generate("the", 5, top_k=2.5)  # type: ignore[arg-type]


def _options(app: str, verb: str) -> set[str]:
    parser = build_parser([app, verb])
    for action in parser._actions:
        if action.choices and app in action.choices:
            for a in action.choices[app]._actions:
                if a.choices and verb in a.choices:
                    return {o for x in a.choices[verb]._actions for o in x.option_strings}
    raise AssertionError(f"no parser for {app} {verb}")


def test_every_hint_names_an_option_of_its_command(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    cases = [
        ["train", "--data", str(tmp_path / "nope.txt"), "--run-dir", str(tmp_path / "r")],
        ["train", "--data", str(empty), "--run-dir", str(tmp_path / "r")],
        ["train", "--data", str(empty), "--run-dir", str(run)],
        ["train", "--run-dir", str(tmp_path / "r"), "--resume"],
        ["eval", "--checkpoint", str(run), "--data", str(empty)],
        ["sample", "--checkpoint", str(run), "--prompt", ""],
        ["sample", "--checkpoint", str(run), "--prompt", "ZZZ"],
        ["predict", "--checkpoint", str(run), "--length", "-1"],
    ]
    for argv in cases:
        code, _, err = _cli(["textgen", *argv], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, (argv, err)
        flags = set(re.findall(r"(?<![\w-])--[a-z][\w.-]*\w", err))
        unknown = flags - _options("textgen", argv[0])
        assert not unknown, f"rnnkit textgen {argv[0]} has no {unknown}: {err}"


def test_resume_with_a_config_that_does_not_fit_the_run_says_so(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["textgen", "train", "--run-dir", str(run), "--resume", "--model.hidden_size=64",
            "--train.max_steps=8"]  # fmt: skip
    code, _, err = _cli(argv, capsys)  # said "the checkpoint is damaged or from another version"
    assert code == 2 and "damaged" not in err
    assert "cannot resume" in err and "model.hidden_size=64 (the run's: 16)" in err
    assert "--overwrite" in err
    gen = TextGenerator(config=TextGenerator.load(run).config, verbose=False)
    with pytest.raises(UserError, match="the data changed since the run started"):
        gen.fit("abcdefghij" * 100, run_dir=run, resume=True)  # 10 characters, not 28
