"""Property-based fuzzing (hypothesis) of everything a user feeds the textgen application.

Plain text files (any bytes, any Unicode, byte-order marks, empty, one
character, one long line) through reading, the vocabulary and the batches
for any data options; sampling options; config overrides through the
estimator's constructor: the only outcomes are a result or a one-line
:class:`~rnnkit.errors.UserError`, never another exception.

Each test runs a modest number of examples by default (seconds); the ``slow``
twins run many more (``pytest -m slow``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from rnnkit import TextGenerator
from rnnkit.errors import UserError
from rnnkit.textgen import TextgenConfig
from rnnkit.textgen.config import check_config
from rnnkit.textgen.data import build_batches, encode_texts, load_text
from rnnkit.textgen.model import check_sampling, sample_next
from rnnkit.training.distributed import DistContext
from testkit import config_overrides, fuzz_settings, one_line

FAST = fuzz_settings(40)
SLOW = fuzz_settings(500)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("textgen-fuzz")


@st.composite
def text_files(draw: st.DrawFn) -> bytes:
    text = draw(
        st.one_of(
            st.text(max_size=300),
            st.sampled_from(["", "a", "ab", "x" * 100_000, "line\n" * 2000, "\ufeff"]),
        )
    )
    data = text.encode("utf-8")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    damage = draw(st.sampled_from(["none", "none", "bytes", "latin1", "cut"]))
    if damage == "bytes":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=6)) + data[at:]
    elif damage == "latin1":
        data += "na\xefve".encode("latin-1")
    elif damage == "cut":  # maybe in the middle of a multi-byte character
        data = data[: draw(st.integers(0, len(data)))]
    return data


data_options = st.fixed_dictionaries(
    {
        "batch_size": st.integers(-1, 70),
        "seq_len": st.integers(-1, 120),
        "val_fraction": st.floats(-0.5, 1.5),
        "mode": st.sampled_from(["tbptt", "random", "chars"]),
        "batches_per_epoch": st.integers(0, 3),
    }
)


def _check_text_file(workdir: Path, data: bytes, options: dict[str, Any]) -> None:
    path = workdir / "corpus.txt"
    path.write_bytes(data)
    cfg = TextgenConfig()
    cfg = replace(cfg, data=replace(cfg.data, source=str(path), **options))
    try:
        check_config(cfg)
        text = load_text(path)
        assert isinstance(text, str) and text
        vocab, train_ids, val_ids = encode_texts(text, val_fraction=cfg.data.val_fraction)
        assert int(train_ids.max()) < len(vocab) and int(val_ids.max()) < len(vocab)
        train, val = build_batches(cfg.data, train_ids, val_ids, seed=0, dist=DistContext())
        for batches in (train, val):
            batch = next(iter(batches))
            assert batch.x.shape == batch.y.shape
    except UserError as exc:
        one_line(exc)


@FAST
@given(data=text_files(), options=data_options)
def test_text_files_give_batches_or_a_user_error(workdir: Path, data: bytes, options) -> None:
    _check_text_file(workdir, data, options)


@pytest.mark.slow
@SLOW
@given(data=text_files(), options=data_options)
def test_text_files_give_batches_or_a_user_error_many(workdir: Path, data: bytes, options):
    _check_text_file(workdir, data, options)


_numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**6))


def _check_sampling(temperature: Any, top_k: Any, top_p: Any) -> None:
    try:
        check_sampling(temperature=temperature, top_k=top_k, top_p=top_p)
    except UserError as exc:
        one_line(exc)
        return
    logits = torch.randn(2, 7) * 30  # (B, V)
    ids = sample_next(logits, temperature=temperature, top_k=top_k, top_p=top_p)
    assert ids.shape == (2,) and bool(((ids >= 0) & (ids < 7)).all())


@FAST
@given(temperature=_numbers, top_k=st.one_of(st.integers(-2, 100), _numbers), top_p=_numbers)
def test_sampling_options_sample_or_give_a_user_error(temperature, top_k, top_p) -> None:
    _check_sampling(temperature, top_k, top_p)


@pytest.mark.slow
@SLOW
@given(temperature=_numbers, top_k=st.one_of(st.integers(-2, 100), _numbers), top_p=_numbers)
def test_sampling_options_sample_or_give_a_user_error_many(temperature, top_k, top_p) -> None:
    _check_sampling(temperature, top_k, top_p)


# --------------------------------------------------------------------------- config overrides

_OVERRIDES = config_overrides(TextgenConfig, ["lstm", "random", "tbptt"])


def _check_overrides(overrides: dict[str, Any]) -> None:
    try:
        gen = TextGenerator(verbose=False, **overrides)
        check_config(gen.config)
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
