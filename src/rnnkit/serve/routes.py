"""One JSON API per loaded model, under ``/api/<name>/``: the text applications here,
speech and forecast in :mod:`rnnkit.serve.media`.

Each handler checks the server's limits on the event loop (cheap), then runs the
model on the worker pool (:class:`~rnnkit.serve.pool.WorkerPool`). Bad input is
refused by the estimator itself with the command line's one-line message.
"""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from rnnkit.errors import UserError
from rnnkit.serve import media
from rnnkit.serve.errors import check_most, check_text
from rnnkit.serve.models import Limits, ServedModel
from rnnkit.serve.pool import WorkerPool

__all__ = ["add_routes"]


def add_routes(
    app: FastAPI, served: ServedModel, *, pool: WorkerPool, limits: Limits, dependencies: list
) -> None:
    """Register the endpoints of ``served``'s application."""
    adders = {
        "sentiment": _sentiment,
        "textgen": _textgen,
        "translate": _translate,
        "speech": media.speech,
        "forecast": media.forecast,
    }
    adders[served.app](app, served, pool, limits, dependencies)


# -- sentiment ---------------------------------------------------------------------


class SentimentRequest(BaseModel):
    text: str = Field(description="the text to classify", examples=["a gripping, funny film"])
    explain: bool = Field(True, description="also return each word's contribution")


class Explanation(BaseModel):
    tokens: list[str]
    spans: list[list[int]] = Field(description="(start, end) character offsets in the text")
    scores: list[float] = Field(description="> 0 pushed towards the label, < 0 against it")
    method: str


class SentimentResponse(BaseModel):
    label: str
    probability: float
    probabilities: dict[str, float] = Field(description="every class's probability")
    explanation: Explanation | None = None


def _sentiment(app: FastAPI, served: ServedModel, pool: WorkerPool, limits: Limits, deps) -> None:
    est = served.estimator

    def work(text: str, explain: bool) -> dict[str, Any]:
        proba = est.predict_proba([text])[0]
        classes = [str(c) for c in est.classes_]
        best = int(proba.argmax())
        out: dict[str, Any] = {
            "label": classes[best],
            "probability": float(proba[best]),
            "probabilities": {c: float(p) for c, p in zip(classes, proba, strict=True)},
            "explanation": None,
        }
        if explain:
            e = est.explain(text)
            out["explanation"] = {
                "tokens": list(e.tokens),
                "spans": [list(s) for s in e.spans],
                "scores": [float(s) for s in e.scores],
                "method": e.method,
            }
        return out

    @app.post(
        f"/api/{served.name}/predict",
        tags=[served.name],
        dependencies=deps,
        response_model=SentimentResponse,
        operation_id=f"{served.name}_predict",
        summary=f"Sentiment of a text ({served.name})",
    )
    async def predict(req: SentimentRequest) -> dict[str, Any]:
        """The label, every class's probability and (``explain``) each word's contribution
        (gradient x input of the embedding: > 0 for the label, < 0 against it)."""
        check_text(req.text, "text", limits.max_text_chars)
        return await pool.call(work, req.text, req.explain)


# -- textgen -----------------------------------------------------------------------


class GenerateRequest(BaseModel):
    prompt: str = Field(description="characters to start from (all seen in training)")
    length: int = Field(200, description="characters to generate")
    temperature: float = Field(0.8, description=">= 0; 0 is greedy")
    top_k: int = Field(0, description="sample from the k most likely characters (0: all)")
    top_p: float = Field(1.0, description="nucleus sampling, in (0, 1]")
    seed: int | None = Field(None, description="makes the sample reproducible")
    stream: bool = Field(True, description="server-sent events, one per character")


class GenerateResponse(BaseModel):
    text: str = Field(description="the prompt followed by the generated characters")
    generated: str
    seconds: float


def _sse(data: dict[str, Any], event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n"


class _Slot:
    """A pool slot that is given back exactly once (by the stream, or when it is dropped)."""

    def __init__(self, pool: WorkerPool) -> None:
        pool.acquire()
        self.pool, self.held = pool, True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.pool.release()


def _textgen(app: FastAPI, served: ServedModel, pool: WorkerPool, limits: Limits, deps) -> None:
    est = served.estimator

    def take(chars: Iterator[str]) -> str | None:
        return next(chars, None)

    async def events(chars: Iterator[str], prompt: str, slot: _Slot) -> AsyncIterator[str]:
        start, out = time.perf_counter(), []
        try:
            while (ch := await pool.run(take, chars)) is not None:
                out.append(ch)
                yield _sse({"token": ch})
            seconds = time.perf_counter() - start
            done = {"text": prompt + "".join(out), "generated": "".join(out), "seconds": seconds}
            yield _sse(done, "done")
        except UserError as exc:
            yield _sse({"detail": str(exc)}, "error")
        finally:
            slot.release()

    @app.post(
        f"/api/{served.name}/generate",
        tags=[served.name],
        dependencies=deps,
        response_model=GenerateResponse,
        operation_id=f"{served.name}_generate",
        summary=f"Generate text ({served.name}), streamed character by character",
        responses={
            200: {
                "content": {"text/event-stream": {}},
                "description": "with stream=true: one 'data: {\"token\": c}' event per "
                "character, then 'event: done' with the whole text (or 'event: error')",
            }
        },
    )
    async def generate(req: GenerateRequest) -> Any:
        """The prompt followed by ``length`` sampled characters. With ``stream`` (the
        default) the answer is ``text/event-stream``: one event per character as it is
        sampled, then a ``done`` event with the whole text."""
        check_text(req.prompt, "prompt", limits.max_text_chars)
        check_most(req.length, limits.max_generate_chars, "length", "--max-generate-chars")
        options = dict(temperature=req.temperature, top_k=req.top_k, top_p=req.top_p)
        if not req.stream:

            def work() -> dict[str, Any]:
                start = time.perf_counter()
                text = est.generate(req.prompt, req.length, seed=req.seed, **options)
                gen = text[len(req.prompt) :]
                return {"text": text, "generated": gen, "seconds": time.perf_counter() - start}

            return await pool.call(work)
        slot = _Slot(pool)  # 503 here, before the stream starts, when the pool is full
        try:
            # Checks every option (and the prompt's characters) before the first character.
            chars = est.stream(req.prompt, req.length, seed=req.seed, **options)
        except BaseException:
            slot.release()
            raise
        body = events(chars, req.prompt, slot)
        weakref.finalize(body, slot.release)  # a stream that never starts still frees it
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(body, media_type="text/event-stream", headers=headers)


# -- translate -----------------------------------------------------------------------


class TranslateRequest(BaseModel):
    text: str = Field(description="one sentence in the source language")
    beam: int | None = Field(None, description="beam size (1: greedy; default: the model's)")
    attention: bool = Field(True, description="also return the attention weights")


class TranslateResponse(BaseModel):
    translation: str
    beam: int
    source_tokens: list[str] | None = None
    target_tokens: list[str] | None = Field(None, description="the translation's tokens + </s>")
    attention: list[list[float]] | None = Field(
        None, description="weights (target token, source token); each row sums to 1"
    )


def _translate(app: FastAPI, served: ServedModel, pool: WorkerPool, limits: Limits, deps) -> None:
    est = served.estimator

    def work(text: str, beam: int, attention: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"translation": est.translate([text], beam=beam)[0], "beam": beam}
        if attention:
            src, tgt, w = est.attention(text, beam=beam)
            out.update(source_tokens=src, target_tokens=tgt, attention=w.tolist())
        return out

    @app.post(
        f"/api/{served.name}/translate",
        tags=[served.name],
        dependencies=deps,
        response_model=TranslateResponse,
        operation_id=f"{served.name}_translate",
        summary=f"Translate a sentence ({served.name})",
    )
    async def translate(req: TranslateRequest) -> dict[str, Any]:
        """The translation (beam search) and, with ``attention``, the weights the decoder
        gave each source token while writing each target token."""
        check_text(req.text, "text", limits.max_text_chars)
        if not req.text.strip():
            raise UserError("the text is empty; pass a sentence to translate")
        beam = int(est.config.decode.beam) if req.beam is None else req.beam
        check_most(beam, limits.max_beam, "beam", "--max-beam")
        return await pool.call(work, req.text, beam, req.attention)
