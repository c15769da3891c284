"""Time series for forecasting: loading, validation, filling, transforms, scalers, windows.

The container is :class:`SeriesData`: one shared time index, one or more target
columns (several targets = several series for one *global* model), and two
kinds of optional covariates:

- ``known`` covariates are known in advance for the forecast period (calendar
  features, planned promotions); the model sees their future values.
- ``past`` covariates are only observed up to the forecast origin; the model
  sees them over the lookback window only.

Everything that is learned from data (:class:`StandardScaler`) follows the
scikit-learn convention: arguments in ``__init__``, validation in ``fit``,
learned attributes end with ``_``. The forecasting code fits scalers on the
part of the series before each forecast origin only.

Bad input never gives a silent wrong answer: missing values, duplicate or
irregular timestamps, non-numeric columns and too-short series raise
:class:`~rnnkit.errors.UserError` naming the problem and the option that
handles it (``fill="ffill"``, ``duplicates="mean"``, ``freq="B"``, ...).

Windows, for a forecast origin ``t`` (the index of the first forecast step),
lookback ``L`` and horizon ``H``::

    inputs   x[t-L], ..., x[t-1]      (only values before the origin)
    targets  y[t],   ..., y[t+H-1]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from rnnkit.data.download import RemoteFile, fetch
from rnnkit.errors import UserError

__all__ = [
    "AIRLINE",
    "BUILTIN_DATASETS",
    "CALENDAR_FEATURES",
    "FILL_METHODS",
    "TRANSFORMS",
    "VIX",
    "SeriesData",
    "StandardScaler",
    "TargetTransform",
    "calendar_features",
    "from_frame",
    "infer_season",
    "load_builtin",
    "load_csv",
    "load_series",
    "make_windows",
]

FILL_METHODS = ("none", "ffill", "interpolate", "drop")
TRANSFORMS = ("none", "log", "diff", "log-return")

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
CALENDAR_FEATURES = ("month_sin", "month_cos", "weekday_sin", "weekday_cos")


@dataclass(frozen=True)
class SeriesData:
    """Aligned time series on one index.

    Attributes:
        index: (T,) the time stamps: a ``DatetimeIndex`` or an integer index
            (years, step numbers). Strictly increasing.
        values: (T, S) float64 targets, one column per series.
        names: the S target names.
        known: (T, Ck) covariates known in advance (future values available).
        known_names: the Ck names.
        past: (T, Cp) covariates observed only up to the origin.
        past_names: the Cp names.
        freq: a pandas offset alias (``"MS"``, ``"D"``, ``"B"``) for a datetime
            index on a regular grid, ``"steps"`` when rows are consecutive
            observations with irregular stamps (trading days), or ``None`` for
            an integer index.
        season: the seasonal period in steps (1 = none) used by the seasonal
            naive baseline and the MASE scale.
    """

    index: pd.Index
    values: np.ndarray
    names: tuple[str, ...]
    known: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    known_names: tuple[str, ...] = ()
    past: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    past_names: tuple[str, ...] = ()
    freq: str | None = None
    season: int = 1

    def __post_init__(self) -> None:
        t = len(self.index)
        values = np.asarray(self.values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]  # (T,) -> (T, 1)
        object.__setattr__(self, "values", values)
        for attr, names in (("known", self.known_names), ("past", self.past_names)):
            arr = np.asarray(getattr(self, attr), dtype=np.float64)
            if arr.size == 0:
                arr = np.zeros((t, 0))
            object.__setattr__(self, attr, arr)
            if arr.shape != (t, len(names)):
                raise ValueError(f"{attr} must have shape ({t}, {len(names)}), got {arr.shape}")
        if values.shape != (t, len(self.names)):
            raise ValueError(f"values must have shape ({t}, {len(self.names)}), got {values.shape}")
        if self.season < 1:
            raise ValueError(f"season must be >= 1, got {self.season}")

    def __len__(self) -> int:
        return len(self.index)

    @property
    def n_series(self) -> int:
        return self.values.shape[1]

    def head(self, stop: int) -> SeriesData:
        """The first ``stop`` steps (everything strictly before index ``stop``)."""
        return replace(
            self,
            index=self.index[:stop],
            values=self.values[:stop],
            known=self.known[:stop],
            past=self.past[:stop],
        )

    def future_index(self, horizon: int) -> pd.Index:
        """The ``horizon`` time stamps after the last one (a best guess in ``"steps"`` mode)."""
        last = self.index[-1]
        if self.freq is None:
            step = int(self.index[-1] - self.index[-2]) if len(self.index) > 1 else 1
            return pd.Index([last + step * (k + 1) for k in range(horizon)], name=self.index.name)
        freq = "B" if self.freq == "steps" else self.freq
        out = pd.date_range(last, periods=horizon + 1, freq=freq)[1:]
        return out.rename(self.index.name)

    def to_frame(self) -> pd.DataFrame:
        cols = {n: self.values[:, i] for i, n in enumerate(self.names)}
        cols.update({n: self.known[:, i] for i, n in enumerate(self.known_names)})
        cols.update({n: self.past[:, i] for i, n in enumerate(self.past_names)})
        return pd.DataFrame(cols, index=self.index)


# ----------------------------------------------------------------------------- loading


def infer_season(freq: str | None) -> int:
    """Seasonal period from a pandas frequency: 12 monthly, 4 quarterly, 7 daily, 5 business
    daily, 52 weekly, 24 hourly; 1 (none) for yearly, integer and ``"steps"`` indexes."""
    if not freq or freq == "steps":
        return 1
    base = freq.lstrip("0123456789").split("-")[0].upper()
    for prefix, m in (
        ("MS", 12),
        ("ME", 12),
        ("M", 12),
        ("QS", 4),
        ("QE", 4),
        ("Q", 4),
        ("W", 52),
        ("B", 5),
        ("D", 7),
        ("H", 24),
        ("h", 24),
    ):
        if base.startswith(prefix.upper()):
            return m
    return 1


def _numeric_column(frame: pd.DataFrame, col: str, role: str) -> np.ndarray:
    series = frame[col]
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        coerced = pd.to_numeric(series, errors="coerce")
        bad = series[coerced.isna() & series.notna()]
        if len(bad):
            raise UserError(
                f"{role} column {col!r} is not numeric (e.g. {bad.iloc[0]!r} at row "
                f"{bad.index[0]}); drop it or convert it to numbers"
            )
        series = coerced
    return series.to_numpy(dtype=np.float64)


def from_frame(
    frame: pd.DataFrame,
    *,
    time_col: str | None = None,
    target_cols: list[str] | None = None,
    known_cols: list[str] | None = None,
    past_cols: list[str] | None = None,
    fill: str = "none",
    duplicates: str = "error",
    freq: str | None = None,
    season: int | None = None,
    calendar: bool = False,
) -> SeriesData:
    """Validate a DataFrame and turn it into :class:`SeriesData`.

    Args:
        frame: one row per time step. The time is ``time_col``, or the index
            when ``time_col`` is None.
        target_cols: the series to forecast (default: every numeric column that
            is not a covariate).
        known_cols / past_cols: covariates known in advance / observed only.
        fill: what to do with missing values: ``"none"`` raises, ``"ffill"``
            carries the last value forward (a leading gap is an error),
            ``"interpolate"`` interpolates linearly between observations,
            ``"drop"`` removes incomplete rows (only with ``freq="steps"``).
        duplicates: ``"error"``, ``"mean"`` or ``"last"`` for repeated stamps.
        freq: the grid. None infers it; an alias such as ``"D"`` reindexes onto
            that grid (new gaps are then missing values handled by ``fill``);
            ``"steps"`` treats rows as consecutive observations.
        season: the seasonal period (default from the frequency).
        calendar: add sine/cosine month or weekday features as known covariates.

    Raises:
        UserError: for each kind of bad input, with what to do.
    """
    if fill not in FILL_METHODS:
        raise UserError(f"fill must be one of {', '.join(FILL_METHODS)}, got {fill!r}")
    if duplicates not in ("error", "mean", "last"):
        raise UserError(f"duplicates must be 'error', 'mean' or 'last', got {duplicates!r}")
    frame = frame.copy()
    if time_col is not None:
        if time_col not in frame.columns:
            raise UserError(
                f"time column {time_col!r} not found; columns are {list(frame.columns)}"
            )
        frame = frame.set_index(time_col)
    known_cols, past_cols = list(known_cols or []), list(past_cols or [])
    for col in known_cols + past_cols + list(target_cols or []):
        if col not in frame.columns:
            raise UserError(f"column {col!r} not found; columns are {list(frame.columns)}")
    if target_cols is None:
        rest = [c for c in frame.columns if c not in known_cols + past_cols]
        target_cols = [c for c in rest if pd.api.types.is_numeric_dtype(frame[c])]
        if not target_cols:
            raise UserError(
                f"no numeric target column among {rest}; name the targets with target_cols "
                "(--target) and make sure they hold numbers"
            )
    target_cols = list(target_cols)
    frame = frame[target_cols + known_cols + past_cols]

    # --- the time index: datetime or integer, sorted, unique
    index = frame.index
    if pd.api.types.is_float_dtype(index) and np.all(np.mod(index.to_numpy(), 1) == 0):
        index = index.astype(np.int64)  # years stored as 1700.0
    if not pd.api.types.is_integer_dtype(index) and not isinstance(index, pd.DatetimeIndex):
        try:
            index = pd.DatetimeIndex(pd.to_datetime(index))
        except (ValueError, TypeError) as exc:
            raise UserError(
                f"cannot parse the time column as dates or integers (e.g. {index[0]!r}); "
                "use ISO dates (2020-01-31) or integer steps"
            ) from exc
    frame.index = index
    if index.hasnans:
        raise UserError("the time column has missing values; remove those rows")
    frame = frame.sort_index(kind="stable")
    dup = frame.index.duplicated(keep=False)
    if dup.any():
        if duplicates == "error":
            raise UserError(
                f"duplicate timestamps ({int(dup.sum())} rows, first {frame.index[dup][0]}); "
                "aggregate them first or pass duplicates='mean' / 'last' (--duplicates)"
            )
        numeric = frame.apply(lambda s: _coerce_numeric(s))
        grouped = numeric.groupby(level=0, sort=True)
        frame = grouped.mean() if duplicates == "mean" else grouped.last()

    values = {c: _numeric_column(frame, c, "target") for c in target_cols}
    covs = {c: _numeric_column(frame, c, "covariate") for c in known_cols + past_cols}
    frame = pd.DataFrame({**values, **covs}, index=frame.index)

    # --- regular grid
    grid = _resolve_grid(frame.index, freq)
    if grid not in (None, "steps"):
        full = pd.date_range(frame.index[0], frame.index[-1], freq=grid)
        if len(full) != len(frame) or not full.equals(frame.index):
            if not frame.index.isin(full).all():
                raise UserError(
                    f"timestamps do not lie on the {grid!r} grid (e.g. "
                    f"{frame.index[~frame.index.isin(full)][0]}); pass the right freq or "
                    "freq='steps' to treat rows as consecutive observations"
                )
            frame = frame.reindex(full)
    elif grid is None and pd.api.types.is_integer_dtype(frame.index) and len(frame) > 1:
        steps = np.diff(frame.index.to_numpy())
        step = int(np.min(steps))
        if np.any(steps != step):
            full = pd.Index(np.arange(frame.index[0], frame.index[-1] + 1, step), name=index.name)
            if not frame.index.isin(full).all():
                raise UserError(
                    "integer time steps are irregular and not multiples of one step; "
                    "resample the data onto a regular grid"
                )
            frame = frame.reindex(full)

    # --- missing values
    if frame.isna().to_numpy().any():
        frame = _fill(frame, fill, grid)
    if len(frame) < 3:
        raise UserError(f"series too short: {len(frame)} rows; need at least 3")
    if calendar:
        if not isinstance(frame.index, pd.DatetimeIndex):
            raise UserError("calendar features need a datetime time column")
        cal = calendar_features(frame.index, grid)
        frame = pd.concat([frame, cal], axis=1)
        known_cols = known_cols + list(cal.columns)
    m = season if season is not None else infer_season(grid)
    return SeriesData(
        index=frame.index,
        values=frame[target_cols].to_numpy(),
        names=tuple(str(c) for c in target_cols),
        known=frame[known_cols].to_numpy(),
        known_names=tuple(str(c) for c in known_cols),
        past=frame[past_cols].to_numpy(),
        past_names=tuple(str(c) for c in past_cols),
        freq=grid,
        season=int(m),
    )


def _coerce_numeric(s: pd.Series) -> pd.Series:
    return s if pd.api.types.is_numeric_dtype(s) else pd.to_numeric(s, errors="coerce")


def _resolve_grid(index: pd.Index, freq: str | None) -> str | None:
    if not isinstance(index, pd.DatetimeIndex):
        if freq not in (None, "steps"):
            raise UserError(f"freq={freq!r} needs a datetime time column; the index is integer")
        return None
    if freq is not None:
        return freq
    if len(index) < 3:
        return "steps"
    inferred = _infer_freq(index)
    if inferred is not None:
        return inferred
    gaps = pd.Series(index[1:] - index[:-1])
    raise UserError(
        f"timestamps are irregular (steps from {gaps.min()} to {gaps.max()}); pass freq='D' "
        "(or another alias) to reindex onto a grid and fill='ffill' for the gaps, or "
        "freq='steps' to treat rows as consecutive observations (e.g. trading days)"
    )


def _infer_freq(index: pd.DatetimeIndex) -> str | None:
    """``pd.infer_freq`` as a string alias, without pandas 3's FutureWarning."""
    try:
        with pd.option_context("future.infer_freq_returns_offset", True):
            off = pd.infer_freq(index)
    except (KeyError, pd.errors.OptionError):  # pandas < 3 has no such option
        off = pd.infer_freq(index)
    return off if off is None or isinstance(off, str) else off.freqstr


def _fill(frame: pd.DataFrame, fill: str, grid: str | None) -> pd.DataFrame:
    nan = frame.isna()
    first = frame.index[nan.any(axis=1).to_numpy()][0]
    if fill == "none":
        raise UserError(
            f"{int(nan.to_numpy().sum())} missing values (first at {first}); pass fill='ffill' "
            "or 'interpolate' (--fill) to fill them, or clean the data"
        )
    if fill == "drop":
        if grid not in ("steps", None) or pd.api.types.is_integer_dtype(frame.index):
            raise UserError(
                "fill='drop' would make the time grid irregular; use it with freq='steps' "
                "or use fill='ffill' / 'interpolate'"
            )
        return frame.dropna()
    if nan.iloc[0].any():
        raise UserError(
            f"the first row ({frame.index[0]}) has missing values that {fill!r} cannot fill; "
            "drop the leading rows"
        )
    if fill == "ffill":
        return frame.ffill()
    return frame.interpolate(method="linear", limit_direction="forward")


def load_csv(path: str | Path, **kwargs: object) -> SeriesData:
    """Read a CSV and validate it with :func:`from_frame`.

    ``time_col`` defaults to the first column.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"data file not found: {path}; pass a CSV path or one of {', '.join(BUILTIN_DATASETS)}"
        )
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path} as CSV ({exc}); check the file format") from exc
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
    data: str | Path | pd.DataFrame | pd.Series | SeriesData, **kwargs: object
) -> SeriesData:
    """Anything the forecaster accepts: a built-in name, a CSV path, a DataFrame
    (time column via ``time_col`` or the index), a pandas Series, or SeriesData."""
    if isinstance(data, SeriesData):
        return data
    if isinstance(data, pd.Series):
        name = data.name if data.name is not None else "y"
        return from_frame(data.rename(name).to_frame(), **kwargs)  # type: ignore[arg-type]
    if isinstance(data, pd.DataFrame):
        return from_frame(data, **kwargs)  # type: ignore[arg-type]
    if isinstance(data, str) and data in BUILTIN_DATASETS:
        return load_builtin(data, **kwargs)
    if isinstance(data, str | Path):
        return load_csv(data, **kwargs)
    raise UserError(
        f"cannot read data of type {type(data).__name__}; pass a CSV, DataFrame, "
        "Series or built-in name"
    )


def calendar_features(index: pd.DatetimeIndex, freq: str | None) -> pd.DataFrame:
    """Sine/cosine of the month of year (monthly and coarser) or of the weekday
    (daily and finer): smooth, bounded, and known for any future date."""
    season = infer_season(freq)
    if season in (12, 4, 52, 1):
        phase = 2 * np.pi * (index.month.to_numpy() - 1) / 12
        names = ("month_sin", "month_cos")
    else:
        phase = 2 * np.pi * index.dayofweek.to_numpy() / 7
        names = ("weekday_sin", "weekday_cos")
    return pd.DataFrame({names[0]: np.sin(phase), names[1]: np.cos(phase)}, index=index)


# ----------------------------------------------------------------------------- transforms


class TargetTransform:
    """A fixed (never fitted) transform of the target levels ``y``.

    ``f`` is the identity (``"none"``, ``"diff"``) or ``log`` (``"log"``,
    ``"log-return"``). The differencing kinds (``"diff"``, ``"log-return"``)
    model changes: the model inputs are one-step changes
    ``z_t = f(y_t) - f(y_{t-1})`` and the forecast for step k after origin t
    is the cumulative change ``f(y_{t+k-1}) - f(y_{t-1})``, mapped back as
    ``y = f^-1(f(y_{t-1}) + change)``. Because that map is monotone, quantiles
    of the change map to quantiles of the level exactly.
    """

    def __init__(self, kind: str = "none") -> None:
        if kind not in TRANSFORMS:
            raise UserError(
                f"target transform must be one of {', '.join(TRANSFORMS)}, got {kind!r}"
            )
        self.kind = kind

    @property
    def differenced(self) -> bool:
        return self.kind in ("diff", "log-return")

    @property
    def uses_log(self) -> bool:
        return self.kind in ("log", "log-return")

    def check(self, y: np.ndarray) -> None:
        if self.uses_log and np.any(y <= 0):
            raise UserError(
                f"target transform {self.kind!r} needs positive values, found "
                f"{float(np.min(y))}; use --target-transform diff or none"
            )

    def f(self, y: np.ndarray) -> np.ndarray:
        return np.log(y) if self.uses_log else y

    def f_inv(self, v: np.ndarray) -> np.ndarray:
        return np.exp(v) if self.uses_log else v

    def model_series(self, y: np.ndarray) -> np.ndarray:
        """(T, S) levels -> (T, S) model-space series (row 0 is NaN when differenced)."""
        v = self.f(y)
        if not self.differenced:
            return v
        z = np.full_like(v, np.nan)
        z[1:] = v[1:] - v[:-1]
        return z

    def to_levels(self, out: np.ndarray, last_level: np.ndarray) -> np.ndarray:
        """Model-space forecasts (S, H, ...) -> levels, given the level before the origin (S,)."""
        if not self.differenced:
            return self.f_inv(out)
        base = self.f(last_level).reshape((-1,) + (1,) * (out.ndim - 1))  # (S, 1, ...)
        return self.f_inv(base + out)


class StandardScaler:
    """Per-column standardization ``(x - mean_) / scale_``, fitted on training rows only.

    Attributes (after :meth:`fit`):
        mean_: (C,) column means, NaN rows ignored.
        scale_: (C,) column standard deviations (1 where a column is constant).
        n_samples_: rows used.
    """

    def __init__(self, *, with_mean: bool = True) -> None:
        self.with_mean = with_mean

    def fit(self, x: np.ndarray) -> StandardScaler:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"StandardScaler.fit expects a 2-D array (T, C), got {x.shape}")
        ok = ~np.isnan(x).any(axis=1)
        if ok.sum() < 2:
            raise UserError("too few rows to fit the scaler (need at least 2 without NaN)")
        rows = x[ok]
        self.mean_ = rows.mean(axis=0) if self.with_mean else np.zeros(x.shape[1])
        scale = rows.std(axis=0)
        self.scale_ = np.where(scale > 1e-12, scale, 1.0)
        self.n_samples_ = int(ok.sum())
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.mean_) / self.scale_

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) * self.scale_ + self.mean_

    def to_dict(self) -> dict[str, object]:
        return {
            "with_mean": self.with_mean,
            "mean_": self.mean_.tolist(),
            "scale_": self.scale_.tolist(),
            "n_samples_": self.n_samples_,
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> StandardScaler:
        out = cls(with_mean=bool(d["with_mean"]))
        out.mean_ = np.asarray(d["mean_"], dtype=np.float64)
        out.scale_ = np.asarray(d["scale_"], dtype=np.float64)
        out.n_samples_ = int(d["n_samples_"])  # type: ignore[arg-type]
        return out


# ----------------------------------------------------------------------------- windows


def make_windows(
    inputs: np.ndarray,
    targets: np.ndarray,
    lookback: int,
    horizon: int,
    origins: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut (input window, target block) pairs.

    Args:
        inputs: (T, D) model inputs per step.
        targets: (T, K) target per step; row ``t + k`` is the target for step k
            after origin t (for cumulative targets, pass a (T, H) array whose
            row t already holds the H cumulative values and ``horizon=1``).
        origins: the origins t to use (default every valid one,
            ``lookback <= t <= T - horizon``).

    Returns:
        x: (N, lookback, D) with ``x[n] = inputs[t-lookback : t]``.
        y: (N, horizon, K) with ``y[n] = targets[t : t+horizon]``.
    """
    t_len = inputs.shape[0]
    if origins is None:
        origins = np.arange(lookback, t_len - horizon + 1)
    origins = np.asarray(origins, dtype=np.int64)
    if origins.size and (origins.min() < lookback or origins.max() > t_len - horizon):
        raise ValueError(f"origins must lie in [{lookback}, {t_len - horizon}]")
    # Fancy indexing with (N, L) and (N, H) index grids instead of a Python loop.
    xi = origins[:, None] + np.arange(-lookback, 0)[None, :]  # (N, L)
    yi = origins[:, None] + np.arange(horizon)[None, :]  # (N, H)
    return inputs[xi], targets[yi]


def _finite_rows(*arrays: np.ndarray) -> np.ndarray:
    ok = np.ones(arrays[0].shape[0], dtype=bool)
    for a in arrays:
        ok &= np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
    return ok


def min_length(lookback: int, horizon: int, differenced: bool) -> int:
    """Shortest history that yields at least a handful of training windows."""
    return lookback + horizon + int(differenced) + max(8, math.ceil(0.1 * lookback))
