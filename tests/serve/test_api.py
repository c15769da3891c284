"""The JSON API of every application through FastAPI's TestClient (httpx), on tiny models.

What a request answers is checked against the Python API of the same model
(``est.predict_proba``, ``est.generate``, ...), and every refused request against
its documented status and one-line message; a bad file gets the command line's
own message (the CLI is run on the same file for comparison).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from fastapi.testclient import TestClient
from tiny_models import series, write_clip

from rnnkit.cli import main
from rnnkit.serve import Limits, create_app


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def client(served: list) -> TestClient:
    with TestClient(create_app(served)) as c:
        yield c


def _est(served: list, app: str):
    return next(m.estimator for m in served if m.app == app)


def _detail(r) -> str:
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    return detail


def _cli_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 2
    return capsys.readouterr().err.strip().removeprefix("error: ")


def _events(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.strip().split("\n\n"):
        event, data = "message", ""
        for line in block.splitlines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
        out.append((event, json.loads(data)))
    return out


# -- server endpoints ------------------------------------------------------------------


def test_health_lists_the_models_and_the_pool(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert sorted(body["models"]) == ["forecast", "sentiment", "speech", "textgen", "translate"]
    assert {"workers", "queue_size", "admitted", "served", "rejected"} <= set(body["pool"])


def test_models_give_metrics_card_and_what_the_page_needs(
    client: TestClient, model_dirs: dict
) -> None:
    models = {m["name"]: m for m in client.get("/models").json()}
    for app, path in model_dirs.items():
        m = models[app]
        assert m["app"] == app and m["path"] == str(path)
        manifest = json.loads((path / "manifest.json").read_text())
        assert m["metrics"] == json.loads(json.dumps(manifest["metrics"]))
        assert m["card"] == (path / "README.md").read_text() and m["card"]
        assert m["limits"]["max_text_chars"] == Limits().max_text_chars
    assert models["sentiment"]["info"]["classes"] == ["neg", "pos"]
    assert models["forecast"]["info"]["horizon"] == 3
    assert models["speech"]["info"]["sample_rate"] == 8000


def test_openapi_documents_every_endpoint_and_the_docs_page_is_offline(
    client: TestClient,
) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/health",
        "/models",
        "/api/sentiment/predict",
        "/api/textgen/generate",
        "/api/translate/translate",
        "/api/speech/transcribe",
        "/api/forecast/forecast",
        "/api/forecast/forecast/csv",
    ):
        assert path in paths, path
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()
    assert client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200


def test_the_page_and_its_files_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and 'role="tablist"' in page.text
    for name in ("app.js", "text.js", "media.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200, name
    assert client.get("/nope").status_code == 404


# -- sentiment ---------------------------------------------------------------------------


def test_sentiment_predict_with_explanation(client: TestClient, served: list) -> None:
    text = "good fun film, not dull"
    r = client.post("/api/sentiment/predict", json={"text": text})
    assert r.status_code == 200
    body = r.json()
    est = _est(served, "sentiment")
    proba = est.predict_proba([text])[0]
    assert body["probabilities"] == pytest.approx(dict(zip(["neg", "pos"], proba, strict=True)))
    assert body["label"] == est.predict([text])[0]
    exp = est.explain(text)
    assert body["explanation"]["tokens"] == exp.tokens
    assert [text[a:b] for a, b in body["explanation"]["spans"]] == exp.tokens
    assert body["explanation"]["scores"] == pytest.approx(exp.scores)
    plain = client.post("/api/sentiment/predict", json={"text": text, "explain": False}).json()
    assert plain["explanation"] is None and plain["label"] == body["label"]


def test_sentiment_errors(client: TestClient) -> None:
    r = client.post("/api/sentiment/predict", json={"text": "  "})
    assert r.status_code == 422 and _detail(r) == "text 1 is empty; pass non-empty texts"
    r = client.post("/api/sentiment/predict", json={"text": "x" * 2001})
    assert r.status_code == 413
    assert _detail(r) == (
        "the text has 2,001 characters; this server takes at most 2,000 "
        "(rnnkit serve --max-text-chars)"
    )
    r = client.post("/api/sentiment/predict", json={})
    assert r.status_code == 422 and _detail(r) == "text: Field required"
    r = client.post("/api/sentiment/predict", json={"text": ["a"]})
    assert r.status_code == 422 and _detail(r).startswith("text: ")
    r = client.post(
        "/api/sentiment/predict", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422


# -- textgen --------------------------------------------------------------------------------


def test_generate_streams_one_event_per_character(client: TestClient, served: list) -> None:
    req = {"prompt": "the ", "length": 40, "temperature": 0.8, "top_k": 5, "seed": 3}
    r = client.post("/api/textgen/generate", json=req)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _events(r.text)
    tokens = [d["token"] for e, d in events if e == "message"]
    assert len(tokens) == 40 and all(len(t) == 1 for t in tokens)
    (kind, done) = events[-1]
    assert kind == "done" and done["generated"] == "".join(tokens)
    expected = _est(served, "textgen").generate("the ", 40, temperature=0.8, top_k=5, seed=3)
    assert done["text"] == expected
    whole = client.post("/api/textgen/generate", json={**req, "stream": False}).json()
    assert whole["text"] == expected and whole["generated"] == expected[4:]


def test_generate_errors_come_before_the_stream(client: TestClient) -> None:
    r = client.post("/api/textgen/generate", json={"prompt": "Zebra", "length": 5})
    assert r.status_code == 422 and "the model never saw in training: 'Z'" in _detail(r)
    r = client.post("/api/textgen/generate", json={"prompt": "the", "temperature": -1})
    assert r.status_code == 422 and _detail(r) == "temperature must be >= 0, got -1.0"
    r = client.post("/api/textgen/generate", json={"prompt": "", "length": 5})
    assert r.status_code == 422 and _detail(r).startswith("the prompt is empty")
    r = client.post("/api/textgen/generate", json={"prompt": "the", "length": 2001})
    assert r.status_code == 422
    assert _detail(r) == "length must be <= 2000 on this server, got 2001 (--max-generate-chars)"
    r = client.post("/api/textgen/generate", json={"prompt": "t" * 2001})
    assert r.status_code == 413
    assert client.get("/health").json()["pool"]["admitted"] == 0  # refused streams hold nothing


def test_a_stream_closed_early_gives_its_slot_back(served: list) -> None:
    app = create_app(served)
    with TestClient(app) as c:
        with c.stream("POST", "/api/textgen/generate", json={"prompt": "the", "length": 2000}) as r:
            assert r.status_code == 200
            assert next(r.iter_lines()).startswith("data: ")
        for _ in range(200):  # the server notices the closed stream soon after
            if app.state.pool.admitted == 0:
                break
            c.get("/health")
        assert app.state.pool.admitted == 0


# -- translate ---------------------------------------------------------------------------------


def test_translate_with_attention(client: TestClient, served: list) -> None:
    r = client.post("/api/translate/translate", json={"text": "one two .", "beam": 2})
    assert r.status_code == 200
    body = r.json()
    est = _est(served, "translate")
    assert body["translation"] == est.translate(["one two ."], beam=2)[0]
    src, tgt, w = est.attention("one two .", beam=2)
    assert body["source_tokens"] == src and body["target_tokens"] == tgt
    att = np.array(body["attention"])
    assert att.shape == (len(tgt), len(src))
    assert np.allclose(att.sum(1), 1.0, atol=1e-5) and np.allclose(att, w.numpy(), atol=1e-6)
    bare = client.post("/api/translate/translate", json={"text": "one two .", "attention": False})
    assert bare.json()["attention"] is None and bare.json()["beam"] == est.config.decode.beam


def test_translate_errors(client: TestClient) -> None:
    r = client.post("/api/translate/translate", json={"text": "one", "beam": 17})
    assert (
        r.status_code == 422
        and _detail(r) == "beam must be <= 16 on this server, got 17 (--max-beam)"
    )
    r = client.post("/api/translate/translate", json={"text": "one", "beam": 0})
    assert r.status_code == 422 and "beam" in _detail(r)
    r = client.post("/api/translate/translate", json={"text": " "})
    assert r.status_code == 422 and _detail(r).startswith("the text is empty")
    r = client.post("/api/translate/translate", json={"text": "o" * 2001})
    assert r.status_code == 413


# -- speech --------------------------------------------------------------------------------------


def _upload(client: TestClient, path: Path, beam: int = 1, name: str | None = None):
    files = {"file": (name or path.name, path.read_bytes(), "audio/wav")}
    return client.post("/api/speech/transcribe", files=files, data={"beam": str(beam)})


def test_transcribe_wav_and_flac_with_word_times(client: TestClient, tmp_path: Path) -> None:
    wav = write_clip(tmp_path / "clip.wav", "ba c", seed=3)
    audio, rate = sf.read(wav)
    r = _upload(client, wav)
    assert r.status_code == 200
    body = r.json()
    assert body["text"] == "ba c" and [w["word"] for w in body["words"]] == ["ba", "c"]
    assert body["seconds"] == pytest.approx(len(audio) / rate)
    times = [t for w in body["words"] for t in (w["start"], w["end"])]
    assert times == sorted(times) and times[0] >= 0 and times[-1] <= body["seconds"]
    flac = tmp_path / "clip.flac"
    sf.write(flac, audio, rate)
    assert _upload(client, flac, beam=3).json()["text"] == "ba c"


def test_transcribe_a_real_recording(client: TestClient, shared_data: Path) -> None:
    wav = shared_data / "fsdd" / "recordings" / "0_george_10.wav"
    if not wav.is_file():
        pytest.skip(f"{wav} is not in the shared data")
    r = _upload(client, wav)
    assert r.status_code == 200  # 8 kHz speech; the tone model's words do not matter here
    info = sf.info(str(wav))
    assert r.json()["seconds"] == pytest.approx(info.frames / info.samplerate)


def test_a_corrupt_wav_gets_the_cli_message_and_the_server_lives_on(
    client: TestClient, model_dirs: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt not really audio")
    r = _upload(client, bad)
    assert r.status_code == 422
    cli = _cli_error(
        ["speech", "transcribe", "--checkpoint", str(model_dirs["speech"]), str(bad)], capsys
    )
    assert _detail(r) == cli.replace(f"{tmp_path}/", "")
    assert _detail(r).startswith("cannot read audio file broken.wav (")
    empty = client.post("/api/speech/transcribe", files={"file": ("e.wav", b"", "audio/wav")})
    assert (
        empty.status_code == 422
        and _detail(empty) == "e.wav is empty; send a WAV or FLAC recording"
    )
    missing = client.post("/api/speech/transcribe", data={"beam": "1"})
    assert missing.status_code == 422 and _detail(missing) == "file: Field required"
    assert client.get("/health").status_code == 200


def test_transcribe_limits(client: TestClient, tmp_path: Path) -> None:
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(8000 * 31, dtype=np.float32), 8000)
    r = _upload(client, long)
    assert r.status_code == 413
    assert _detail(r) == (
        "long.wav is 31.0 s long; this server takes recordings of at most 30 s "
        "(rnnkit serve --max-audio-seconds)"
    )
    clip = write_clip(tmp_path / "c.wav", "ab")
    r = _upload(client, clip, beam=17)
    assert r.status_code == 422 and "--max-beam" in _detail(r)


# -- forecast ----------------------------------------------------------------------------


def test_forecast_after_the_training_data(client: TestClient, served: list) -> None:
    est = _est(served, "forecast")
    r = client.post("/api/forecast/forecast", json={})
    assert r.status_code == 200
    body = r.json()
    frame = est.predict(3)
    assert body["series"] == ["y"] and body["horizon"] == 3 and body["level"] == 0.8
    f = body["forecast"]["values"]["y"]
    assert f["forecast"] == pytest.approx(frame["forecast"].to_list())
    assert f["lower"] == pytest.approx(frame["lower"].to_list())
    assert f["upper"] == pytest.approx(frame["upper"].to_list())
    assert body["forecast"]["index"] == frame.index.to_list()
    assert body["history"]["values"]["y"] == pytest.approx(est.context_.values[:, 0].tolist())
    assert all(
        lo <= x <= hi for lo, x, hi in zip(f["lower"], f["forecast"], f["upper"], strict=True)
    )


def test_forecast_from_a_json_series_and_a_csv(
    client: TestClient, served: list, tmp_path: Path
) -> None:
    est = _est(served, "forecast")
    values = series(40).tolist()
    r = client.post("/api/forecast/forecast", json={"series": values, "horizon": 2})
    assert r.status_code == 200
    expected = est.predict(2, history=np.array(values))["forecast"].to_list()
    assert r.json()["forecast"]["values"]["y"]["forecast"] == pytest.approx(expected)
    assert r.json()["forecast"]["index"] == [40, 41]
    assert r.json()["history"]["values"]["y"] == pytest.approx(values)
    csv = "t,y\n" + "".join(f"{t},{v}\n" for t, v in enumerate(values))
    files = {"file": ("history.csv", csv.encode(), "text/csv")}
    r = client.post("/api/forecast/forecast/csv", files=files, data={"horizon": "2"})
    assert r.status_code == 200
    assert r.json()["forecast"]["values"]["y"]["forecast"] == pytest.approx(expected)
    assert r.json()["history"]["index"] == list(range(40))


def test_forecast_errors(
    client: TestClient, model_dirs: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "sales.csv"
    bad.write_text("t,y\n" + "".join(f"{t},{'lots' if t == 5 else t}\n" for t in range(30)))
    files = {"file": ("sales.csv", bad.read_bytes(), "text/csv")}
    r = client.post("/api/forecast/forecast/csv", files=files)
    assert r.status_code == 422
    cli = _cli_error(
        [
            "forecast",
            "predict",
            "--checkpoint",
            str(model_dirs["forecast"]),
            "--data",
            str(bad),
            "--output",
            "",
        ],
        capsys,
    )
    assert _detail(r) == cli.replace(f"{tmp_path}/", "") and "not numeric" in _detail(r)
    r = client.post("/api/forecast/forecast", json={"horizon": 4})
    assert r.status_code == 422 and "forecasts 3 steps at once" in _detail(r)
    r = client.post("/api/forecast/forecast", json={"horizon": 0})
    assert r.status_code == 422 and _detail(r) == "horizon must be >= 1, got 0"
    r = client.post("/api/forecast/forecast", json={"horizon": 501})
    assert (
        r.status_code == 422
        and _detail(r) == "horizon must be <= 500 on this server, got 501 (--max-horizon)"
    )
    r = client.post("/api/forecast/forecast", json={"series": [1.0, 2.0, 3.0, 4.0, 5.0]})
    assert r.status_code == 422 and _detail(r) == "need at least 13 steps of history, got 5"
    r = client.post("/api/forecast/forecast", json={"series": {"z": series(20).tolist()}})
    assert r.status_code == 422 and "['z']" in _detail(r)
    r = client.post("/api/forecast/forecast", json={"series": ["a", "b"]})
    assert r.status_code == 422 and _detail(r).startswith("series")
    empty = client.post("/api/forecast/forecast/csv", files={"file": ("e.csv", b"\n", "text/csv")})
    assert empty.status_code == 422 and _detail(empty).startswith("e.csv is empty")


# -- limits, the token, a full queue ------------------------------------------------------


def test_body_and_series_limits(served: list) -> None:
    limits = Limits(max_body_bytes=5000, max_series_points=50)
    with TestClient(create_app(served, limits=limits)) as c:
        big = {"file": ("big.wav", b"\0" * 6000, "audio/wav")}
        r = c.post("/api/speech/transcribe", files=big)
        assert r.status_code == 413
        assert _detail(r) == "the request body is larger than this server's limit of 5,000 bytes"

        def chunks():  # no Content-Length: counted as it arrives
            for _ in range(10):
                yield b" " * 1000

        r = c.post(
            "/api/sentiment/predict", content=chunks(), headers={"content-type": "application/json"}
        )
        assert r.status_code == 413
        r = c.post("/api/forecast/forecast", json={"series": series(60).tolist()})
        assert r.status_code == 413 and _detail(r).startswith("the series has 60 values")
        assert c.get("/health").status_code == 200


def test_bearer_token(served: list) -> None:
    with TestClient(create_app(served, token="s3cret")) as c:
        assert c.get("/health").status_code == 200  # liveness stays open
        assert c.get("/").status_code == 200  # the page asks for the token itself
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            r = c.get("/models", headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
            assert "Authorization: Bearer" in _detail(r)
        r = c.post("/api/sentiment/predict", json={"text": "good"})
        assert r.status_code == 401
        ok = {"Authorization": "Bearer s3cret"}
        assert c.get("/models", headers=ok).status_code == 200
        assert (
            c.post("/api/sentiment/predict", json={"text": "good"}, headers=ok).status_code == 200
        )


def test_a_full_queue_answers_503_with_retry_after(served: list) -> None:
    app = create_app(served, workers=1, queue_size=1)
    pool = app.state.pool
    with TestClient(app) as c:
        pool.acquire()  # two requests in flight: the worker's and the one waiting
        pool.acquire()
        try:
            for path, body in (
                ("/api/sentiment/predict", {"text": "good"}),
                ("/api/textgen/generate", {"prompt": "the", "length": 5}),
                ("/api/forecast/forecast", {}),
            ):
                r = c.post(path, json=body)
                assert r.status_code == 503, path
                assert r.headers["retry-after"] == "1"
                assert _detail(r) == "the server is busy; retry in 1 s"
        finally:
            pool.release()
        assert c.post("/api/sentiment/predict", json={"text": "good"}).status_code == 200
        pool.release()
        health = c.get("/health").json()["pool"]
        assert health["rejected"] == 3 and health["admitted"] == 0
