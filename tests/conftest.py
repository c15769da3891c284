"""Shared fixtures: the shared datasets, a local HTTP mirror, a private cache."""

from __future__ import annotations

import functools
import http.server
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# tests/testkit.py (helpers shared by several applications' tests) is importable anywhere.
sys.path.insert(0, str(Path(__file__).resolve().parent))


def shared_data_dir() -> Path | None:
    """``$RNNKIT_SHARED_DATA`` or ``../shared/data`` beside the repository."""
    env = os.environ.get("RNNKIT_SHARED_DATA")
    path = Path(env) if env else REPO.parent / "shared" / "data"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("shared datasets not found (set RNNKIT_SHARED_DATA)")
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="session")
def mirror_url(shared_data: Path) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving ``shared/data`` (the download tests' mirror)."""
    handler = functools.partial(_QuietHandler, directory=str(shared_data))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def data_mirror(mirror_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point rnnkit's downloads at the local mirror, with an empty private cache."""
    monkeypatch.setenv("RNNKIT_DATA_MIRROR", mirror_url)
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    return mirror_url


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Never touch the user's real cache from a test."""
    if "RNNKIT_CACHE" not in os.environ:
        monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path_factory.getbasetemp() / "rnnkit-cache"))
