"""Property-based fuzzing (hypothesis) of everything a user feeds the translation application.

Parallel text files (SRC,TGT pairs and two-column TSV; blank lines, CR LF,
U+2028 inside lines, tabs, byte-order marks, gzip whole or truncated,
non-UTF-8 bytes, files of different lengths), sentences to translate, pairs
given to ``fit`` in Python, and config overrides through the estimator's
constructor: the only outcomes are a result or a one-line
:class:`~rnnkit.errors.UserError`, never another exception.

Each test runs a modest number of examples by default (seconds); the ``slow``
twins run many more (``pytest -m slow``).
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnkit import Translator
from rnnkit.errors import UserError
from rnnkit.translate import TranslateConfig
from rnnkit.translate.config import check_config
from rnnkit.translate.data import as_pairs, cleaned, fit_pairs, load_pairs, read_lines
from testkit import config_overrides, fuzz_settings, one_line

FAST = fuzz_settings(40)
SLOW = fuzz_settings(500)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("translate-fuzz")


_tricky = st.sampled_from(["", " ", "\t", "\r", "\u2028", "\x85", "\x0c", "\x00", "\ufeff", "."])
sentences = st.one_of(
    st.text(max_size=30),
    st.lists(st.one_of(_tricky, st.text(max_size=4)), max_size=6).map("".join),
)
newlines = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def file_bytes(draw: st.DrawFn, lines: list[str]) -> bytes:
    """One text file of ``lines``, possibly with a BOM, gzipped, truncated or damaged."""
    nl = draw(newlines)
    data = nl.join(lines).encode("utf-8") + (nl.encode() if draw(st.booleans()) else b"")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    damage = draw(st.sampled_from(["none", "none", "gzip", "gzip-cut", "bytes", "latin1"]))
    if damage.startswith("gzip"):
        data = gzip.compress(data)
        if damage == "gzip-cut":
            data = data[: draw(st.integers(0, len(data)))]
    elif damage == "bytes":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=6)) + data[at:]
    elif damage == "latin1":
        data += "Stra\xdfe".encode("latin-1")
    return data


@st.composite
def parallel_sources(draw: st.DrawFn) -> tuple[str, dict[str, bytes]]:
    """A --data value and the files it names: SRC,TGT or a TSV."""
    pairs = draw(st.lists(st.tuples(sentences, sentences), max_size=10))
    if draw(st.booleans()):
        src = [p[0] for p in pairs]
        tgt = [p[1] for p in pairs] + draw(st.lists(sentences, max_size=2))  # maybe misaligned
        files = {"a.src": draw(file_bytes(src)), "a.tgt": draw(file_bytes(tgt))}
        return "{src},{tgt}", files
    rows = [f"{s}\t{t}" for s, t in pairs] + draw(st.lists(sentences, max_size=2))
    return "{tsv}", {"a.tsv": draw(file_bytes(rows))}


def _check_parallel(workdir: Path, source: tuple[str, dict[str, bytes]]) -> None:
    template, files = source
    names = {}
    for name, data in files.items():
        (workdir / name).write_bytes(data)
        names[name.split(".")[1]] = str(workdir / name)
    spec = template.format_map(names)
    try:
        pairs = load_pairs(spec)
    except UserError as exc:
        one_line(exc)
        return
    assert all(isinstance(p.src, str) and isinstance(p.tgt, str) for p in pairs)
    assert all("\n" not in p.src + p.tgt for p in pairs)
    try:
        cfg = TranslateConfig().data
        train, val, what = fit_pairs(cfg, pairs, None)
        assert train and val and all(p.src and p.tgt for p in train + val)
    except UserError as exc:
        one_line(exc)


@FAST
@given(source=parallel_sources())
def test_parallel_files_give_pairs_or_a_user_error(workdir: Path, source) -> None:
    _check_parallel(workdir, source)


@pytest.mark.slow
@SLOW
@given(source=parallel_sources())
def test_parallel_files_give_pairs_or_a_user_error_many(workdir: Path, source) -> None:
    _check_parallel(workdir, source)


def _check_input_lines(workdir: Path, data: bytes) -> None:
    path = workdir / "input.txt"
    path.write_bytes(data)
    try:
        lines = read_lines(path, what="input file")
    except UserError as exc:
        one_line(exc)
        return
    assert all("\n" not in line for line in lines)


@FAST
@given(data=st.one_of(st.binary(max_size=80), st.lists(sentences).flatmap(file_bytes)))
def test_sentences_to_translate_are_read_or_refused(workdir: Path, data: bytes) -> None:
    _check_input_lines(workdir, data)


@pytest.mark.slow
@SLOW
@given(data=st.one_of(st.binary(max_size=80), st.lists(sentences).flatmap(file_bytes)))
def test_sentences_to_translate_are_read_or_refused_many(workdir: Path, data: bytes) -> None:
    _check_input_lines(workdir, data)


_python_pairs = st.one_of(
    st.lists(st.tuples(sentences, sentences), max_size=5),
    st.lists(
        st.one_of(
            st.tuples(sentences),
            st.lists(sentences, max_size=3),
            st.none(),
            st.integers(),
            sentences,
        ),
        max_size=4,
    ),  # fmt: skip
    sentences,
)


@FAST
@given(pairs=_python_pairs)
def test_pairs_given_in_python_are_checked(pairs: Any) -> None:
    try:
        kept = cleaned(as_pairs(pairs, "training"), "training")
    except UserError as exc:
        one_line(exc)
        return
    assert kept and all(p.src == p.src.strip() and p.src and p.tgt for p in kept)


# --------------------------------------------------------------------------- config overrides

_OVERRIDES = config_overrides(TranslateConfig, ["gru", "additive", "260"])


def _check_overrides(overrides: dict[str, Any]) -> None:
    try:
        tr = Translator(verbose=False, **overrides)
        check_config(tr.config)
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
