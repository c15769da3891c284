"""Faults and bad input in the sentiment application (issue 13), each injected for real.

An ensemble killed with ``kill -9`` mid-member resumes without retraining the
finished member; presets write periodic checkpoints; ``train.max_steps`` caps
``epochs``; the whole config is checked before any data is read; labels are
names or whole numbers; big CSV fields, byte-order marks, directories and
unreadable files; blank predict lines; hints that name real options; resume
with a config that does not fit the run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from rnnkit import SentimentClassifier
from rnnkit.cli import build_parser
from rnnkit.cli import main as cli_main
from rnnkit.config import apply_overrides, from_dict
from rnnkit.errors import UserError
from rnnkit.sentiment import SentimentConfig, load_config
from rnnkit.sentiment.readers import read_examples, read_texts
from rnnkit.training import load_tensors
from testkit import without_file_permissions

SMALL = ["--model.embed_dim=16", "--model.hidden_size=16", "--data.batch_size=4",
         "--train.lr=0.01", "--train.progress=none", "--train.plot=false",
         "--train.early_stopping_patience=0"]  # fmt: skip


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = cli_main(argv)
    except SystemExit as exc:  # argparse-level errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("preset", [None, "sst2", "sst2_phrases", "imdb", "tiny"])
def test_every_preset_writes_periodic_checkpoints(preset: str | None) -> None:
    # sst2 had checkpoint_interval = 0: a killed ensemble had nothing to resume from.
    assert load_config(preset=preset).train.checkpoint_interval > 0


def _member_step(run: Path, name: str) -> int:
    try:
        state = (run / name / "checkpoint" / "trainer_state.json").read_text()
        return int(json.loads(state)["step"])
    except (OSError, ValueError, KeyError):
        return -1


def _ensemble_args(tsv: Path, run: Path) -> list[str]:
    # 11 training texts in batches of 4: 3 steps an epoch, 36 steps a member, a checkpoint
    # every 3 steps.
    return ["sentiment", "train", "--data", str(tsv), "--data.val_source", str(tsv),
            "--run-dir", str(run), "--ensemble=2", "--epochs=12",
            "--train.checkpoint_interval=3", *SMALL]  # fmt: skip


def _wait_for(run: Path, name: str, step: int, alive: Callable[[], bool]) -> None:
    end = time.monotonic() + 120
    while _member_step(run, name) < step:
        assert alive(), "training ended before the fault"
        assert time.monotonic() < end, f"{name} wrote no checkpoint"
        time.sleep(0.005)


def _resume_keeps_member1_and_continues_member2(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a fault in member2: --resume keeps member1 untouched and ends member2 with
    exactly the weights of an uninterrupted run of it."""
    killed_at = _member_step(run, "member2")
    assert 3 <= killed_at < 36 and _member_step(run, "member1") == 36
    logged = [json.loads(x) for x in (run / "member2" / "metrics.jsonl").read_text().splitlines()]
    last = max(r["step"] for r in logged if "loss" in r)
    assert last - killed_at <= 3  # at most one checkpoint interval is lost
    m1 = run / "member1"
    m1_weights = (m1 / "best" / "model.safetensors").read_bytes()
    m1_stamp = (m1 / "checkpoint" / "trainer_state.json").stat().st_mtime_ns

    code, out, err = _cli(["sentiment", "train", "--run-dir", str(run), "--resume"], capsys)
    assert code == 0, err
    assert "member1 had finished (step 36); kept as it is" in err
    assert "(had finished: kept)" in out and "done: ensemble of 2" in out
    assert (m1 / "best" / "model.safetensors").read_bytes() == m1_weights  # not retrained
    assert (m1 / "checkpoint" / "trainer_state.json").stat().st_mtime_ns == m1_stamp
    assert _member_step(run, "member2") == 36
    logged = [json.loads(x) for x in (run / "member2" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged if "loss" in r] == list(range(1, 37))  # continued

    saved = json.loads((run / "ensemble.json").read_text())["config"]
    cfg = from_dict(SentimentConfig, saved)
    cfg = apply_overrides(cfg, {"ensemble": 1, "train.seed": cfg.train.seed + 1})
    SentimentClassifier(config=cfg, verbose=False).fit(run_dir=tmp_path / "ref")
    for sub in ("checkpoint", "best"):
        got = load_tensors(run / "member2" / sub / "model.safetensors")
        want = load_tensors(tmp_path / "ref" / sub / "model.safetensors")
        assert got.keys() == want.keys()
        assert all(torch.equal(got[k], want[k]) for k in want), sub
    assert SentimentClassifier.load(run).predict(["a lovely story"])[0] in ("positive", "negative")


def test_an_ensemble_stopped_by_sigterm_resumes_keeping_the_finished_member(
    tiny_tsv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    run = tmp_path / "run"
    monkeypatch.setenv("RNNKIT_TEST_CHECKPOINT_DELAY", "0.05")  # room for the signal
    done = threading.Event()

    def send_sigterm() -> None:  # a real SIGTERM to this process once member2 is under way
        try:
            _wait_for(run, "member2", 3, lambda: not done.is_set())
            os.kill(os.getpid(), signal.SIGTERM)
        except AssertionError:
            pass

    sender = threading.Thread(target=send_sigterm, daemon=True)
    sender.start()
    try:
        code, _, err = _cli(_ensemble_args(tiny_tsv, run), capsys)
    finally:
        done.set()
        sender.join()
    assert code == 143, err  # 128 + SIGTERM, after writing member2's checkpoint
    monkeypatch.delenv("RNNKIT_TEST_CHECKPOINT_DELAY")
    _resume_keeps_member1_and_continues_member2(run, tmp_path, capsys)


@pytest.mark.slow
def test_an_ensemble_killed_with_kill_9_resumes_keeping_the_finished_member(
    tiny_tsv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", RNNKIT_TEST_CHECKPOINT_DELAY="0.1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnkit", *_ensemble_args(tiny_tsv, run)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for(run, "member2", 6, lambda: proc.poll() is None)
    proc.send_signal(signal.SIGKILL)  # mid-member, maybe mid-checkpoint (the write is slowed)
    proc.wait()
    _resume_keeps_member1_and_continues_member2(run, tmp_path, capsys)


# --------------------------------------------------------------------------- run length


def test_max_steps_caps_epochs_and_max_seconds_ends_a_run(tiny_config, pos, neg) -> None:
    texts, labels = pos + neg, ["pos"] * 6 + ["neg"] * 6
    cfg = tiny_config(**{"epochs": 40, "train.max_steps": 5})
    clf = SentimentClassifier(cfg, verbose=False).fit(
        texts, labels, val_texts=texts, val_labels=labels
    )
    assert clf.result_.step == 5  # was 40 epochs x 3 batches: max_steps was silently ignored
    cfg = tiny_config(**{"epochs": 40, "train.max_seconds": 1e-9})
    clf = SentimentClassifier(cfg, verbose=False).fit(
        texts, labels, val_texts=texts, val_labels=labels
    )
    assert clf.result_.stop_reason == "max_seconds" and clf.result_.step < 120


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epochs": 0, "train.max_steps": 0}, "the run has no length: set epochs > 0 or"),
        ({"model.cell": "transformer"}, "model.cell must be one of"),
        ({"train.lr": float("nan")}, "train.lr must be a finite number, got nan"),
        ({"data.tokenizer": "chars"}, "data.tokenizer must be word or subword"),
        ({"data.tokenizer": "subword", "data.subword_vocab_size": 100}, "must be >= 260"),
        ({"data.class_weights": "auto"}, "data.class_weights must be none or balanced"),
        ({"train.optimizer": "adam"}, "train.optimizer must be adamw or sgd"),
        ({"model.dropout": 1.0}, r"model.dropout must be in \[0, 1\)"),
    ],
)
def test_the_whole_config_is_checked_before_any_data_is_read(
    tmp_path: Path, overrides: dict, message: str
) -> None:
    # The data source does not exist: only a config check can speak first.
    cfg = load_config(overrides={"data.source": str(tmp_path / "missing.csv"), **overrides})
    with pytest.raises(UserError, match=message):
        SentimentClassifier(cfg, verbose=False).fit(run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- labels


def test_a_name_among_numeric_labels_is_an_error_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    rows = [f"text {i},{i % 2}" for i in range(12)] + ["odd one,pos"]
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(UserError) as exc:
        list(read_examples(path))  # used to train a 3-class model
    msg = str(exc.value)
    assert "labels mix names and numbers: 'pos' at" in msg and "mixed.csv, line 14" in msg
    assert "among 12 numeric labels" in msg and "\n" not in msg
    with pytest.raises(UserError, match=r"'neg' at label 3 of the labels among 2 numeric"):
        SentimentClassifier(verbose=False).fit(["a", "b", "c"], [0, 1, "neg"])


def test_equal_numeric_labels_are_one_class(tmp_path: Path, tiny_config, pos, neg) -> None:
    path = tmp_path / "floats.csv"
    rows = [f'"{t}",1' for t in pos[:3]] + [f'"{t}",1.0' for t in pos[3:]]
    rows += [f'"{t}",0' for t in neg[:3]] + [f'"{t}", 0.0 ' for t in neg[3:]]
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    assert {e.label for e in read_examples(path)} == {0, 1}  # was 4 classes: 0, 0.0, 1, 1.0
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"text": "a", "label": 1.0}\n{"text": "b", "label": "1"}\n', "utf-8")
    assert [e.label for e in read_examples(jsonl)] == [1, 1]
    cfg = tiny_config(**{"epochs": 2, "data.source": str(path), "data.val_source": str(path)})
    clf = SentimentClassifier(cfg, verbose=False).fit()
    assert clf.classes_ == [0, 1]
    assert clf.evaluate(pos, ["1"] * 3 + [1.0] * 3)["per_class"]  # any spelling of class 1
    ens = SentimentClassifier.from_members([clf, clf])
    assert ens.explain("a lovely story", target="1").label == 1  # was a ValueError


# --------------------------------------------------------------------------- files


def test_a_text_field_over_128_kb_is_read(tmp_path: Path) -> None:
    big = "word " * 60_000  # 300 KB in one CSV field: csv's default limit is 128 KB
    path = tmp_path / "big.csv"
    path.write_text(f'text,label\n"{big}",pos\nsmall,neg\n', encoding="utf-8")
    assert [len(e.text) for e in read_examples(path)] == [len(big), 5]
    tsv = tmp_path / "big.tsv"
    tsv.write_text(f"text\tlabel\n{big}\tpos\n", encoding="utf-8")
    assert len(next(read_examples(tsv)).text) == len(big)


def test_a_byte_order_mark_is_not_part_of_the_header_or_the_first_text(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufefftext,label\ngood,pos\nbad,neg\n".encode())
    assert [e.text for e in read_examples(path)] == ["good", "bad"]  # header was '\ufefftext'
    txt = tmp_path / "in.txt"
    txt.write_bytes("\ufefffirst\nsecond\n".encode())
    assert read_texts(txt) == ["first", "second"]


def test_a_directory_and_an_unreadable_file_are_named_as_such(tmp_path: Path) -> None:
    folder = tmp_path / "data.csv"
    folder.mkdir()
    with pytest.raises(UserError, match=r"data file .*data.csv is a directory, not a file"):
        list(read_examples(folder))  # said "not found"
    with pytest.raises(UserError, match=r"input file .*data.csv is a directory, not a file"):
        read_texts(folder)
    locked = tmp_path / "locked.csv"
    locked.write_text("text,label\na,pos\nb,neg\n", encoding="utf-8")
    locked.chmod(0)
    code = "from rnnkit.sentiment.readers import read_examples; list(read_examples(sys.argv[1]))"
    err = without_file_permissions(code, locked)
    assert "UserError: cannot read data file" in err and "permission denied" in err, err


# --------------------------------------------------------------------------- predict


def test_blank_lines_give_blank_output_lines(
    fitted: SentimentClassifier, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = fitted.save(tmp_path / "m")
    inp = tmp_path / "in.txt"
    inp.write_text("a lovely story\n\n   \na dull mess\n", encoding="utf-8")
    base = ["sentiment", "predict", "--checkpoint", str(model)]
    code, out, err = _cli([*base, "--input", str(inp)], capsys)
    assert code == 0, err
    lines = out.split("\n")[:-1]
    assert len(lines) == 4 and lines[1] == lines[2] == "" and lines[0] and lines[3]
    assert "2 blank input text(s) (first: text 2)" in err
    code, _, err = _cli([*base, "--input", str(inp), "--output", str(tmp_path / "p.jsonl")], capsys)
    records = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [r["label"] is None for r in records] == [False, True, True, False]  # was 2 records
    code, out, _ = _cli([*base, "fun", "", "dull", "--json", "-"], capsys)
    assert [r["label"] is None for r in json.loads(out)] == [False, True, False]


# --------------------------------------------------------------------------- messages


def _options(app: str, verb: str) -> set[str]:
    parser = build_parser([app, verb])
    for action in parser._actions:
        if action.choices and app in action.choices:
            apps = action.choices[app]
            for a in apps._actions:
                if a.choices and verb in a.choices:
                    return {o for x in a.choices[verb]._actions for o in x.option_strings}
    raise AssertionError(f"no parser for {app} {verb}")


def _flags(message: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][\w.-]*[\w]", message))


def test_every_hint_names_an_option_of_its_command(
    fitted: SentimentClassifier, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = fitted.save(tmp_path / "m")
    review = tmp_path / "review.csv"
    review.write_text("review,stars\ngood,pos\nbad,neg\ngreat,pos\n", encoding="utf-8")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    cases = [
        (["train", "--data", str(review)], "--data.text_column"),
        (["train", "--data", str(review), "--data.text_column=review"], "--data.label_column"),
        (["train", "--data", str(folder)], None),
        (["train", "--data", str(review), "--resume"], None),
        (["eval", "--checkpoint", str(model), "--data", str(review)], "--text-column"),
        (["eval", "--checkpoint", str(model), "--data", str(review), "--text-column", "review"],
         "--label-column"),
        (["predict", "--checkpoint", str(model), "--input", str(review)], "--text-column"),
        (["predict", "--checkpoint", str(model)], "--input"),
    ]  # fmt: skip
    for argv, expected in cases:
        if argv[0] == "train":
            argv = [*argv, "--run-dir", str(tmp_path / "run")]
        code, _, err = _cli(["sentiment", *argv], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, (argv, err)
        unknown = _flags(err) - _options("sentiment", argv[0])
        assert not unknown, f"rnnkit sentiment {argv[0]} has no {unknown}: {err}"
        assert expected is None or expected in err, (argv, err)


def test_resume_with_a_config_that_does_not_fit_the_run_says_so(
    tiny_tsv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    args = ["sentiment", "train", "--data", str(tiny_tsv), "--run-dir", str(run), "--epochs=1",
            *SMALL]  # fmt: skip
    assert _cli(args, capsys)[0] == 0
    code, _, err = _cli([*args, "--resume", "--model.hidden_size=8"], capsys)
    assert code == 2 and "damaged" not in err  # the checkpoint is fine; the override is not
    assert "cannot resume" in err and "model.hidden_size=8 (the run's: 16)" in err
    assert "--overwrite" in err and len(err.strip().splitlines()) == 1
    same = str(tiny_tsv.parent / "." / tiny_tsv.name)  # the same file, spelled otherwise
    resumed = ["sentiment", "train", "--data", same, "--run-dir", str(run), "--resume", *SMALL]
    assert _cli(resumed, capsys)[0] == 0
    # Same config, other data: the vocabulary no longer fits the run's weights.
    clf = SentimentClassifier(config=SentimentClassifier.load(run).config, verbose=False)
    texts = [f"w{i} x" for i in range(12)]
    with pytest.raises(UserError, match="the data changed since the run started"):
        clf.fit(texts, [i % 3 for i in range(12)], run_dir=run, resume=True)
