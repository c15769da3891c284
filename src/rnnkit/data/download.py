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

import hashlib
import os
import shutil
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
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    url = _source_url(remote)
    if not quiet:
        print(f"downloading {url} -> {target}", file=sys.stderr)
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
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
        shutil.move(str(tmp), target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
