from __future__ import annotations

from pathlib import Path

import pytest

from rnnkit.data import RemoteFile, fetch, sha256_of
from rnnkit.errors import UserError

SHAKESPEARE = RemoteFile(
    url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
    sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    mirror_path="tinyshakespeare/input.txt",
)


def test_fetch_downloads_verifies_and_caches(data_mirror: str, tmp_path: Path) -> None:
    path = fetch(SHAKESPEARE, quiet=True)
    assert path.is_file()
    assert sha256_of(path) == SHAKESPEARE.sha256
    mtime = path.stat().st_mtime_ns
    assert fetch(SHAKESPEARE, quiet=True) == path  # cached: no second download
    assert path.stat().st_mtime_ns == mtime
    assert not list(path.parent.glob("*.part"))


def test_fetch_rejects_wrong_checksum(data_mirror: str) -> None:
    bad = RemoteFile(
        url=SHAKESPEARE.url,
        sha256="0" * 64,
        mirror_path=SHAKESPEARE.mirror_path,
        cache_name="bad/input.txt",
    )
    with pytest.raises(UserError, match="checksum mismatch"):
        fetch(bad, quiet=True)
    from rnnkit.data import cache_dir

    assert not (cache_dir() / "bad" / "input.txt").exists()
    assert not list((cache_dir() / "bad").glob("*.part"))


def test_fetch_reports_unreachable_source(data_mirror: str) -> None:
    missing = RemoteFile(url="x", sha256="0" * 64, mirror_path="no/such/file.txt")
    with pytest.raises(UserError, match="could not download .*RNNKIT_DATA_MIRROR"):
        fetch(missing, quiet=True)
