"""Errors that the command line reports on one line, without a traceback."""

from __future__ import annotations

__all__ = ["NotFittedError", "UserError"]


class UserError(ValueError):
    """Bad input from the user: a missing file, a malformed CSV, an empty text.

    The message must say what is wrong and what to do, on one line. The CLI
    prints ``error: <message>`` and exits with status 2. It subclasses
    ``ValueError`` so library callers can catch either.
    """


class NotFittedError(UserError, AttributeError):
    """An estimator was used before ``fit`` or ``load``.

    Like scikit-learn's ``NotFittedError`` it is both a ``ValueError`` and an
    ``AttributeError``, so code written for scikit-learn catches it too.
    """
