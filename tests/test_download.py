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


@pytest.mark.parametrize("damage", ["truncate_append", "replace", "truncate"])
def test_a_damaged_cache_file_is_never_used(data_mirror: str, damage: str) -> None:
    """Truncated-then-appended (same size), replaced or truncated: re-verified, re-fetched."""
    import os

    path = fetch(SHAKESPEARE, quiet=True)
    data = path.read_bytes()
    if damage == "truncate_append":
        path.write_bytes(data[: len(data) // 2] + b"x" * (len(data) - len(data) // 2))
    elif damage == "replace":
        path.write_bytes(b"other bytes entirely\n")
    else:
        path.write_bytes(data[:1000])
    st = path.stat()
    if damage == "truncate_append":  # even with the old timestamp, the size check is not enough
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert sha256_of(fetch(SHAKESPEARE, quiet=True)) == SHAKESPEARE.sha256


def test_a_hand_placed_correct_file_is_accepted_and_recorded(data_mirror: str) -> None:
    from rnnkit.data import cache_dir

    src = fetch(SHAKESPEARE, quiet=True)
    target = cache_dir() / "byhand" / "input.txt"
    target.parent.mkdir(parents=True)
    target.write_bytes(src.read_bytes())
    by_hand = RemoteFile(
        url="unreachable",
        sha256=SHAKESPEARE.sha256,
        mirror_path="no/such",
        cache_name="byhand/input.txt",
    )
    assert fetch(by_hand, quiet=True) == target  # verified, not downloaded (the URL is bad)
    assert (target.parent / "input.txt.verified").is_file()


def test_partial_downloads_of_dead_processes_are_removed(data_mirror: str) -> None:
    from rnnkit.data import cache_dir

    d = cache_dir() / SHAKESPEARE.mirror_path
    d.parent.mkdir(parents=True, exist_ok=True)
    dead = d.with_name("input.txt.999999999.abcd.part")
    dead.write_bytes(b"partial")
    fetch(SHAKESPEARE, quiet=True)
    assert not dead.exists()


def test_two_processes_fetching_at_once_both_succeed(mirror_url: str, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = dict(os.environ, RNNKIT_DATA_MIRROR=mirror_url, RNNKIT_CACHE=str(tmp_path / "c"))
    code = (
        "from rnnkit.data import RemoteFile, fetch, sha256_of\n"
        f"r = RemoteFile(url='x', sha256={SHAKESPEARE.sha256!r}, mirror_path="
        f"{SHAKESPEARE.mirror_path!r})\n"
        "print(sha256_of(fetch(r, quiet=True)))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs == [SHAKESPEARE.sha256] * 2
    files = [p.name for p in (tmp_path / "c" / "tinyshakespeare").iterdir()]
    assert sorted(files) == ["input.txt", "input.txt.verified"]
