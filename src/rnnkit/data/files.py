"""Reading a user's input file, with one-line errors that say what is really wrong.

The text applications (sentiment, translate, textgen) read every file a user
names through :func:`read_text`, so a missing file, a directory, a file that
cannot be read (permissions), a damaged gzip file and a file that is not
UTF-8 each get their own :class:`~rnnkit.errors.UserError`, never "not found"
for all of them. A UTF-8 byte-order mark (``EF BB BF``, written by Excel and
Notepad) at the start of a file is removed: it is not part of the text.

:func:`split_lines` cuts text into lines the way ``wc -l`` counts them
(``\\n``, with ``\\r\\n`` accepted): ``str.splitlines`` would also cut at
U+2028, form feeds and other characters that may sit inside a line.
"""

from __future__ import annotations

import gzip
import os
import stat
import zlib
from pathlib import Path

from rnnkit.errors import UserError

__all__ = ["check_file", "read_text", "split_lines"]

_GZIP_MAGIC = b"\x1f\x8b"


def _shown(path: str | os.PathLike[str]) -> str:
    """A path for a one-line message: quoted (repr) when it holds a line break or another
    control character, as it is otherwise."""
    text = os.fspath(path)
    text = text if isinstance(text, str) else os.fsdecode(text)
    return repr(text) if any(ord(c) < 32 or ord(c) == 127 for c in text) else text


def _cannot_read(what: str, path: Path, exc: OSError) -> UserError:
    if isinstance(exc, PermissionError):
        return UserError(
            f"cannot read {what} {_shown(path)}: permission denied; check the permissions of "
            "the file and its folders (ls -l)"
        )
    reason = exc.strerror or type(exc).__name__
    return UserError(f"cannot read {what} {_shown(path)} ({reason})")


def check_file(path: str | os.PathLike[str], *, what: str = "file", hint: str = "") -> Path:
    """``path`` as a Path if it names a readable file, else a one-line :class:`UserError`.

    ``what`` names the file in the message ("data file", "input file"); ``hint``
    (what to pass instead) ends the message for a missing file or a directory.
    """
    tail = f"; {hint}" if hint else ""
    try:
        p = Path(path).expanduser()
        info = os.stat(p)
    except (FileNotFoundError, NotADirectoryError):
        raise UserError(f"{what} {_shown(path)} not found{tail}") from None
    except ValueError:  # an embedded NUL byte
        raise UserError(f"{what} {path!r} is not a valid path{tail}") from None
    except OSError as exc:
        raise _cannot_read(what, Path(path), exc) from None
    if stat.S_ISDIR(info.st_mode):
        raise UserError(f"{what} {_shown(p)} is a directory, not a file{tail}")
    return p


def read_text(
    path: str | os.PathLike[str], *, what: str = "file", hint: str = "", gzip_ok: bool = False
) -> str:
    """The text of a UTF-8 file (a leading byte-order mark removed), or a one-line error.

    ``gzip_ok``: a gzip-compressed file (recognised by its first two bytes) is
    decompressed first; a truncated or damaged one is an error naming it.
    Newlines are returned as they are in the file (no translation).
    """
    p = check_file(path, what=what, hint=hint)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise _cannot_read(what, p, exc) from None
    if gzip_ok and data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as exc:
            raise UserError(
                f"{what} {_shown(p)} is a damaged gzip file ({exc}); download or compress it again"
            ) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{_shown(p)} is not UTF-8 text ({exc.reason} at byte {exc.start}); convert it to "
            f"UTF-8, e.g. iconv -f latin1 -t utf-8 {_shown(p.name)} > fixed{_shown(p.suffix)}"
        ) from None


def split_lines(text: str) -> list[str]:
    """The lines of ``text`` without their ``\\n`` or ``\\r\\n``; a final newline ends the
    last line and does not start another (``"a\\n\\nb\\n"`` -> ``["a", "", "b"]``)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]
