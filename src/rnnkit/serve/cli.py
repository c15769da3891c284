"""``rnnkit serve RUN_DIR [RUN_DIR ...]``: serve trained models over HTTP with a page.

Only argparse and the shared CLI pieces are imported here, so ``rnnkit serve
--help`` answers without FastAPI; running the server needs the ``serve`` extra.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import os
import socket
import sys
from typing import Any

from rnnkit.cli_common import add_runtime_arguments
from rnnkit.errors import UserError

__all__ = ["add_cli", "run"]

INSTALL = 'rnnkit serve needs FastAPI and uvicorn: pip install "rnnkit[serve]"'


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
        return value

    return parse


def add_cli(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve trained models: JSON APIs and a page in the browser",
        description="Load any mix of trained models (run directories or folders written by "
        "save(); the application is read from each folder) and serve a JSON API per model "
        "(documented at /docs) and a page with a tab per model at http://HOST:PORT/. "
        "Example: rnnkit serve runs/sst2 runs/shakespeare runs/speech-fsdd",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories or saved models")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)"
    )
    p.add_argument("--port", type=int, default=8000, help="port to listen on (0: any free port)")
    p.add_argument(
        "--token",
        default=None,
        help="require 'Authorization: Bearer TOKEN' on the APIs (default: $RNNKIT_SERVE_TOKEN, "
        "else none)",
    )
    g = p.add_argument_group("capacity and limits")
    g.add_argument("--workers", type=_positive(int), default=2, help="inference threads")
    g.add_argument(
        "--queue-size",
        type=int,
        default=64,
        help="requests that may wait for a worker; more get 503 with Retry-After",
    )
    g.add_argument(
        "--max-text-chars",
        type=_positive(int),
        default=2000,
        help="longest text, prompt or sentence (413)",
    )
    g.add_argument(
        "--max-generate-chars",
        type=_positive(int),
        default=2000,
        help="most characters generated per request (422)",
    )
    g.add_argument(
        "--max-upload-mb",
        type=_positive(float),
        default=10.0,
        help="largest request body, uploads included (413)",
    )
    g.add_argument(
        "--max-audio-seconds", type=_positive(float), default=30.0, help="longest recording (413)"
    )
    g.add_argument(
        "--max-horizon", type=_positive(int), default=500, help="most forecast steps (422)"
    )
    g.add_argument(
        "--max-series-points",
        type=_positive(int),
        default=100_000,
        help="most values in a posted series or CSV (413)",
    )
    g.add_argument("--max-beam", type=_positive(int), default=16, help="largest beam size (422)")
    add_runtime_arguments(p, seed=False)
    p.set_defaults(func=run)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise UserError(INSTALL) from exc
    if not any(importlib.util.find_spec(m) for m in ("python_multipart", "multipart")):
        raise UserError(INSTALL)  # python-multipart reads the uploads
    import torch

    from rnnkit.serve.app import create_app
    from rnnkit.serve.models import Limits, load_models

    if args.queue_size < 0:
        raise UserError(f"--queue-size must be >= 0, got {args.queue_size}")
    limits = Limits(
        max_body_bytes=int(args.max_upload_mb * 1_000_000),
        max_text_chars=args.max_text_chars,
        max_generate_chars=args.max_generate_chars,
        max_audio_seconds=args.max_audio_seconds,
        max_horizon=args.max_horizon,
        max_beam=args.max_beam,
        max_series_points=args.max_series_points,
    )
    # One torch thread per worker unless told otherwise: the pool gives the parallelism,
    # and torch's default (every core in each worker) oversubscribes the CPU.
    threads = args.threads or 1
    token = args.token or os.environ.get("RNNKIT_SERVE_TOKEN") or None
    models = load_models(args.run_dirs, limits=limits, device=args.device, threads=threads)
    for m in models:
        print(
            f"loaded {m.name}: {m.app} ({type(m.estimator).__name__}) from {m.path}",
            file=sys.stderr,
        )
    if not _is_loopback(args.host) and token is None:
        print(
            f"warning: listening on {args.host} without --token: anyone who can reach this "
            "machine can use the models",
            file=sys.stderr,
        )
    torch.set_num_threads(threads)
    app = create_app(
        models, limits=limits, token=token, workers=args.workers, queue_size=args.queue_size
    )
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
    sock = _listen(args.host, args.port)  # bound here, so '--port 0' can say which port
    port = sock.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    hint = f"#token={token}" if token else ""
    print(
        f"serving on http://{shown}:{port}/{hint} (API docs: /docs; Ctrl-C stops)",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (OSError, e.g. the port is taken, as is)."""
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
        sock.listen(2048)  # connections wait in the backlog until the server accepts them
    except OSError:
        sock.close()
        raise
    return sock
