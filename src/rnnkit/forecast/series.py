"""Time series for forecasting: the :class:`SeriesData` container and its validation.

Longer than 400 lines: the container and every check of bad input live together,
so each rule sits beside its message and the option that lifts it.

The container is :class:`SeriesData`: one shared time index, one or more target
columns (several targets = several series for one *global* model), and two
kinds of optional covariates:

- ``known`` covariates are known in advance for the forecast period (calendar
  features, planned promotions); the model sees their future values.
- ``past`` covariates are only observed up to the forecast origin; the model
  sees them over the lookback window only.

Bad input never gives a silent wrong answer: :func:`from_frame` turns missing
values, duplicate or irregular timestamps, non-numeric columns and too-short
series into a :class:`~rnnkit.errors.UserError` naming the problem and the
option that handles it (``fill="ffill"``, ``duplicates="mean"``, ``freq="B"``, ...).
Infinite values (``inf``, or ``1e400`` in a CSV, which reads as infinity) are
an error naming the column and the rows: they are a problem of the data, not
of the training. Hints name the command-line flag (``--data.fill``) and the
Python option (``fill=``). Reading files and built-in datasets is
:mod:`rnnkit.forecast.data`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from rnnkit.errors import UserError

__all__ = [
    "CALENDAR_FEATURES",
    "FILL_METHODS",
    "GridError",
    "SeriesData",
    "calendar_features",
    "from_frame",
    "infer_season",
]

FILL_METHODS = ("none", "ffill", "interpolate", "drop")
CALENDAR_FEATURES = ("month_sin", "month_cos", "weekday_sin", "weekday_cos")


def _flag(key: str, value: str) -> str:
    """How a user sets data option ``key``: the flag of every forecast command, then Python."""
    return f"--data.{key}={value} (Python: {key}={value!r})"


class GridError(UserError):
    """Time stamps off the grid that was asked for (``grid``; ``example``: one of them)."""

    def __init__(self, message: str, *, grid: str, example: object) -> None:
        super().__init__(message)
        self.grid, self.example = grid, example


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


# ----------------------------------------------------------------------------- validation


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
    values = series.to_numpy(dtype=np.float64)
    infinite = np.isinf(values)
    if infinite.any():
        # The cause is the data: training on it would only end in a NaN loss.
        stamps = [_stamp(t) for t in frame.index[infinite][:3]]
        more = f" and {int(infinite.sum()) - 3} more" if infinite.sum() > 3 else ""
        raise UserError(
            f"{role} column {col!r} holds {int(infinite.sum())} infinite value(s) at "
            f"{', '.join(stamps)}{more} ('inf', or a number beyond 1.8e308 such as 1e400); "
            f"replace them with finite numbers, or empty those cells and fill the gaps "
            f"with {_flag('fill', 'interpolate')}"
        )
    return values


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
        season: the seasonal period (None or 0: from the frequency).
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
                f"time column {time_col!r} not found; columns are {list(frame.columns)} "
                f"(name the time column with --data.time_col=NAME, Python: time_col=)"
            )
        frame = frame.set_index(time_col)
    if len(frame) < 3:
        raise UserError(f"series too short: {len(frame)} rows; need at least 3")
    known_cols, past_cols = list(known_cols or []), list(past_cols or [])
    for col in known_cols + past_cols + list(target_cols or []):
        if col not in frame.columns:
            raise UserError(f"column {col!r} not found; columns are {list(frame.columns)}")
    if target_cols is None:
        rest = [c for c in frame.columns if c not in known_cols + past_cols]
        target_cols = [c for c in rest if pd.api.types.is_numeric_dtype(frame[c])]
        for c in rest if not target_cols else []:
            if pd.to_numeric(frame[c], errors="coerce").notna().any():
                _numeric_column(frame, c, "target")  # numbers and text: name a bad value
        if not target_cols:
            raise UserError(
                f"no numeric target column among {rest}; name the target columns with "
                "--data.target=COL,... (Python: target='COL,...', or from_frame's "
                "target_cols=[...]) and make sure they hold numbers"
            )
    target_cols = list(target_cols)
    frame = frame[target_cols + known_cols + past_cols]

    # --- the time index: datetime or integer, sorted, unique
    index = frame.index
    stamps = index.to_numpy()
    if (
        pd.api.types.is_float_dtype(index)
        and np.all(np.abs(stamps) < 2**53)  # finite, and exact as integers (NaN: False)
        and np.all(np.mod(stamps, 1) == 0)
    ):
        index = index.astype(np.int64)  # years stored as 1700.0
    if not pd.api.types.is_integer_dtype(index) and not isinstance(index, pd.DatetimeIndex):
        try:
            with warnings.catch_warnings():  # pandas' format guessing and casts: not ours
                warnings.simplefilter("ignore", UserWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                index = pd.DatetimeIndex(pd.to_datetime(index))
        except (ValueError, TypeError, OverflowError) as exc:
            example = index[0] if len(index) else None
            raise UserError(
                f"cannot parse the time column as dates or integers (e.g. {example!r}); "
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
                f"aggregate them first or pass {_flag('duplicates', 'mean')} or 'last'"
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
        try:
            full = pd.date_range(frame.index[0], frame.index[-1], freq=grid)
        except (ValueError, TypeError) as exc:
            raise UserError(
                f"freq={grid!r} is not a pandas frequency alias ({exc}); use e.g. D, B, W, "
                f"MS, h, or steps ({_flag('freq', 'D')})"
            ) from exc
        _check_grid_size(len(full), len(frame), grid)
        if len(full) != len(frame) or not full.equals(frame.index):
            if not frame.index.isin(full).all():
                example = frame.index[~frame.index.isin(full)][0]
                raise GridError(
                    f"timestamps do not lie on the {grid!r} grid (e.g. {example}); pass the "
                    f"right grid ({_flag('freq', 'D')}) or --data.freq=steps to treat rows "
                    "as consecutive observations",
                    grid=grid,
                    example=example,
                )
            frame = frame.reindex(full)
    elif grid is None and pd.api.types.is_integer_dtype(frame.index) and len(frame) > 1:
        steps = np.diff(frame.index.to_numpy())
        step = int(np.min(steps))
        if np.any(steps != step):
            span = (int(frame.index[-1]) - int(frame.index[0])) // step + 1
            _check_grid_size(span, len(frame), f"every {step} steps")
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
    if season is not None and season < 0:
        raise UserError(f"season must be >= 1 (0: from the frequency), got {season}")
    m = season if season else infer_season(grid)
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


def _stamp(t: object) -> str:
    """A time stamp for messages: ``2001-09-01`` rather than ``2001-09-01 00:00:00``."""
    if isinstance(t, pd.Timestamp) and t == t.normalize():
        return str(t.date())
    return str(t)


def _check_grid_size(n_grid: int, n_rows: int, grid: str) -> None:
    """Refuse a reindex that would turn a few rows into a vast, mostly empty grid."""
    if n_grid > max(1000 * n_rows, 100_000):
        raise UserError(
            f"reindexing {n_rows} rows onto the {grid} grid would make {n_grid:,} rows, almost "
            "all missing; check the time column, or pass --data.freq=steps to treat rows as "
            "consecutive observations"
        )


def _coerce_numeric(s: pd.Series) -> pd.Series:
    return s if pd.api.types.is_numeric_dtype(s) else pd.to_numeric(s, errors="coerce")


def _resolve_grid(index: pd.Index, freq: str | None) -> str | None:
    if not isinstance(index, pd.DatetimeIndex):
        if freq not in (None, "steps"):
            raise UserError(
                f"freq={freq!r} (--data.freq) needs a datetime time column; the time column "
                "holds integers"
            )
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
        f"timestamps are irregular (steps from {gaps.min()} to {gaps.max()}); pass "
        f"{_flag('freq', 'D')} (or another pandas alias) to reindex onto a grid and "
        "--data.fill=ffill for the gaps, or --data.freq=steps to treat rows as consecutive "
        "observations (e.g. trading days)"
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
    first = _stamp(frame.index[nan.any(axis=1).to_numpy()][0])
    if fill == "none":
        raise UserError(
            f"{int(nan.to_numpy().sum())} missing values (first at {first}); pass "
            f"{_flag('fill', 'ffill')} or 'interpolate' to fill them, or clean the data"
        )
    if fill == "drop":
        if grid not in ("steps", None) or pd.api.types.is_integer_dtype(frame.index):
            raise UserError(
                "fill='drop' would make the time grid irregular; use it with "
                f"{_flag('freq', 'steps')}, or use --data.fill=ffill or interpolate"
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


def calendar_features(index: pd.DatetimeIndex, freq: str | None) -> pd.DataFrame:
    """Sine/cosine of the month of year (monthly and coarser) or of the weekday
    (daily and finer): smooth, bounded, and known for any future date."""
    season = infer_season(freq)
    if season in (12, 4, 52, 1):
        phase = 2 * np.pi * (index.month.to_numpy() - 1) / 12
        names = ("month_sin", "month_cos")
    else:
        phase = 2 * np.pi * index.day_of_week.to_numpy() / 7
        names = ("weekday_sin", "weekday_cos")
    return pd.DataFrame({names[0]: np.sin(phase), names[1]: np.cos(phase)}, index=index)
