"""Reading and validating series, transforms, scalers and windows (no network involved)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnnkit.data import sha256_of
from rnnkit.errors import UserError
from rnnkit.forecast.config import DataConfig
from rnnkit.forecast.data import AIRLINE, VIX, load_builtin, load_csv, load_data, load_series
from rnnkit.forecast.scaling import StandardScaler, TargetTransform
from rnnkit.forecast.series import SeriesData, calendar_features, from_frame, infer_season
from rnnkit.forecast.windows import make_windows


def monthly(n: int = 36, start: str = "2000-01-01") -> pd.DataFrame:
    t = pd.date_range(start, periods=n, freq="MS")
    return pd.DataFrame({"time": t, "y": np.arange(n, dtype=float) + 1.0})


def test_from_frame_reads_datetime_and_integer_index() -> None:
    d = from_frame(monthly(), time_col="time")
    assert d.values.shape == (36, 1) and d.names == ("y",)
    assert d.freq == "MS" and d.season == 12
    assert list(d.future_index(2)) == [pd.Timestamp("2003-01-01"), pd.Timestamp("2003-02-01")]
    years = pd.DataFrame({"year": np.arange(1900.0, 1920.0), "v": np.arange(20.0)})
    d = from_frame(years, time_col="year")
    assert d.freq is None and d.season == 1
    assert list(d.future_index(2)) == [1920, 1921]


def test_pandas_series_and_several_targets() -> None:
    s = pd.Series(np.arange(30.0), index=pd.date_range("2020-01-01", periods=30, freq="D"))
    d = load_series(s)
    assert d.names == ("y",) and d.freq == "D" and d.season == 7
    frame = monthly()
    frame["z"] = frame["y"] * 2
    d = from_frame(frame, time_col="time")
    assert d.names == ("y", "z") and d.values.shape == (36, 2)


def test_arrays_and_the_data_config() -> None:
    d = load_series(np.arange(10.0))
    assert d.names == ("y",) and list(d.index[:2]) == [0, 1] and d.freq is None
    d = load_series(np.ones((10, 2)))
    assert d.names == ("y0", "y1") and d.values.shape == (10, 2)
    with pytest.raises(UserError, match=r"shape \(T,\) or \(T, S\)"):
        load_series(np.ones((2, 2, 2)))
    frame = monthly()
    frame["promo"] = np.arange(36) % 2
    cfg = DataConfig(time_col="time", target="y", known="promo", calendar=True)
    d = load_data(cfg, frame)
    assert d.names == ("y",) and d.known_names == ("promo", "month_sin", "month_cos")
    with pytest.raises(UserError, match="no data"):
        load_data(DataConfig(source=""))
    with pytest.raises(UserError, match="data file nope.csv not found"):
        load_data(DataConfig(source="nope.csv"))


def test_covariates_are_split_by_role() -> None:
    frame = monthly()
    frame["promo"] = np.arange(36) % 2
    frame["temp"] = np.sin(np.arange(36))
    d = from_frame(
        frame, time_col="time", target_cols=["y"], known_cols=["promo"], past_cols=["temp"]
    )
    assert d.known_names == ("promo",) and d.past_names == ("temp",)
    np.testing.assert_array_equal(d.known[:, 0], np.arange(36) % 2)


def test_missing_values_error_or_documented_fill() -> None:
    frame = monthly(12)
    frame.loc[4, "y"] = np.nan
    with pytest.raises(UserError, match=r"1 missing values .*fill='ffill'"):
        from_frame(frame, time_col="time")
    filled = from_frame(frame, time_col="time", fill="ffill").values[:, 0]
    assert filled[4] == 4.0  # the previous value (y = index + 1)
    interp = from_frame(frame, time_col="time", fill="interpolate").values[:, 0]
    assert interp[4] == pytest.approx(5.0)  # midway between 4 and 6
    frame.loc[0, "y"] = np.nan
    with pytest.raises(UserError, match="first row"):
        from_frame(frame, time_col="time", fill="ffill")


def test_duplicate_timestamps() -> None:
    frame = pd.concat([monthly(12), monthly(12).iloc[[3]].assign(y=100.0)], ignore_index=True)
    with pytest.raises(UserError, match="duplicate timestamps .*duplicates='mean'"):
        from_frame(frame, time_col="time")
    d = from_frame(frame, time_col="time", duplicates="mean")
    assert len(d) == 12 and d.values[3, 0] == pytest.approx((4.0 + 100.0) / 2)
    d = from_frame(frame, time_col="time", duplicates="last")
    assert d.values[3, 0] == 100.0


def test_irregular_timestamps() -> None:
    frame = monthly(12)
    frame["time"] = pd.to_datetime(
        [
            "2000-01-01",
            "2000-01-02",
            "2000-01-03",
            "2000-01-05",
            "2000-01-06",
            "2000-01-09",
            "2000-01-10",
            "2000-01-11",
            "2000-01-12",
            "2000-01-13",
            "2000-01-16",
            "2000-01-17",
        ]
    )
    with pytest.raises(UserError, match="irregular .*--data.freq=steps"):
        from_frame(frame, time_col="time")
    d = from_frame(frame, time_col="time", freq="D", fill="ffill")
    assert len(d) == 17 and d.values[3, 0] == 3.0  # 01-04 was missing: carried from 01-03
    d = from_frame(frame, time_col="time", freq="steps")
    assert len(d) == 12 and d.season == 1


def test_non_numeric_columns_and_short_series() -> None:
    frame = monthly(12)
    frame["y"] = frame["y"].astype(object)
    frame.loc[5, "y"] = "n/a"
    with pytest.raises(UserError, match=r"target column 'y' is not numeric \(e.g. 'n/a'"):
        from_frame(frame, time_col="time", target_cols=["y"])
    frame = monthly(12)
    frame["note"] = "x"
    with pytest.raises(UserError, match="covariate column 'note' is not numeric"):
        from_frame(frame, time_col="time", target_cols=["y"], past_cols=["note"])
    with pytest.raises(UserError, match="too short"):
        from_frame(monthly(2), time_col="time")
    with pytest.raises(UserError, match="column 'nope' not found"):
        from_frame(monthly(), time_col="time", target_cols=["nope"])


def test_csv_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="data file .* not found"):
        load_csv(tmp_path / "missing.csv")
    bad = tmp_path / "one.csv"
    bad.write_text("a\n1\n2\n")
    with pytest.raises(UserError, match="needs a time column"):
        load_csv(bad)
    good = tmp_path / "good.csv"
    monthly().to_csv(good, index=False)
    assert load_csv(good).values.shape == (36, 1)


def test_standard_scaler_fits_on_train_rows_only() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (80, 2)), rng.normal(50, 5, (20, 2))])
    sc = StandardScaler().fit(x[:80])
    np.testing.assert_allclose(sc.mean_, x[:80].mean(axis=0))
    np.testing.assert_allclose(sc.scale_, x[:80].std(axis=0))
    assert np.all(np.abs(sc.mean_ - x.mean(axis=0)) > 5)  # the full-data mean is far away
    np.testing.assert_allclose(sc.inverse_transform(sc.transform(x)), x)
    again = StandardScaler.from_dict(sc.to_dict())
    np.testing.assert_array_equal(again.transform(x), sc.transform(x))
    with pytest.raises(UserError, match="too few rows"):
        StandardScaler().fit(np.full((5, 1), np.nan))


@pytest.mark.parametrize("kind", ["diff", "log-return", "log", "none"])
def test_target_transform_round_trip(kind: str) -> None:
    y = np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.1, 50)))[:, None] * 20  # (T, 1)
    tf = TargetTransform(kind)
    z = tf.model_series(y)  # (T, 1)
    t = 30  # origin: forecast y[t], y[t+1], ...
    if tf.differenced:
        cum = np.cumsum(z[t : t + 5, 0])  # cumulative change since y[t-1]
        levels = tf.to_levels(cum[None, :], y[t - 1])
    else:
        levels = tf.to_levels(z[t : t + 5, 0][None, :], y[t - 1])
    np.testing.assert_allclose(levels[0], y[t : t + 5, 0], rtol=1e-12)
    if kind == "log-return":
        np.testing.assert_allclose(z[1:, 0], np.log(y[1:, 0] / y[:-1, 0]))


def test_log_transforms_need_positive_values() -> None:
    with pytest.raises(UserError, match="needs positive values"):
        TargetTransform("log-return").check(np.array([[1.0], [0.0]]))
    with pytest.raises(UserError, match="must be one of"):
        TargetTransform("sqrt")


def test_windows_match_a_loop_and_never_look_ahead() -> None:
    t_len, lookback, horizon = 30, 5, 3
    inputs = np.arange(t_len * 2, dtype=float).reshape(t_len, 2)
    targets = np.arange(t_len, dtype=float)[:, None] + 1000
    x, y = make_windows(inputs, targets, lookback, horizon)
    origins = range(lookback, t_len - horizon + 1)
    assert x.shape == (len(origins), lookback, 2) and y.shape == (len(origins), horizon, 1)
    for n, t in enumerate(origins):
        np.testing.assert_array_equal(x[n], inputs[t - lookback : t])
        np.testing.assert_array_equal(y[n], targets[t : t + horizon])
        # every input time index is before every target time index
        assert x[n, :, 0].max() / 2 < y[n, :, 0].min() - 1000


def test_calendar_features_and_season() -> None:
    idx = pd.date_range("2000-01-01", periods=24, freq="MS")
    cal = calendar_features(idx, "MS")
    np.testing.assert_allclose(cal["month_sin"].iloc[:12], np.sin(2 * np.pi * np.arange(12) / 12))
    assert infer_season("MS") == 12 and infer_season("QS-OCT") == 4 and infer_season("B") == 5
    assert infer_season("YS") == 1 and infer_season(None) == 1
    d = from_frame(monthly(), time_col="time", calendar=True)
    assert d.known_names == ("month_sin", "month_cos")


def test_sunspots_offline() -> None:
    d = load_builtin("sunspots")
    assert len(d) == 309 and d.index[0] == 1700 and d.index[-1] == 2008
    assert d.season == 11 and isinstance(d, SeriesData)


def test_airline_and_vix_download_through_fetch(data_mirror: str, shared_data: Path) -> None:
    d = load_builtin("airline")
    assert len(d) == 144 and d.freq == "MS" and d.values[0, 0] == 112.0
    assert d.index[0] == pd.Timestamp("1949-01-01")
    v = load_builtin("vix")
    assert len(v) == 9235 and v.freq == "steps" and v.names == ("CLOSE",)
    assert sha256_of(shared_data / AIRLINE.mirror_path) == AIRLINE.sha256
    assert sha256_of(shared_data / VIX.mirror_path) == VIX.sha256
