"""The FastAPI application: health, the loaded models, the page, and one API per model.

Every answer that is not a success is JSON ``{"detail": "<one line>"}``:

- 401 a ``--token`` server without ``Authorization: Bearer <token>``;
- 404 an unknown path;
- 413 a request over a size limit (body bytes, text length, audio seconds, series points);
- 422 an invalid request: a field of the wrong type, a value over a limit (generated
  length, horizon, beam), or bad input that the command line would refuse, with the
  command line's own message (:class:`rnnkit.UserError`: a corrupt WAV, a CSV with a
  text column, a character the model never saw);
- 503 with ``Retry-After`` when every worker and queue slot is taken;
- 500 an unexpected failure of one request (the server keeps serving).
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from rnnkit import __version__
from rnnkit.errors import UserError
from rnnkit.serve.errors import ApiError
from rnnkit.serve.models import Limits, ServedModel
from rnnkit.serve.pool import Busy, WorkerPool
from rnnkit.serve.routes import add_routes

__all__ = ["create_app"]

STATIC = Path(__file__).resolve().parent / "static"


def _one_line(text: str) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else "error"


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": _one_line(detail)}, status_code=status, headers=headers)


def _validation_detail(exc: RequestValidationError) -> str:
    """Pydantic's list of errors as one line: 'body.text: Field required; ...'."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


class BodyTooLarge(StarletteHTTPException):
    """A body over the limit; an HTTPException so that FastAPI's body parsing passes it on."""

    def __init__(self, limit: int) -> None:
        detail = f"the request body is larger than this server's limit of {limit:,} bytes"
        super().__init__(status_code=413, detail=detail)


class BodyLimit:
    """ASGI middleware: a body over ``limit`` bytes is refused with 413 before it is read.

    ``Content-Length`` is checked first; a body sent without it (chunked) is counted
    as it arrives and refused when it passes the limit.
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _error(413, BodyTooLarge(self.limit).detail)(scope, receive, send)
            return
        seen = 0
        started = False

        async def limited_receive() -> dict:
            nonlocal seen
            msg = await receive()
            if msg.get("type") == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return msg

        async def watched_send(msg: dict) -> None:
            nonlocal started
            started = started or msg.get("type") == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await _error(413, exc.detail)(scope, receive, send)


def create_app(
    models: Sequence[ServedModel],
    *,
    limits: Limits | None = None,
    token: str | None = None,
    workers: int = 2,
    queue_size: int = 64,
) -> FastAPI:
    """The server for ``models`` (see :func:`rnnkit.serve.models.load_models`)."""
    limits = limits or Limits()
    pool = WorkerPool(workers, queue_size)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        pool.shutdown()

    try:  # Swagger UI from files in a package: nothing is fetched from a CDN
        from fastapi_offline import FastAPIOffline as make_app
    except ImportError:  # pragma: no cover - the serve extra installs it
        make_app = FastAPI
    app = make_app(
        title="rnnkit serve",
        version=__version__,
        description="JSON APIs of the loaded rnnkit models. Errors are JSON "
        '`{"detail": "<one line>"}`: 401 missing or wrong bearer token, 413 over a size '
        "limit, 422 invalid request or input (the command line's message), 503 busy "
        "(see Retry-After).",
        lifespan=lifespan,
    )
    app.state.pool, app.state.limits, app.state.models = pool, limits, list(models)

    async def require_token(request: Request) -> None:
        if token is None:
            return
        auth = request.headers.get("authorization", "")
        scheme, _, given = auth.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
            raise ApiError(
                401,
                "this server needs a bearer token: send 'Authorization: Bearer <token>' "
                "(the token given to rnnkit serve --token)",
                {"WWW-Authenticate": "Bearer"},
            )

    auth = [Depends(require_token)]

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.detail, exc.headers)

    @app.exception_handler(UserError)
    async def _user_error(request: Request, exc: UserError) -> JSONResponse:
        return _error(422, str(exc))

    @app.exception_handler(Busy)
    async def _busy(request: Request, exc: Busy) -> JSONResponse:
        return _error(503, str(exc), {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _error(500, f"internal error: {type(exc).__name__}: {_one_line(str(exc))}")

    @app.get("/health", tags=["server"], summary="Liveness, loaded model names, pool load")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "models": [m.name for m in models],
            "pool": pool.stats(),
        }

    @app.get("/models", tags=["server"], dependencies=auth, summary="Loaded models")
    async def list_models() -> list[dict[str, Any]]:
        """Each loaded model: name, application, estimator, folder, metrics (manifest.json),
        model card (README.md), what its page tab needs, and the server's limits."""
        return [m.describe(limits) for m in models]

    for served in models:
        add_routes(app, served, pool=pool, limits=limits, dependencies=auth)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, limit=limits.max_body_bytes)
    return app
