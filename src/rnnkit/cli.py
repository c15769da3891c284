"""The ``rnnkit`` command line: ``rnnkit <application> <verb> ...``.

This file stays thin. Each application lives in ``rnnkit.pipelines.<name>``
and registers its own sub-command with ``add_cli(subparsers)``; the parser it
adds sets ``func``, a callable ``func(args) -> int`` (the exit status).

User errors (``rnnkit.UserError``, missing files, bad values) are printed as
one line, ``error: ...``, with exit status 2. Set ``RNNKIT_DEBUG=1`` to see
the full traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from rnnkit import __version__
from rnnkit.errors import UserError

__all__ = ["build_parser", "main"]

# One line per application; the order is the order in ``rnnkit --help``.
_APPLICATIONS: tuple[str, ...] = (
    "gradients",
    "forecast",
    "lab",
    "textgen",
    "sentiment",
    "translate",
    "speech",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnkit",
        description="Recurrent neural networks you can read, verify and use.",
        epilog="Run 'rnnkit <command> --help' for the options of a command. "
        "Set RNNKIT_DEBUG=1 to see tracebacks.",
    )
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in _APPLICATIONS:
        importlib.import_module(f"rnnkit.pipelines.{name}").add_cli(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        # `rnnkit` or `rnnkit textgen` with no verb: show what can be done.
        (getattr(args, "_parser", None) or parser).print_help()
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (UserError, ValueError, OSError) as exc:
        if os.environ.get("RNNKIT_DEBUG"):
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in message:
            message = f"{message}: {exc.filename}"
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
