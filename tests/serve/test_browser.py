"""End to end: ``rnnkit serve`` as a subprocess, the page in a real headless Chromium.

Playwright drives Debian's ``chromium`` (``/usr/bin/chromium``; install it with
``scripts/install_browser.sh``) the way a person uses the page: it types, uploads
real WAV and CSV files, records from a (fake) microphone, presses buttons and
keys, and checks what appears. Screenshots are saved in a pytest temporary folder
(printed at the end with ``-rA``); ``RNNKIT_DOCS_SCREENSHOTS=1`` also copies one
per tab to ``docs/img/serve_<tab>.png``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tiny_models import series, write_clip

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "no /usr/bin/chromium: run scripts/install_browser.sh (Debian's chromium package)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (dev extra)")

TOKEN = "s3cret-token"
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
# The flags the machine's probe uses: no sandbox as root, no GPU, and no background
# connections (this machine's network is closed), plus a fake microphone.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("audio") / "ba_c.wav", "ba c", seed=3)


@pytest.fixture(scope="module")
def server(model_dirs: dict[str, Path]) -> Iterator[str]:
    """``rnnkit serve`` on a free port of 127.0.0.1 (``--port 0``), with a token and a
    small pool (one worker, two waiting) so that a burst overflows it."""
    # Started where the models are, with the paths a person types: rnnkit serve runs/...
    cwd = next(iter(model_dirs.values())).parents[1]
    rel = [str(p.relative_to(cwd)) for p in model_dirs.values()]
    cmd = [sys.executable, "-m", "rnnkit", "serve", *rel]
    cmd += ["--port", "0", "--token", TOKEN, "--threads", "1", "--workers", "1"]
    cmd += ["--queue-size", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    lines: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def read() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            lines.append(line)
            m = re.search(r"serving on (http://127\.0\.0\.1:\d+/)", line)
            if m:
                url.append(m.group(1))
                found.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not found.wait(120) or proc.poll() is not None:
            pytest.fail("rnnkit serve did not start:\n" + "".join(lines))
        yield url[0]
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser(clip: Path) -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[*FLAGS, f"--use-file-for-fake-audio-capture={clip}"],
        )
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve-screenshots")


@pytest.fixture
def page(browser, server: str) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    context.grant_permissions(["microphone"], origin=server.rstrip("/"))
    page = context.new_page()
    crashes: list[str] = []
    page.on("pageerror", lambda e: crashes.append(str(e)))
    page.set_default_timeout(30_000)
    page.goto(f"{server}#token={TOKEN}")
    page.get_by_text("5 models loaded").wait_for()
    yield page
    context.close()
    assert not crashes, f"uncaught errors in the page: {crashes}"


def _snap(page, shots: Path, name: str) -> None:
    path = shots / f"serve_{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("RNNKIT_DOCS_SCREENSHOTS"):
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_IMG / path.name)


def _panel(page, title: str):
    page.get_by_role("tab", name=title).click()
    return page.get_by_role("tabpanel", name=title)


def test_sentiment_tab_highlights_each_word(page, shots: Path) -> None:
    panel = _panel(page, "Sentiment")
    panel.get_by_label("Text").fill("great fun film, not dull")
    panel.get_by_role("button", name="Classify").click()
    panel.locator(".label").wait_for()
    assert panel.locator(".label").inner_text() in ("pos", "neg")
    words = panel.locator(".explained .tok")
    assert words.all_inner_texts() == ["great", "fun", "film", ",", "not", "dull"]
    scores = [float(w.get_attribute("data-score")) for w in words.all()]
    assert any(s != 0 for s in scores)
    colours = {w.evaluate("e => getComputedStyle(e).backgroundColor") for w in words.all()}
    assert len(colours) > 1  # shaded by contribution, not one colour
    _snap(page, shots, "sentiment")


def test_textgen_tab_streams_with_the_chosen_settings(page, shots: Path) -> None:
    panel = _panel(page, "Text generation")
    panel.get_by_label("Prompt").fill("the ")
    panel.get_by_label("Length (characters)").fill("120")
    panel.get_by_label("Temperature").fill("0.5")
    assert panel.locator("output").inner_text() == "0.50"
    panel.get_by_label("Top-k (0: all)").fill("4")
    panel.get_by_label("Seed").fill("7")
    panel.get_by_role("button", name="Generate").click()
    panel.get_by_text(re.compile(r"done: 120 characters")).wait_for()
    text = panel.locator("pre.generated").inner_text()
    assert text.startswith("the ") and len(text) == 4 + 120
    _snap(page, shots, "textgen")
    panel.get_by_label("Prompt").fill("Zebra")  # a character the model never saw
    panel.get_by_role("button", name="Generate").click()
    alert = panel.get_by_role("alert")
    alert.wait_for()
    assert "never saw in training: 'Z'" in alert.inner_text()


def test_translate_tab_draws_the_attention_heatmap(page, shots: Path) -> None:
    panel = _panel(page, "Translation")
    panel.get_by_label("Sentence").fill("one two .")
    panel.get_by_label("Beam size").fill("2")
    panel.get_by_role("button", name="Translate").click()
    panel.locator(".translation").wait_for()
    assert panel.locator(".translation").inner_text() == "eins zwei ."
    heat = panel.locator("table.heatmap")
    assert heat.locator("thead th").all_inner_texts() == ["one", "two", "."]
    rows = heat.locator("tbody tr")
    assert rows.count() == 4  # eins, zwei, ., </s>
    for row in rows.all():  # each row is a distribution over the source words
        assert abs(sum(int(c) for c in row.locator("td").all_inner_texts()) - 100) <= 3
    _snap(page, shots, "translate")


def test_speech_tab_from_a_file_and_the_microphone(
    page, shots: Path, clip: Path, shared_data: Path, tmp_path: Path
) -> None:
    panel = _panel(page, "Speech")
    panel.get_by_label("Recording (WAV, FLAC or OGG)").set_input_files(str(clip))
    panel.get_by_role("button", name="Transcribe file").click()
    panel.locator(".transcript").wait_for()
    assert panel.locator(".transcript").inner_text() == "ba c"
    assert panel.locator("table.words tbody td:first-child").all_inner_texts() == ["ba", "c"]
    real = shared_data / "fsdd" / "recordings" / "3_jackson_10.wav"
    if (
        real.is_file()
    ):  # a real 8 kHz recording: it is read and timed (the words are the tone model's)
        panel.get_by_label("Recording (WAV, FLAC or OGG)").set_input_files(str(real))
        panel.get_by_role("button", name="Transcribe file").click()
        panel.get_by_text(re.compile(r"s of audio · beam 1")).wait_for()
    panel.get_by_role("button", name="Record from microphone").click()
    panel.get_by_text("recording… press again to stop").wait_for()
    page.wait_for_timeout(1200)  # let the fake microphone play the clip for a while
    before = panel.locator(".result").inner_text()
    panel.get_by_role("button", name="Stop and transcribe").click()
    page.wait_for_function(
        "b => document.querySelector('#panel-speech .result').innerText !== b", arg=before
    )
    assert panel.get_by_role("alert").is_hidden()
    seconds = float(panel.get_by_text(re.compile("s of audio")).inner_text().split()[0])
    assert seconds > 0.5  # the browser's recording arrived as a WAV the server could read
    assert panel.locator("audio").is_visible()
    _snap(page, shots, "speech")
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....WAVE not audio")
    panel.get_by_label("Recording (WAV, FLAC or OGG)").set_input_files(str(bad))
    panel.get_by_role("button", name="Transcribe file").click()
    alert = panel.get_by_role("alert")
    alert.wait_for()
    assert alert.inner_text().startswith("Error: cannot read audio file broken.wav (")


def test_forecast_tab_plots_history_forecast_and_interval(
    page, shots: Path, tmp_path: Path
) -> None:
    panel = _panel(page, "Forecast")
    panel.get_by_role("button", name="Forecast", exact=True).click()
    svg = panel.locator(".plot svg")
    svg.wait_for()
    assert svg.locator("polyline.hist").count() == 1 and svg.locator("polygon.band").count() == 1
    svg.focus()
    page.keyboard.press("End")
    assert re.match(
        r"^122 forecast [\d.]+ \[[\d.]+, [\d.]+\] \(step 3\)$",
        panel.locator(".readout").inner_text(),
    )
    page.keyboard.press("Home")
    assert panel.locator(".readout").inner_text().startswith("107 history ")
    box = svg.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    assert "history" in panel.locator(".readout").inner_text()
    csv = tmp_path / "sales.csv"
    csv.write_text("t,y\n" + "".join(f"{t},{v:.4f}\n" for t, v in enumerate(series(48))))
    panel.get_by_label("CSV file of history").set_input_files(str(csv))
    panel.get_by_label("Horizon (at most 3)").fill("2")
    panel.get_by_role("button", name="Forecast from CSV").click()
    panel.get_by_text("2-step forecast", exact=False).wait_for()
    assert panel.locator("details table tbody tr").count() == 2
    _snap(page, shots, "forecast")
    panel.get_by_label("History of y").fill("1 2 3")
    panel.get_by_role("button", name="Forecast", exact=True).click()
    alert = panel.get_by_role("alert")
    alert.wait_for()
    assert alert.inner_text() == "Error: need at least 13 steps of history, got 3"


def test_tabs_work_from_the_keyboard(page) -> None:
    tabs = page.get_by_role("tab")
    assert tabs.count() == 5
    tabs.first.focus()
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.id") == "tab-textgen"
    assert tabs.nth(1).get_attribute("aria-selected") == "true"
    assert page.get_by_role("tabpanel", name="Text generation").is_visible()
    page.keyboard.press("End")
    assert page.evaluate("document.activeElement.id") == "tab-forecast"
    page.keyboard.press("ArrowRight")  # wraps around
    assert page.evaluate("document.activeElement.id") == "tab-sentiment"
    page.keyboard.press("Tab")  # into the panel
    assert page.evaluate("document.activeElement.id") == "panel-sentiment"
    page.keyboard.press("Tab")  # the model card
    assert page.evaluate("document.activeElement.tagName") == "SUMMARY"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "text"
    page.keyboard.press("Control+A")
    page.keyboard.type("what a great fun film")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "explain"
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the Classify button
    page.locator("#panel-sentiment .label").wait_for()
    assert page.locator("#panel-sentiment .explained").inner_text() == "what a great fun film"


def test_phone_width(page, shots: Path) -> None:
    page.set_viewport_size({"width": 375, "height": 740})
    panel = _panel(page, "Forecast")
    panel.get_by_role("button", name="Forecast", exact=True).click()
    panel.locator(".plot svg").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert panel.locator(".plot svg").bounding_box()["width"] <= 375
    _snap(page, shots, "phone")


def test_the_page_asks_for_the_token(browser, server: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(server)
    page.get_by_role("alert").wait_for()
    assert "bearer token" in page.get_by_role("alert").inner_text()
    page.get_by_label("This server needs a token").fill(TOKEN)
    page.get_by_role("button", name="Use token").click()
    page.get_by_text("5 models loaded").wait_for()
    assert page.get_by_role("tab").count() == 5
    context.close()


def test_a_burst_overflows_the_queue_with_503_and_the_server_recovers(server: str) -> None:
    """One worker and two waiting: of 16 simultaneous generations some are refused at once."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = {"prompt": "the ", "length": 2000, "stream": False}
    start = threading.Barrier(16)
    results: list[httpx.Response] = []

    def one() -> None:
        with httpx.Client(base_url=server, headers=headers, timeout=120) as c:
            start.wait()
            results.append(c.post("/api/textgen/generate", json=body))

    threads = [threading.Thread(target=one) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in results)
    assert set(codes) == {200, 503} and codes.count(200) >= 1, codes
    for r in results:
        if r.status_code == 503:
            assert r.headers["retry-after"] == "1" and r.json()["detail"].startswith(
                "the server is busy"
            )
        else:
            assert len(r.json()["generated"]) == 2000
    health = httpx.get(f"{server}health").json()
    assert health["pool"]["admitted"] == 0 and health["pool"]["rejected"] >= codes.count(503)
