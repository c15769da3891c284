"""Property-based fuzzing (hypothesis) of everything a user feeds the sentiment application.

Labelled CSV/TSV/JSON-lines files (missing labels and columns, one class, mixed
label spellings, empty and 1 MB texts, quotes, tabs and newlines in fields,
non-UTF-8 bytes, byte-order marks), texts to predict, and config overrides
through the estimator's constructor: the only outcomes are a result or a
one-line :class:`~rnnkit.errors.UserError`, never another exception.

Each test runs a modest number of examples by default (seconds); the ``slow``
twins run many more (``pytest -m slow``).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnkit import SentimentClassifier
from rnnkit.errors import UserError
from rnnkit.sentiment import SentimentConfig, SentimentDataConfig
from rnnkit.sentiment.config import check_config
from rnnkit.sentiment.data import LabelEncoder, fit_data
from rnnkit.sentiment.readers import read_examples, read_texts
from testkit import config_overrides, fuzz_settings, one_line

FAST = fuzz_settings(30)
SLOW = fuzz_settings(400)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sentiment-fuzz")


# --------------------------------------------------------------------------- strategies

# Texts: anything, with the characters that break naive parsers made likely, plus
# empty, blank and 1 MB ones.
_tricky = st.sampled_from(["", " ", ",", "\t", "\n", "\r\n", '"', "'", "\\", "\x00", "\ufeff"])
texts = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(_tricky, st.text(max_size=5)), max_size=8).map("".join),
    st.sampled_from(["", "   ", "x" * 2**20, "word " * 30_000]),
)
labels = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([1.0, 0.0, 1.5, float("nan"), float("inf"), True, None, [], {}]),
    st.sampled_from(["0", "1", "1.0", " 1 ", "pos", "neg", "", "  ", "1e0", "nan", "-0"]),
    st.text(max_size=6),
)
rows = st.lists(st.tuples(texts, labels), max_size=12)


def _encode(rows_: list[tuple[str, Any]], fmt: str, header: list[str]) -> bytes:
    if fmt == "jsonl":
        lines = []
        for text, label in rows_:
            row = {header[0]: text}
            if len(header) > 1:
                row[header[1]] = label
            lines.append(json.dumps(row))
        return "\n".join(lines).encode()
    out = io.StringIO()
    writer = csv.writer(out, delimiter="," if fmt == "csv" else "\t")
    writer.writerow(header)
    for text, label in rows_:
        writer.writerow([text, label][: len(header)] if isinstance(label, (str, int, float))
                        else [text, json.dumps(label)][: len(header)])  # fmt: skip
    return out.getvalue().encode()


# JSON lines that are valid JSON but not what a reader expects, or not valid at all.
_json_lines = st.sampled_from(
    [
        '{"text": "a", "label": ' + "9" * 5000 + "}",  # beyond Python's int digit limit
        '{"text": "a", "label": 1e999}',
        '{"text": "a", "label": NaN}',
        '{"text": ["a"], "label": 1}',
        '{"text": "a"}',
        "[" * 100_000,
        '"just a string"',
        "null",
        '{"text": "a", "label": 1',
    ]
)


@st.composite
def labelled_files(draw: st.DrawFn) -> tuple[str, bytes]:
    fmt = draw(st.sampled_from(["csv", "tsv", "jsonl"]))
    if fmt == "jsonl" and draw(st.booleans()):
        good = [json.dumps({"text": t, "label": y}) for t, y in draw(rows)]
        lines = draw(st.permutations([*good, *draw(st.lists(_json_lines, max_size=2))]))
        return fmt, "\n".join(lines).encode()
    header = draw(
        st.sampled_from([["text", "label"], ["label", "text"], ["text"], ["review", "label"]])
    )
    data = _encode(draw(rows), fmt, header)
    damage = draw(st.sampled_from(["none", "none", "bom", "latin1", "bytes", "cut"]))
    if damage == "bom":
        data = b"\xef\xbb\xbf" + data
    elif damage == "latin1":
        data = data + "caf\xe9\n".encode("latin-1")
    elif damage == "bytes":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=8)) + data[at:]
    elif damage == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    return fmt, data


# --------------------------------------------------------------------------- properties


def _check_labelled_file(workdir: Path, file: tuple[str, bytes]) -> None:
    fmt, data = file
    path = workdir / f"data.{fmt}"
    path.write_bytes(data)
    try:
        examples = list(read_examples(path))
    except UserError as exc:
        one_line(exc)
        return
    assert examples and all(isinstance(e.text, str) and e.text.strip() for e in examples)
    kinds = {type(e.label) for e in examples}
    assert kinds in ({int}, {str}), kinds  # whole numbers or names, never a mix
    try:
        LabelEncoder().fit(e.label for e in examples)
        cfg = SentimentDataConfig(source=str(path), val_source=str(path))
        split, _ = fit_data(cfg, None, None, None, None, seed=0)
        assert len(split[0]) == len(split[1]) == len(examples)
    except UserError as exc:
        one_line(exc)


@FAST
@given(file=labelled_files())
def test_labelled_files_give_examples_or_a_user_error(workdir: Path, file) -> None:
    _check_labelled_file(workdir, file)


@pytest.mark.slow
@SLOW
@given(file=labelled_files())
def test_labelled_files_give_examples_or_a_user_error_many(workdir: Path, file) -> None:
    _check_labelled_file(workdir, file)


def _check_texts_to_predict(workdir: Path, suffix: str, data: bytes) -> None:
    path = workdir / f"input{suffix}"
    path.write_bytes(data)
    try:
        got = read_texts(path)
    except UserError as exc:
        one_line(exc)
        return
    assert got and all(isinstance(t, str) for t in got)
    if suffix == ".txt":  # one output line per input line, blank ones included
        text = data.decode("utf-8-sig")
        assert len(got) == len(text.split("\n")) - text.endswith("\n")


_inputs = st.one_of(
    st.binary(max_size=64),
    st.lists(texts, max_size=6).map(lambda ts: "\n".join(ts).encode()),
    labelled_files().map(lambda f: f[1]),
)


@FAST
@given(suffix=st.sampled_from([".txt", ".csv", ".tsv", ".jsonl"]), data=_inputs)
def test_texts_to_predict_are_read_or_refused(workdir: Path, suffix: str, data: bytes) -> None:
    _check_texts_to_predict(workdir, suffix, data)


@pytest.mark.slow
@SLOW
@given(suffix=st.sampled_from([".txt", ".csv", ".tsv", ".jsonl"]), data=_inputs)
def test_texts_to_predict_are_read_or_refused_many(workdir: Path, suffix: str, data: bytes):
    _check_texts_to_predict(workdir, suffix, data)


# --------------------------------------------------------------------------- config overrides

_OVERRIDES = config_overrides(SentimentConfig, ["none", "lstm", "gru"])


def _check_overrides(overrides: dict[str, Any]) -> None:
    try:
        clf = SentimentClassifier(verbose=False, **overrides)
        check_config(clf.config)
    except UserError as exc:
        one_line(exc)


@FAST
@given(overrides=_OVERRIDES)
def test_config_overrides_give_a_config_or_a_user_error(overrides: dict[str, Any]) -> None:
    _check_overrides(overrides)


@pytest.mark.slow
@SLOW
@given(overrides=_OVERRIDES)
def test_config_overrides_give_a_config_or_a_user_error_many(overrides: dict[str, Any]) -> None:
    _check_overrides(overrides)
