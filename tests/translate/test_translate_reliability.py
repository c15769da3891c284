"""Faults and bad input in the translation application (issue 13), each for real.

Presets write periodic checkpoints; ``train.max_steps`` caps ``epochs``; the
whole config is checked before any data is read; byte-order marks, truncated
gzip files, directories and unreadable files; an unbounded ``--max-len-ratio``;
hints that name real options; resume with a config that does not fit the run.
(Blank ``predict --input`` lines: tests/translate/test_translate.py::test_cli_predict_errors.)
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest
import torch
from digit_corpus import digit_corpus

from rnnkit import Translator
from rnnkit.cli import build_parser
from rnnkit.cli import main as cli_main
from rnnkit.errors import UserError
from rnnkit.translate import load_config
from rnnkit.translate.data import load_pairs, read_lines
from testkit import without_file_permissions

QUICK = ["--train.progress=none", "--train.plot=false", "--model.embed_dim=16",
         "--model.hidden_size=16"]  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


_corpus = digit_corpus


def _files(tmp: Path, pairs: list[tuple[str, str]]) -> str:
    src, tgt = tmp / "train.en", tmp / "train.de"
    src.write_text("".join(p[0] + "\n" for p in pairs), encoding="utf-8")
    tgt.write_text("".join(p[1] + "\n" for p in pairs), encoding="utf-8")
    return f"{src},{tgt}"


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = cli_main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few steps of the tiny preset on a small corpus (the run other tests read)."""
    tmp = tmp_path_factory.mktemp("translate-reliability")
    data = _files(tmp, _corpus(120, 0))
    run = tmp / "run"
    argv = ["translate", "train", "--preset", "tiny", "--data", data, "--run-dir", str(run),
            "--train.max_steps=4", "--train.eval_interval=4", *QUICK]  # fmt: skip
    assert cli_main(argv) == 0
    return run


# --------------------------------------------------------------------------- run length


@pytest.mark.parametrize("preset", [None, "multi30k", "tiny"])
def test_every_preset_writes_periodic_checkpoints(preset: str | None) -> None:
    assert load_config(preset=preset).train.checkpoint_interval > 0


def test_max_steps_caps_epochs(capsys: pytest.CaptureFixture[str]) -> None:
    tr = Translator(preset="tiny", epochs=3, max_steps=4, progress="none", plot=False)
    tr.fit(_corpus(120, 0))  # 114 training pairs in batches of 32: 4 batches an epoch
    assert tr.result_.step == 4  # was 3 epochs = 12 steps: max_steps was silently ignored
    assert "4 steps (train.max_steps, before epochs=3 ends)" in capsys.readouterr().err
    assert load_config(preset="multi30k").train.max_steps == 0  # no cap: its epochs decide


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epochs": 0, "train.max_steps": 0}, "the run has no length"),
        ({"model.cell": "rnn"}, "model.cell must be gru or lstm"),
        ({"model.tie_embeddings": True, "model.embed_dim": 8}, "tie_embeddings needs"),
        ({"data.vocab_size": 100}, r"data.vocab_size must be >= 260"),
        ({"decode.max_len_ratio": 1e9}, r"max_len_ratio must be in \(0, 10\]"),
        ({"decode.alpha": float("nan")}, "decode.alpha must be a finite number"),
        ({"train.lr": float("inf")}, "train.lr must be a finite number"),
        ({"train.eval_mode": "best"}, "train.eval_mode must be min or max"),
    ],
)
def test_the_whole_config_is_checked_before_any_data_is_read(
    tmp_path: Path, overrides: dict, message: str
) -> None:
    missing = f"{tmp_path / 'a.en'},{tmp_path / 'a.de'}"  # only a config check can speak first
    cfg = load_config(overrides={"data.source": missing, **overrides})
    with pytest.raises(UserError, match=message):
        Translator(cfg, verbose=False).fit(run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- files


def test_a_byte_order_mark_does_not_change_the_first_sentence(tmp_path: Path) -> None:
    src = tmp_path / "in.en"
    src.write_bytes("\ufeffa man runs .\r\nthe dog .\n".encode())
    assert read_lines(src) == ["a man runs .", "the dog ."]  # was '\ufeffa man runs .'
    tsv = tmp_path / "pairs.tsv"
    tsv.write_bytes("\ufeffone .\teins .\n".encode())
    assert load_pairs(str(tsv)) == [("one .", "eins .")]


def test_a_truncated_gzip_file_is_one_line(tmp_path: Path) -> None:
    whole = gzip.compress(("".join(f"sentence {i} .\n" for i in range(2000))).encode())
    cut = tmp_path / "cut.en.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(UserError, match=r"cut.en.gz is a damaged gzip file .*compress it again"):
        read_lines(cut)  # was EOFError: Compressed file ended before the end-of-stream marker


def test_a_directory_and_an_unreadable_file_are_named_as_such(tmp_path: Path) -> None:
    (tmp_path / "d.en").mkdir()
    with pytest.raises(UserError, match=r"d.en is a directory, not a file"):
        load_pairs(f"{tmp_path / 'd.en'},{tmp_path / 'd.de'}")
    (tmp_path / "pairs.tsv").mkdir()
    with pytest.raises(UserError, match=r"TSV file .*pairs.tsv is a directory"):
        load_pairs(str(tmp_path / "pairs.tsv"))  # said "not found"
    locked = tmp_path / "locked.en"
    locked.write_text("one .\n", encoding="utf-8")
    locked.chmod(0)
    code = "from rnnkit.translate.data import read_lines; read_lines(sys.argv[1])"
    err = without_file_permissions(code, locked)
    assert "UserError: cannot read file" in err and "permission denied" in err, err


# --------------------------------------------------------------------------- decoding


def test_an_unbounded_max_len_ratio_is_refused(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for ratio in ("1e9", "nan", "inf", "0"):
        argv = ["translate", "predict", "--checkpoint", str(run), "one two .",
                "--max-len-ratio", ratio]  # fmt: skip
        code, _, err = _cli(argv, capsys)  # 1e9 used to decode ~1e9 tokens
        assert code == 2 and "max_len_ratio must be in (0, 10]" in err, (ratio, err)
    tr = Translator.load(run, verbose=False)
    with pytest.raises(UserError, match="max_len_ratio"):
        tr.translate(["one ."], max_len_ratio=1e9)
    assert len(tr.translate(["one ."], max_len_ratio=10.0)) == 1


# --------------------------------------------------------------------------- messages


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
    bad_tsv = tmp_path / "bad.tsv"
    bad_tsv.write_text("one\ttwo\tthree\n", encoding="utf-8")
    (tmp_path / "folder").mkdir()
    cases = [
        ["train", "--data", "nope", "--run-dir", str(tmp_path / "r")],
        ["train", "--data", "a,b,c", "--run-dir", str(tmp_path / "r")],
        ["train", "--data", "multi30k", "--src", "fr", "--run-dir", str(tmp_path / "r")],
        ["train", "--data", str(bad_tsv), "--run-dir", str(run)],
        ["train", "--data", str(bad_tsv), "--run-dir", str(tmp_path / "r"), "--resume"],
        ["eval", "--checkpoint", str(run)],
        ["eval", "--checkpoint", str(run), "--data", str(tmp_path / "folder")],
        ["predict", "--checkpoint", str(run)],
        ["predict", "--checkpoint", str(run), "--input", str(tmp_path / "folder")],
        ["predict", "--checkpoint", str(run), "a .", "b .", "--plot-attention", "a.png"],
    ]
    for argv in cases:
        code, _, err = _cli(["translate", *argv], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, (argv, err)
        flags = set(re.findall(r"(?<![\w-])--[a-z][\w.-]*\w", err))
        unknown = flags - _options("translate", argv[0])
        assert not unknown, f"rnnkit translate {argv[0]} has no {unknown}: {err}"


def test_resume_with_a_config_that_does_not_fit_the_run_says_so(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["translate", "train", "--run-dir", str(run), "--resume", "--model.hidden_size=32"]
    code, _, err = _cli(argv, capsys)
    assert code == 2 and "damaged" not in err  # the checkpoint is fine; the override is not
    assert "cannot resume" in err and "model.hidden_size=32 (the run's: 16)" in err
    tr = Translator(config=Translator.load(run).config, verbose=False)
    with pytest.raises(UserError, match="the data changed since the run started"):
        tr.fit([(f"w{i} .", f"v{i} .") for i in range(40)], run_dir=run, resume=True)
