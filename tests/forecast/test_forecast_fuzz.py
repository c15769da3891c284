"""Property-based fuzzing (hypothesis) of what a forecasting user feeds in: CSV files.

Whatever the bytes (NaN, text in a value column, duplicate and unsorted time
stamps, huge and infinite values, empty files, only a header, random bytes),
reading a CSV and preparing it for training ends in a result or a one-line
:class:`~rnnkit.errors.UserError`, never another exception. The default runs
take a few seconds; the ``slow`` twins try many more inputs.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnkit import Forecaster, UserError
from rnnkit.forecast.config import ForecasterConfig, ForecastTrainConfig
from rnnkit.forecast.data import load_csv
from rnnkit.forecast.fitting import prepare
from rnnkit.forecast.series import SeriesData
from testkit import fuzz_settings

# Stray numpy/pandas RuntimeWarnings (casts, NaN arithmetic) would reach users too.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


FAST = fuzz_settings(150)
MANY = fuzz_settings(1500)

NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(["1e300", "-1e300", "1e400", "-1e400", "inf", "-inf", "nan", "NaN", ""]),
    st.sampled_from(["abc", "1,5", "n/a", "TRUE", "0x10", " 3 ", '"7"', "1e", "--1"]),
)
DATES = st.dates(min_value=date(1700, 1, 1), max_value=date(2200, 1, 1))
STAMPS = st.one_of(
    DATES.map(str),
    st.integers(-5, 3000).map(str),
    st.floats(-1e6, 1e6).map(repr),
    st.sampled_from(["", "yesterday", "2020-13-45", "2020-02-30", "1e400", "NaT", "00:00"]),
)


@st.composite
def csv_texts(draw: st.DrawFn) -> str:
    """A CSV: a header, then rows whose time stamps are regular, unsorted, duplicated or junk."""
    n_cols = draw(st.integers(1, 3))
    names = st.sampled_from(["y", "x", "y", "", "z w"])
    header = ["time", *draw(st.lists(names, min_size=n_cols, max_size=n_cols))]
    n = draw(st.integers(0, 40))
    kind = draw(st.sampled_from(["monthly", "daily", "years", "shuffled", "duplicated", "junk"]))
    if kind in ("monthly", "daily", "shuffled", "duplicated"):
        freq = "MS" if kind == "monthly" else "D"
        stamps = [str(t.date()) for t in pd.date_range("2000-01-01", periods=n, freq=freq)]
        if kind == "shuffled":
            stamps = draw(st.permutations(stamps))
        if kind == "duplicated" and n:
            stamps = [stamps[min(i, draw(st.integers(0, n - 1)))] for i in range(n)]
    elif kind == "years":
        stamps = [str(1700 + i * draw(st.sampled_from([1, 1, 2]))) for i in range(n)]
    else:
        stamps = [draw(STAMPS) for _ in range(n)]
    clean = draw(st.booleans())  # mostly numbers that make a series, or anything
    rows = []
    for i, stamp in enumerate(stamps):
        values = [
            repr(10 + math.sin(i)) if clean and draw(st.integers(0, 9)) else draw(NUMBERS)
            for _ in range(n_cols)
        ]
        rows.append([stamp, *values])
    lines = [",".join(header)] + [",".join(r) for r in rows]
    if draw(st.booleans()) and lines:
        lines = lines[: draw(st.integers(0, len(lines)))]  # cut short, maybe to nothing
    return "\n".join(lines) + ("\n" if draw(st.booleans()) else "")


OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "fill": st.sampled_from(["none", "ffill", "interpolate", "drop", "zero"]),
        "duplicates": st.sampled_from(["error", "mean", "last"]),
        "freq": st.sampled_from(["D", "MS", "steps", "h", "xyz"]),
        "season": st.integers(0, 24),
        "calendar": st.booleans(),
    },
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def read_and_prepare(path: Path, options: dict) -> None:
    """The outcome is a validated series (and training windows) or a UserError."""
    try:
        data = load_csv(path, **options)
    except UserError as exc:
        assert "\n" not in str(exc) and str(exc)
        return
    assert isinstance(data, SeriesData) and len(data) >= 3
    assert np.isfinite(data.values).all()  # nothing infinite or missing gets through
    try:
        prep = prepare(data, ForecasterConfig(lookback=4, horizon=2), ForecastTrainConfig())
    except UserError as exc:
        assert "\n" not in str(exc)
        return
    for t in prep.windows.all:
        assert bool(t.isfinite().all())


def check_csv(folder: Path, text: str, options: dict) -> None:
    path = folder / "data.csv"
    path.write_text(text, encoding="utf-8")
    read_and_prepare(path, options)


def check_bytes(folder: Path, raw: bytes) -> None:
    path = folder / "raw.csv"
    path.write_bytes(raw)
    read_and_prepare(path, {})


@FAST
@given(text=csv_texts(), options=OPTIONS)
def test_any_csv_gives_a_series_or_a_user_error(folder: Path, text: str, options: dict) -> None:
    check_csv(folder, text, options)


@FAST
@given(raw=st.one_of(st.binary(max_size=300), st.binary(max_size=200).map(b"time,y\n".__add__)))
def test_any_bytes_give_a_series_or_a_user_error(folder: Path, raw: bytes) -> None:
    check_bytes(folder, raw)


@pytest.mark.slow
@MANY
@given(text=csv_texts(), options=OPTIONS)
def test_any_csv_gives_a_series_or_a_user_error_many(
    folder: Path, text: str, options: dict
) -> None:
    check_csv(folder, text, options)


@pytest.mark.slow
@MANY
@given(raw=st.binary(max_size=2000))
def test_any_bytes_give_a_series_or_a_user_error_many(folder: Path, raw: bytes) -> None:
    check_bytes(folder, raw)


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(text=csv_texts())
def test_fit_and_predict_on_any_csv_or_a_user_error(folder: Path, text: str) -> None:
    """The whole path, training included: a finite forecast or a UserError."""
    path = folder / "fit.csv"
    path.write_text(text, encoding="utf-8")
    f = Forecaster(lookback=4, horizon=2, hidden_size=4, epochs=1, ensemble=1, verbose=False)
    try:
        f.fit(path)
    except UserError:
        return
    assert np.isfinite(f.predict(2)["forecast"]).all()


def test_the_fuzzed_inputs_include_the_cases_of_the_issue(folder: Path) -> None:
    """The named cases, once each, so a regression shows up by name."""
    good = "\n".join(f"2000-{m:02d}-01,{10 + m}" for m in range(1, 13))
    cases = {
        "nan": "time,y\n" + good.replace(",15", ",nan"),
        "text": "time,y\n" + good.replace(",15", ",abc"),
        "duplicate": "time,y\n" + good + "\n2000-03-01,1",
        "unsorted": "time,y\n" + "\n".join(reversed(good.splitlines())),
        "huge": "time,y\n" + good.replace(",15", ",1e308"),
        "infinite": "time,y\n" + good.replace(",15", ",1e400"),
        "empty": "",
        "header only": "time,y\n",
        "byte-order mark": "\ufefftime,y\n" + good,
    }
    outcomes = {}
    for name, text in cases.items():
        path = folder / f"{name}.csv"
        path.write_text(text, encoding="utf-8")
        try:
            load_csv(path)
            outcomes[name] = "ok"
        except UserError as exc:
            outcomes[name] = str(exc).split(";")[0]
    assert outcomes["unsorted"] == "ok" and outcomes["huge"] == "ok"
    assert outcomes["byte-order mark"] == "ok"
    assert "missing values" in outcomes["nan"] and "not numeric" in outcomes["text"]
    assert "duplicate timestamps" in outcomes["duplicate"]
    assert "infinite value" in outcomes["infinite"]
    assert "cannot read" in outcomes["empty"] and "too short" in outcomes["header only"]
    # 1e308 reads fine but cannot be scaled: an error when it is prepared for training
    with pytest.raises(UserError, match="cannot be scaled"):
        read = load_csv(folder / "huge.csv")
        prepare(read, ForecasterConfig(lookback=2, horizon=1), ForecastTrainConfig())
    assert isinstance(pd.read_csv(folder / "unsorted.csv"), pd.DataFrame)
