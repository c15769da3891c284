"""The APIs that take files: speech (a WAV/FLAC upload) and forecast (JSON or a CSV upload).

An upload is written to a private temporary folder under its own (sanitised) file
name and read by the estimator exactly as the command line reads a file, so a
corrupt WAV or a CSV with a text column gets the command line's message, naming
the uploaded file rather than the temporary folder.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, UploadFile
from pydantic import BaseModel, Field

from rnnkit.errors import UserError
from rnnkit.serve.errors import ApiError, check_most
from rnnkit.serve.models import Limits, ServedModel, jsonable
from rnnkit.serve.pool import WorkerPool

__all__ = ["forecast", "speech"]

HISTORY_POINTS = 2000  # the most history steps a forecast answer returns for plotting


def _safe_name(name: str | None, default: str) -> str:
    base = Path(name or "").name
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._")
    return base[:100] or default


def _in_tmp(data: bytes, name: str, work: Any) -> Any:
    """``work(path)`` on ``data`` written to ``name`` in a private temporary folder;
    a :class:`UserError` names the file as uploaded, not its temporary path."""
    with tempfile.TemporaryDirectory(prefix="rnnkit-serve-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            return work(path)
        except UserError as exc:
            raise UserError(str(exc).replace(f"{tmp}/", "")) from None


# -- speech ---------------------------------------------------------------------------


class Word(BaseModel):
    word: str
    start: float = Field(description="seconds from the start of the recording")
    end: float


class TranscribeResponse(BaseModel):
    text: str
    words: list[Word]
    seconds: float = Field(description="the recording's duration")
    beam: int


def _duration(path: Path) -> float | None:
    """Seconds of audio in ``path`` from its header; None when unreadable (the estimator
    then says why, with the command line's message)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception:  # noqa: BLE001 - any failure: leave the message to the estimator
        return None
    return float(info.frames) / float(info.samplerate) if info.samplerate else None


def speech(app: FastAPI, served: ServedModel, pool: WorkerPool, limits: Limits, deps) -> None:
    est = served.estimator

    def work(data: bytes, name: str, beam: int) -> dict[str, Any]:
        def run(path: Path) -> dict[str, Any]:
            seconds = _duration(path)
            if seconds is not None and seconds > limits.max_audio_seconds:
                raise ApiError(
                    413,
                    f"{name} is {seconds:.1f} s long; this server takes recordings of at most "
                    f"{limits.max_audio_seconds:g} s (rnnkit serve --max-audio-seconds)",
                )
            t = est.transcribe([path], beam=beam)[0]
            words = [{"word": w.word, "start": w.start, "end": w.end} for w in t.words]
            return {"text": t.text, "words": words, "seconds": seconds or 0.0, "beam": beam}

        return _in_tmp(data, name, run)

    @app.post(
        f"/api/{served.name}/transcribe",
        tags=[served.name],
        dependencies=deps,
        response_model=TranscribeResponse,
        operation_id=f"{served.name}_transcribe",
        summary=f"Transcribe a recording ({served.name})",
    )
    async def transcribe(
        file: Annotated[UploadFile, File(description="a WAV, FLAC or OGG recording (any rate)")],
        beam: Annotated[int, Form(description="1: greedy decoding; > 1: prefix beam search")] = 1,
    ) -> dict[str, Any]:
        """The transcript and each word's start and end time. Stereo is averaged to mono
        and any sample rate is resampled to the model's."""
        check_most(beam, limits.max_beam, "beam", "--max-beam")
        if beam < 1:
            raise UserError(f"beam must be >= 1, got {beam}")
        data = await file.read()
        name = _safe_name(file.filename, "recording.wav")
        if not data:
            raise UserError(f"{name} is empty; send a WAV or FLAC recording")
        return await pool.call(work, data, name, beam)


# -- forecast --------------------------------------------------------------------------


class ForecastRequest(BaseModel):
    series: list[float | None] | dict[str, list[float | None]] | None = Field(
        None,
        description="history to forecast from: the values of the model's one series, or "
        "{name: values} for each series it was trained on; null: the end of its "
        "training data",
        examples=[[10.1, 10.9, 11.4, 10.2, 9.3, 9.0, 9.6, 10.4, 11.1, 11.3, 10.6, 9.8, 9.2]],
    )
    index: list[str | int] | None = Field(
        None, description="the time stamps of the values (dates or integers; default 0, 1, ...)"
    )
    horizon: int | None = Field(None, description="steps to forecast (default: the model's)")


class ForecastResponse(BaseModel):
    series: list[str]
    horizon: int
    level: float | None = Field(description="the interval's coverage (null: no interval)")
    history: dict[str, Any] = Field(
        description=f"{{index, values: {{series: [...]}}}}, the last {HISTORY_POINTS} steps at most"
    )
    forecast: dict[str, Any] = Field(
        description="{index, values: {series: {forecast, lower, upper}}}"
    )


def _stamps(index: Any) -> list[Any]:
    """Time stamps as JSON: numbers stay numbers, dates become ISO strings."""
    out = []
    for v in index:
        if hasattr(v, "isoformat"):
            out.append(v.isoformat())
        else:
            v = v.item() if hasattr(v, "item") else v
            out.append(v if isinstance(v, int | float) else str(v))
    return out


def _answer(served: ServedModel, frame: Any, history: dict[str, Any], horizon: int) -> dict:
    names = list(dict.fromkeys(str(s) for s in frame["series"]))
    blocks = {n: frame[frame["series"].astype(str) == n] for n in names}
    first = blocks[names[0]]
    values = {
        n: {k: b[k].tolist() for k in ("forecast", "lower", "upper")} for n, b in blocks.items()
    }
    return jsonable(
        {
            "series": names,
            "horizon": horizon,
            "level": served.info.get("level"),
            "history": history,
            "forecast": {"index": _stamps(first.index.tolist()), "values": values},
        }
    )


def _history(index: list[Any], columns: dict[str, list[Any]]) -> dict[str, Any]:
    keep = slice(-HISTORY_POINTS, None)
    return {"index": _stamps(index[keep]), "values": {n: v[keep] for n, v in columns.items()}}


def forecast(app: FastAPI, served: ServedModel, pool: WorkerPool, limits: Limits, deps) -> None:
    est = served.estimator
    names: list[str] = list(served.info["series"])

    def horizon_of(h: int | None) -> int:
        h = int(served.info["horizon"]) if h is None else h
        if h < 1:
            raise UserError(f"horizon must be >= 1, got {h}")
        # A direct model's own horizon is checked by the estimator (the CLI's message).
        check_most(h, limits.max_horizon, "horizon", "--max-horizon")
        return h

    def from_json(req: ForecastRequest, horizon: int) -> dict[str, Any]:
        import pandas as pd

        if req.series is None:
            ctx = est.context_
            cols = {n: ctx.values[:, k].tolist() for k, n in enumerate(ctx.names)}
            frame = est.predict(horizon)
            return _answer(served, frame, _history(list(ctx.index), cols), horizon)
        cols = req.series if isinstance(req.series, dict) else {names[0]: req.series}
        if isinstance(req.series, list) and len(names) > 1:
            raise UserError(
                f"this model forecasts {len(names)} series {names}; send {{name: values}} for each"
            )
        lengths = {len(v) for v in cols.values()}
        if len(lengths) != 1:
            raise UserError(
                f"the series have different lengths {sorted(lengths)}; send the "
                "same number of values for each"
            )
        n = lengths.pop()
        if req.index is not None and len(req.index) != n:
            raise UserError(f"index has {len(req.index)} time stamps for {n} values")
        index: Any = pd.RangeIndex(n) if req.index is None else list(req.index)
        if req.index is not None and all(isinstance(v, str) for v in req.index):
            try:
                index = pd.DatetimeIndex(pd.to_datetime(req.index))
            except (ValueError, TypeError) as exc:
                raise UserError(f"index holds a time stamp that is not a date ({exc})") from exc
        df = pd.DataFrame(
            {k: pd.array(v, dtype="Float64") for k, v in cols.items()}, index=index
        ).astype("float64")
        frame = est.predict(horizon, history=df)
        return _answer(served, frame, _history(list(df.index), cols), horizon)

    def from_csv(data: bytes, name: str, horizon: int) -> dict[str, Any]:
        def run(path: Path) -> dict[str, Any]:
            import pandas as pd

            frame = est.predict(horizon, history=path)
            df = pd.read_csv(path)  # read again only to draw the history
            time_col = frame.index.name
            index = df[time_col].tolist() if time_col in df.columns else list(range(len(df)))
            cols = {n: df[n].tolist() for n in names if n in df.columns}
            return _answer(served, frame, _history(index, cols), horizon)

        return _in_tmp(data, name, run)

    def check_points(n: int) -> None:
        if n > limits.max_series_points:
            raise ApiError(
                413,
                f"the series has {n:,} values; this server takes at most "
                f"{limits.max_series_points:,} (rnnkit serve --max-series-points)",
            )

    common = dict(tags=[served.name], dependencies=deps, response_model=ForecastResponse)

    @app.post(
        f"/api/{served.name}/forecast",
        operation_id=f"{served.name}_forecast",
        summary=f"Forecast from a JSON series ({served.name})",
        **common,
    )
    async def forecast_json(req: ForecastRequest) -> dict[str, Any]:
        """Forecast ``horizon`` steps after ``series`` (or after the training data),
        with the central interval of ``level`` (quantile models)."""
        horizon = horizon_of(req.horizon)
        if isinstance(req.series, dict):
            check_points(sum(len(v) for v in req.series.values()))
        elif req.series is not None:
            check_points(len(req.series))
        return await pool.call(from_json, req, horizon)

    @app.post(
        f"/api/{served.name}/forecast/csv",
        operation_id=f"{served.name}_forecast_csv",
        summary=f"Forecast from an uploaded CSV ({served.name})",
        **common,
    )
    async def forecast_csv(
        file: Annotated[UploadFile, File(description="a CSV with the model's columns")],
        horizon: Annotated[
            int | None, Form(description="steps to forecast (default: the model's)")
        ] = None,
    ) -> dict[str, Any]:
        """Forecast after the history in a CSV file, read as ``rnnkit forecast predict
        --data FILE`` reads it."""
        h = horizon_of(horizon)
        data = await file.read()
        name = _safe_name(file.filename, "history.csv")
        if not data.strip():
            raise UserError(f"{name} is empty; send a CSV with a header row and the values")
        check_points(max(data.count(b"\n") - 1, 0))
        return await pool.call(from_csv, data, name, h)
