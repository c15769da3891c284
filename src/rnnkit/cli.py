"""The ``rnnkit`` command line: ``rnnkit <command> <verb> ...``.

This file stays thin. Each command lives in its own package and registers its
sub-command with ``add_cli(subparsers)``; the parser it adds sets ``func``, a
callable ``func(args) -> int`` (the exit status). Only the command being run
is imported, so ``rnnkit --help`` and ``rnnkit --version`` answer at once.

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

__all__ = ["COMMANDS", "build_parser", "main"]

# command -> (module with add_cli, one-line help); the order is that of `rnnkit --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "gradients": (
        "rnnkit.experiments.gradients",
        "see gradients vanish (RNN) or survive (LSTM/GRU)",
    ),
    "lab": ("rnnkit.experiments.lab", "long-range memory experiments: adding, copy, selective"),
    "forecast": ("rnnkit.forecast.cli", "time-series forecasting: backtest, train, eval, predict"),
    "sentiment": ("rnnkit.sentiment.cli", "text classification: train, eval, predict, explain"),
    "textgen": ("rnnkit.textgen.cli", "character-level text generation: train, eval, sample"),
    "translate": ("rnnkit.translate.cli", "translation with attention: train, eval, predict"),
    "speech": ("rnnkit.speech.cli", "speech recognition with CTC: train, eval, transcribe"),
    "serve": ("rnnkit.serve.cli", "serve trained models: JSON APIs and a page in the browser"),
    "export": ("rnnkit.export.cli", "export a trained model to ONNX (onnxruntime, devices)"),
}


def _command_in(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (the first word that is not an option)."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the command named in ``argv`` is imported (all when ``None``)."""
    parser = argparse.ArgumentParser(
        prog="rnnkit",
        description="Recurrent neural networks you can read, verify and use.",
        epilog="Run 'rnnkit <command> --help' for the options of a command. "
        "Set RNNKIT_DEBUG=1 to see tracebacks.",
    )
    parser.add_argument("--version", action="version", version=f"rnnkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    chosen = _command_in(argv) if argv is not None else None
    for name, (module, help_text) in COMMANDS.items():
        if argv is None or name == chosen:
            importlib.import_module(module).add_cli(sub)
        else:
            sub.add_parser(name, help=help_text)  # listed in --help, not imported
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        # `rnnkit` or `rnnkit textgen` with no verb: show what can be done.
        (getattr(args, "_parser", None) or parser).print_help()
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt as exc:
        # Training stopped on SIGINT/SIGTERM has said where its checkpoint is;
        # 128 + the signal number is the shell's "ended by this signal".
        status = getattr(exc, "exit_status", 130)
        if status == 130 and not str(exc):
            print("interrupted", file=sys.stderr)
        return int(status)
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
