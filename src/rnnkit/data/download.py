"""Download a public file once, verify its sha256, and cache it.

Every built-in dataset is a list of :class:`RemoteFile`. ``fetch`` downloads
from the file's canonical public URL into the cache, checks the checksum and
returns the cached path; later calls return the cached file after a size
check. Nothing is trusted until its sha256 matches.

Two environment variables:

- ``RNNKIT_CACHE``: the cache directory (default ``~/.cache/rnnkit``).
- ``RNNKIT_DATA_MIRROR``: a base URL (``http://127.0.0.1:8000/``) that
  replaces the canonical host. The file is then fetched from
  ``<mirror>/<mirror_path>``. The tests use it to run this very code against a
  local HTTP server that serves ``../shared/data``; users can point it at an
  internal mirror.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rnnkit.errors import UserError

__all__ = ["RemoteFile", "cache_dir", "fetch", "sha256_of"]

_CHUNK = 1 << 16


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file.

    Attributes:
        url: canonical public URL.
        sha256: expected checksum (hex).
        mirror_path: the file's path under a mirror root, e.g.
            ``"tinyshakespeare/input.txt"`` (the layout of ``shared/data``).
        cache_name: path under the cache directory (defaults to ``mirror_path``).
    """

    url: str
    sha256: str
    mirror_path: str
    cache_name: str | None = None


def cache_dir() -> Path:
    """The cache root: ``$RNNKIT_CACHE`` or ``~/.cache/rnnkit``."""
    root = os.environ.get("RNNKIT_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "rnnkit"


def sha256_of(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def _source_url(remote: RemoteFile) -> str:
    mirror = os.environ.get("RNNKIT_DATA_MIRROR")
    if mirror:
        return mirror.rstrip("/") + "/" + remote.mirror_path.lstrip("/")
    return remote.url


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _stamp(target: Path) -> dict[str, int]:
    st = target.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _record_verified(target: Path, sha256: str) -> None:
    stamp = _stamp_path(target)
    tmp = stamp.with_name(f"{stamp.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"sha256": sha256, **_stamp(target)}), encoding="utf-8")
    os.replace(tmp, stamp)


def _cached_ok(target: Path, remote: RemoteFile, quiet: bool) -> bool:
    """True when the cached ``target`` is ``remote``'s file (re-hashed if it changed)."""
    with contextlib.suppress(OSError, ValueError):
        recorded = json.loads(_stamp_path(target).read_text(encoding="utf-8"))
        if recorded == {"sha256": remote.sha256, **_stamp(target)}:
            return True
    digest = sha256_of(target)
    if digest == remote.sha256:
        _record_verified(target, digest)
        return True
    if not quiet:
        print(
            f"cached {target} is damaged (sha256 {digest[:12]}..., expected "
            f"{remote.sha256[:12]}...); downloading it again",
            file=sys.stderr,
        )
    return False


def _remove_dead_partials(target: Path) -> None:
    """``<name>.<pid>.*.part`` files whose process is gone (killed mid-download)."""
    prefix = target.name + "."
    with contextlib.suppress(OSError):
        for entry in target.parent.glob(f"{target.name}.*.part"):
            pid = entry.name[len(prefix) :].split(".", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                entry.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's process
        return True
    return True


def fetch(remote: RemoteFile, *, root: Path | None = None, quiet: bool = False) -> Path:
    """Return the local path of ``remote``, downloading and verifying it if needed.

    The download goes to a temporary file in the cache directory and is renamed
    into place only after its sha256 matches, so an interrupted or corrupted
    download never leaves a file that looks valid.

    Raises:
        UserError: the download failed or the checksum does not match.
    """
    root = root if root is not None else cache_dir()
    target = root / (remote.cache_name or remote.mirror_path)
    if target.exists() and not target.is_file():
        raise UserError(f"cache entry {target} is not a file; remove it so the file can be cached")
    if target.is_file() and _cached_ok(target, remote, quiet):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_partials(target)
    url = _source_url(remote)
    if not quiet:
        print(f"downloading {url} -> {target}", file=sys.stderr)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f"{target.name}.{os.getpid()}.", suffix=".part", dir=target.parent
    )
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                while block := response.read(_CHUNK):
                    h.update(block)
                    out.write(block)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UserError(
                f"could not download {url} ({reason}); check the network, or place the file "
                f"at {target} by hand, or set RNNKIT_DATA_MIRROR to a mirror"
            ) from exc
        digest = h.hexdigest()
        if digest != remote.sha256:
            raise UserError(
                f"checksum mismatch for {url}: expected sha256 {remote.sha256}, got {digest}; "
                "the file was not cached, try again or report the changed source"
            )
        os.replace(tmp, target)  # atomic: a concurrent fetch sees the old file or this one
        _record_verified(target, digest)
    finally:
        tmp.unlink(missing_ok=True)
    return target
