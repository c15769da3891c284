"""Data of the forecast application: sources, a fitted model's data, the backtest contract.

- **Sources**: :func:`load_series` reads anything the forecaster accepts (a
  built-in name, a CSV path, a DataFrame, a pandas Series or an array) into a
  validated :class:`~rnnkit.forecast.series.SeriesData`; :func:`load_data` does
  it for the config's ``data`` section.
- **A fitted model's data**: :func:`load_like` reads new data with the
  columns, grid and season a model was fitted on; :func:`future_known` builds
  the known covariates of the forecast steps; :func:`context_to_dict` /
  :func:`context_from_dict` store the recent steps a saved model forecasts from.
- **The backtest contract**: :class:`Prediction` and :class:`ForecastModel`.
  A model is fitted on a history and then asked for forecasts at later
  origins. ``forecast(history, ...)`` may use ``history`` as conditioning
  context (the last lookback window, the filter state) but must not change
  what was learned in ``fit``; the backtest decides when to refit.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import pandas as pd

from rnnkit.data.download import RemoteFile, fetch
from rnnkit.data.files import check_file
from rnnkit.errors import UserError
from rnnkit.forecast.config import DataConfig
from rnnkit.forecast.series import (
    CALENDAR_FEATURES,
    GridError,
    SeriesData,
    calendar_features,
    from_frame,
)

__all__ = [
    "AIRLINE",
    "BUILTIN_DATASETS",
    "VIX",
    "ForecastModel",
    "Prediction",
    "context_from_dict",
    "context_to_dict",
    "describe",
    "fingerprint",
    "forecast_frame",
    "future_known",
    "load_builtin",
    "load_csv",
    "load_data",
    "load_like",
    "load_series",
    "series_options",
    "tail",
]

# Canonical sources of the built-in datasets (see ../shared/data/*/README.md).
AIRLINE = RemoteFile(
    url="https://raw.githubusercontent.com/mwaskom/seaborn-data/"
    "71e2436a092d714350de0fc409ca8a8714e7e78f/flights.csv",
    sha256="237d834127d9c6355630d8f443a7a2377b5925923010009b59809ba0b67f4fac",
    mirror_path="airline_passengers/flights.csv",
)
VIX = RemoteFile(
    url="https://raw.githubusercontent.com/datasets/finance-vix/"
    "6f56e2760520824b787cf6b85945c62186d38bc6/data/vix-daily.csv",
    sha256="fa8f8119bb2fa785bb408bcae541a1e630fef97f3acb160b94ed3115c1318db5",
    mirror_path="vix_daily/vix-daily.csv",
)
BUILTIN_DATASETS = ("sunspots", "airline", "vix")
_DATA_HINT = f"pass a CSV file or one of {', '.join(BUILTIN_DATASETS)}"


class Prediction(NamedTuple):
    """Forecasts for S series and H steps, in the units of the data.

    ``lower``/``upper`` are the quantiles (1-level)/2 and (1+level)/2 of the
    predictive distribution, all NaN for point-only models (the type never
    changes). ``point`` is the median for probabilistic models.
    """

    point: np.ndarray  # (S, H)
    lower: np.ndarray  # (S, H)
    upper: np.ndarray  # (S, H)

    @classmethod
    def point_only(cls, point: np.ndarray) -> Prediction:
        nan = np.full_like(point, np.nan, dtype=np.float64)
        return cls(np.asarray(point, dtype=np.float64), nan, nan.copy())


class ForecastModel(Protocol):
    """What :func:`rnnkit.forecast.backtest.backtest` needs from a model."""

    def fit(self, data: SeriesData) -> ForecastModel: ...

    def forecast(
        self, history: SeriesData, horizon: int, known_future: np.ndarray | None = None
    ) -> Prediction:
        """``known_future``: (H, Ck) known covariates for the forecast steps."""
        ...


# ----------------------------------------------------------------------------- sources


def load_csv(path: str | Path, **kwargs: object) -> SeriesData:
    """Read a CSV and validate it with :func:`from_frame`.

    ``time_col`` defaults to the first column.
    """
    path = check_file(path, what="data file", hint=_DATA_HINT)
    try:
        # index_col=False: a row with more fields than the header is an error, not a
        # silent shift of every column (pandas would take the first one as the index).
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(path, index_col=False)
    except pd.errors.ParserWarning as exc:
        raise UserError(
            f"cannot read {path} as CSV: a row has more fields than the header; check the "
            "delimiters (a decimal comma?) and the header"
        ) from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read {path} as CSV ({first}); check the file format") from exc
    except PermissionError:
        raise UserError(
            f"cannot read data file {path}: permission denied; check the permissions of the "
            "file and its folders (ls -l)"
        ) from None
    except OSError as exc:
        raise UserError(f"cannot read data file {path} ({exc.strerror or exc})") from exc
    if frame.shape[1] < 2:
        raise UserError(f"{path} needs a time column and at least one target column")
    if kwargs.get("time_col") is None:
        kwargs["time_col"] = frame.columns[0]
    return from_frame(frame, **kwargs)  # type: ignore[arg-type]


def load_builtin(name: str, **kwargs: object) -> SeriesData:
    """A built-in dataset.

    - ``sunspots``: yearly mean sunspot numbers 1700-2008 (statsmodels, offline);
      ``season=11`` (the solar cycle) for the seasonal naive baseline.
    - ``airline``: monthly airline passengers 1949-1960 (downloaded, sha256 checked).
    - ``vix``: daily VIX close 1990-2026 (downloaded); trading days as ``"steps"``.
    """
    if name == "sunspots":
        from statsmodels.datasets import sunspots

        frame = sunspots.load_pandas().data
        kwargs.setdefault("season", 11)
        return from_frame(frame, time_col="YEAR", target_cols=["SUNACTIVITY"], **kwargs)
    if name == "airline":
        raw = pd.read_csv(fetch(AIRLINE, quiet=True))
        months = pd.to_datetime(raw["year"].astype(str) + "-" + raw["month"], format="%Y-%B")
        frame = pd.DataFrame({"month": months, "passengers": raw["passengers"]})
        kwargs.setdefault("freq", "MS")
        return from_frame(frame, time_col="month", target_cols=["passengers"], **kwargs)
    if name == "vix":
        raw = pd.read_csv(fetch(VIX, quiet=True))
        kwargs.setdefault("freq", "steps")
        return from_frame(raw, time_col="DATE", target_cols=["CLOSE"], **kwargs)
    raise UserError(f"unknown dataset {name!r}; use one of {', '.join(BUILTIN_DATASETS)} or a CSV")


def load_series(
    data: str | Path | pd.DataFrame | pd.Series | np.ndarray | SeriesData, **kwargs: Any
) -> SeriesData:
    """Anything the forecaster accepts: a built-in name, a CSV path, a DataFrame
    (time column via ``time_col`` or the index), a pandas Series, an array (T,) or
    (T, S) of values at steps 0, 1, ... (columns ``y`` or ``y0, y1, ...``), or
    SeriesData (returned as is). ``kwargs`` go to :func:`~rnnkit.forecast.series.from_frame`."""
    if isinstance(data, SeriesData):
        return data
    if isinstance(data, np.ndarray):
        if data.ndim not in (1, 2) or not len(data):
            raise UserError(f"an array of values must have shape (T,) or (T, S), got {data.shape}")
        cols = ["y"] if data.ndim == 1 else [f"y{i}" for i in range(data.shape[1])]
        data = pd.DataFrame(data.reshape(len(data), -1), columns=cols)
        kwargs.pop("time_col", None)
    if isinstance(data, pd.Series):
        name = data.name if data.name is not None else "y"
        data = data.rename(name).to_frame()
        kwargs.pop("time_col", None)
    if isinstance(data, pd.DataFrame):
        return from_frame(data, **kwargs)
    if isinstance(data, str) and data in BUILTIN_DATASETS:
        return load_builtin(data, **kwargs)
    if isinstance(data, str | Path):
        return load_csv(data, **kwargs)
    raise UserError(
        f"cannot read data of type {type(data).__name__}; pass a CSV path, a DataFrame, "
        f"a Series, an array or a built-in name ({', '.join(BUILTIN_DATASETS)})"
    )


def _names(text: str) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] or None


def series_options(cfg: DataConfig, *, builtin: bool = False) -> dict[str, Any]:
    """The :func:`~rnnkit.forecast.series.from_frame` options that ``cfg`` sets.

    A built-in dataset names its own time and target columns, so ``time_col``
    and ``target`` apply to CSVs and DataFrames only.
    """
    kwargs: dict[str, Any] = {"fill": cfg.fill, "duplicates": cfg.duplicates}
    if not builtin:
        kwargs["time_col"] = cfg.time_col or None
        kwargs["target_cols"] = _names(cfg.target)
    if cfg.known or cfg.past:
        kwargs["known_cols"], kwargs["past_cols"] = _names(cfg.known), _names(cfg.past)
    if cfg.freq:
        kwargs["freq"] = cfg.freq
    if cfg.season:
        kwargs["season"] = cfg.season
    if cfg.calendar:
        kwargs["calendar"] = True
    return kwargs


def load_data(cfg: DataConfig, data: Any = None) -> SeriesData:
    """``data`` (default: ``cfg.source``) read and validated with ``cfg``'s options."""
    if data is None and not cfg.source:
        raise UserError("no data: pass data to fit() (or --data), or set data.source")
    data = cfg.source if data is None else data
    builtin = isinstance(data, str) and data in BUILTIN_DATASETS
    if isinstance(data, str | Path) and not builtin:
        check_file(data, what="data file", hint=_DATA_HINT)
    if isinstance(data, SeriesData):
        return data
    return load_series(data, **series_options(cfg, builtin=builtin))


# ------------------------------------------------------------------------ a fitted model's data


def describe(data: Any, cfg: DataConfig) -> str:
    """What ``data`` is, for messages and ``measured_on`` (None: ``cfg.source``)."""
    if data is None:
        return cfg.source
    if isinstance(data, str | Path):
        return str(data)
    return f"the {type(data).__name__}{_IN_MEMORY}"


_IN_MEMORY = " passed to fit()"


def fingerprint(data: SeriesData) -> str:
    """A short hash of the values and covariates (a resumed run checks its data with it)."""
    h = hashlib.sha256()
    for arr in (data.values, data.known, data.past):
        h.update(np.ascontiguousarray(arr, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def tail(data: SeriesData, keep: int) -> SeriesData:
    """The last ``keep`` steps."""
    return replace(
        data,
        index=data.index[-keep:],
        values=data.values[-keep:],
        known=data.known[-keep:],
        past=data.past[-keep:],
    )


def load_like(data: Any, meta: dict[str, Any], cfg: DataConfig) -> SeriesData:
    """``data`` read with the columns, grid and season of a fitted model (its ``meta_``);
    ``cfg`` gives the reading options (time column, fill, duplicates).

    None reads what the model was fitted on, when that was a file or a built-in name.
    """
    if data is None:
        data = meta.get("source") or cfg.source
        if not data or str(data).endswith(_IN_MEMORY):
            raise UserError(
                "this model was fitted on data in memory; pass the data to score "
                "(a CSV path, DataFrame, Series, array or built-in name)"
            )
    if not isinstance(data, SeriesData):
        known = [n for n in meta["known_names"] if n not in CALENDAR_FEATURES]
        builtin = isinstance(data, str) and data in BUILTIN_DATASETS
        roles = replace(
            cfg,
            target="" if builtin else ",".join(meta["names"]),
            known=",".join(known),
            past=",".join(meta["past_names"]),
            freq=meta["freq"] or "",
            season=meta["season"],
            calendar=len(known) < len(meta["known_names"]),
        )
        try:
            data = load_data(roles, data)
        except GridError as exc:  # the grid is the model's, not an option of this command
            raise UserError(
                f"the time stamps do not lie on the {exc.grid!r} grid this model was fitted "
                f"on (e.g. {exc.example}); give data on that grid"
            ) from exc
    if list(data.names) != list(meta["names"]):
        raise UserError(f"the data hold series {list(data.names)}, the model {meta['names']}")
    return data


def future_known(future: pd.Index, known_future: Any, meta: dict[str, Any]) -> np.ndarray:
    """(H, Ck) known covariates for the time stamps ``future``: from ``known_future``
    (a DataFrame or dict of columns), calendar features computed from the dates."""
    names = meta["known_names"]
    given = pd.DataFrame(known_future) if known_future is not None else pd.DataFrame()
    cols = {}
    cal = None
    for name in names:
        if name in given.columns:
            cols[name] = given[name].to_numpy(dtype=np.float64)[: len(future)]
        elif name in CALENDAR_FEATURES and isinstance(future, pd.DatetimeIndex):
            cal = cal if cal is not None else calendar_features(future, meta["freq"])
            cols[name] = cal[name].to_numpy()
        else:
            raise UserError(
                f"known covariate {name!r} has no future values; pass known_future with "
                f"a column {name!r} for the {len(future)} forecast steps"
            )
        if len(cols[name]) < len(future):
            raise UserError(
                f"known_future[{name!r}] has {len(cols[name])} rows, need {len(future)}"
            )
    return np.stack([cols[n] for n in names], axis=1)  # (H, Ck)


def forecast_frame(pred: Prediction, names: tuple[str, ...], future: pd.Index) -> pd.DataFrame:
    """``predict``'s table: indexed by the ``future`` time stamps, one block per series,
    columns ``series, horizon, forecast, lower, upper``."""
    frames = [
        pd.DataFrame(
            {
                "series": name,
                "horizon": np.arange(1, len(future) + 1),
                "forecast": pred.point[s],
                "lower": pred.lower[s],
                "upper": pred.upper[s],
            },
            index=future,
        )
        for s, name in enumerate(names)
    ]
    return pd.concat(frames)


def context_to_dict(data: SeriesData) -> dict[str, Any]:
    """The recent steps a saved model forecasts from, as JSON (``forecaster.json``'s
    ``history``; the names, grid and season are in its ``meta``)."""
    dated = isinstance(data.index, pd.DatetimeIndex)
    return {
        "index": [str(v) if dated else int(v) for v in data.index],
        "datetime": dated,
        "index_name": data.index.name,
        "values": data.values.tolist(),
        "known": data.known.tolist(),
        "past": data.past.tolist(),
    }


def context_from_dict(h: dict[str, Any], meta: dict[str, Any]) -> SeriesData:
    """Inverse of :func:`context_to_dict`."""
    index = pd.DatetimeIndex(h["index"]) if h["datetime"] else pd.Index(h["index"])
    return SeriesData(
        index=index.rename(h["index_name"]),
        values=np.asarray(h["values"]),
        names=tuple(meta["names"]),
        known=np.asarray(h["known"]),
        known_names=tuple(meta["known_names"]),
        past=np.asarray(h["past"]),
        past_names=tuple(meta["past_names"]),
        freq=meta["freq"],
        season=meta["season"],
    )
