"""Helpers shared by test files of several applications (importable from any test:
tests/conftest.py puts this folder on ``sys.path``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

__all__ = ["config_overrides", "fuzz_settings", "one_line", "without_file_permissions"]


def fuzz_settings(examples: int) -> settings:
    """Hypothesis settings of the fuzz tests: ``examples`` inputs, no deadline (a
    shared 2-core machine makes per-example timing meaningless)."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def config_overrides(config_class: type, words: list[str]) -> st.SearchStrategy[dict]:
    """Keyword overrides for an estimator's constructor: real config keys (dotted with
    ``__`` or their last part), made-up names, and values of every type, including
    ``words`` that mean something to that application."""
    from rnnkit.config import config_fields

    keys = [key for key, _, _ in config_fields(config_class)]
    names = st.one_of(
        st.sampled_from(keys).map(lambda k: k.replace(".", "__")),
        st.sampled_from(keys).map(lambda k: k.rsplit(".", 1)[-1]),
        st.text(alphabet="abcdefghij_", min_size=1, max_size=12),
    )
    values = st.one_of(
        st.integers(-(2**40), 2**40),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.none(),
        st.text(max_size=12),
        st.sampled_from(["0", "1", "-1", "nan", "inf", "1e9", "true", *words]),
    )
    return st.dictionaries(names, values, max_size=4)


def one_line(exc: BaseException) -> None:
    """The message of a user error is one non-empty line."""
    assert str(exc).strip() and "\n" not in str(exc).strip(), repr(str(exc))


# Run first in a Python process so that it cannot bypass file permissions: as root, its
# CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH capabilities are dropped (capset).
_DROP = """
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
class H(ctypes.Structure): _fields_ = [("v", ctypes.c_uint32), ("pid", ctypes.c_int)]
U32 = ctypes.c_uint32
class D(ctypes.Structure): _fields_ = [("e", U32), ("p", U32), ("i", U32)]
h, d = H(0x20080522, 0), (D * 2)()
if libc.capget(ctypes.byref(h), d) == 0:
    d[0].e &= ~0b110
    libc.capset(ctypes.byref(h), d)
"""


def without_file_permissions(code: str, path: Path) -> str:
    """Run ``code`` (with ``sys.argv[1] = path``) where file permissions apply even to
    root; return its stderr."""
    proc = subprocess.run(
        [sys.executable, "-c", _DROP + code, str(path)], capture_output=True, text=True
    )
    return proc.stderr
