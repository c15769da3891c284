"""What a class label is: a name (``"pos"``) or a whole number (``1``), never a mix.

Files and Python lists give labels in many spellings: ``1``, ``1.0``, ``"1"``,
``" 1 "``, ``numpy.int64(1)``. :func:`label_key` maps each to one class
value, so equal numbers are one class (``1`` and ``1.0`` are class ``1``);
a name is kept as written, without surrounding spaces. :func:`normalize_labels`
does that for a whole column and refuses a column that mixes names and
numbers (``pos`` among 0/1 labels), naming the rows that differ: such a
column is almost always a data error, and treating ``pos`` as a third class
would train a silently wrong model.

A number that is not whole (``0.5``) is refused too: class labels are names
or whole numbers, and a column of scores would otherwise make every distinct
value a class.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from rnnkit.errors import UserError

__all__ = ["label_key", "normalize_labels"]

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INT = re.compile(r"[+-]?\d+")


class _BadLabel(Exception):
    """Why one label is not a class (the message after 'FILE, line N: ')."""


def _key(value: Any) -> int | str:
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        with contextlib.suppress(TypeError, ValueError):
            value = value.item()  # NumPy / torch scalars
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise _BadLabel("the label is empty; fill it in")
        if _INT.fullmatch(text) and len(text) < 100:
            return int(text)
        if _NUMBER.fullmatch(text):
            value = float(text)
        else:
            return text
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _BadLabel(f"label {value!r} must be a class name or a whole number")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise _BadLabel(
                f"label {value!r} is not a whole number; class labels are names or whole "
                "numbers (round or bin scores into classes)"
            )
        return int(value)
    return value


def label_key(value: Any, *, where: str = "the labels") -> int | str:
    """The class that one label means: an int for a whole number (also ``"1.0"``), else
    the name without surrounding spaces; a one-line :class:`UserError` otherwise."""
    try:
        return _key(value)
    except _BadLabel as exc:
        raise UserError(f"{where}: {exc}") from None


def _rows(rows: Sequence[int] | None, i: int, source: str) -> str:
    return f"{source}, line {rows[i]}" if rows is not None else f"label {i + 1} of {source}"


def normalize_labels(
    labels: Iterable[Any], *, rows: Sequence[int] | None = None, source: str = "the labels"
) -> list[int | str]:
    """Every label as its class (:func:`label_key`); a mix of names and numbers is an error.

    ``rows``: the line number of each label in ``source`` (a file) for the
    messages; without it labels are named by their position.
    """
    out: list[int | str] = []
    for i, value in enumerate(labels):
        try:
            out.append(_key(value))
        except _BadLabel as exc:
            raise UserError(f"{_rows(rows, i, source)}: {exc}") from None
    names = [i for i, v in enumerate(out) if isinstance(v, str)]
    if names and len(names) < len(out):
        numbers = [i for i, v in enumerate(out) if not isinstance(v, str)]
        odd, kind = (names, "numeric") if len(names) <= len(numbers) else (numbers, "named")
        shown = "; ".join(f"{out[i]!r} at {_rows(rows, i, source)}" for i in odd[:3])
        more = f" and {len(odd) - 3} more" if len(odd) > 3 else ""
        raise UserError(
            f"labels mix names and numbers: {shown}{more} among {len(out) - len(odd)} {kind} "
            "labels; make the label column consistent (all names or all whole numbers)"
        )
    return out
