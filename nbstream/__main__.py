"""Command line: ``nbstream serve`` runs the local OpenAI-compatible server.

Also ``python -m nbstream serve``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import warnings
from collections.abc import Sequence


def _serve(args: argparse.Namespace) -> int:
    from nbstream.server import LocalServer, RateLimit
    from nbstream.server.guard import exposure_warning

    rate_limit = None
    if args.limit_requests or args.limit_tokens:
        rate_limit = RateLimit(
            requests=args.limit_requests, tokens=args.limit_tokens, window_s=args.limit_window
        )
    server = LocalServer(
        host=args.host,
        port=args.port,
        streams_dir=args.streams_dir,
        tokens_per_s=args.tokens_per_s,
        ttft=args.ttft,
        rate_limit=rate_limit,
        verbose=args.verbose,
        allowed_hosts=args.allow_host,
        max_body_bytes=args.max_body_bytes,
    )
    warning = exposure_warning(args.host)
    if warning:  # printed here, plainly, rather than as a Python warning with a source line
        print(warning, file=sys.stderr, flush=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            server.start()
    except OSError as exc:
        print(f"nbstream serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(f"nbstream local server: {server.base_url}", flush=True)
    print(
        f'  use: openai.OpenAI(base_url="{server.base_url}", api_key="local"), model="demo"',
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nbstream", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the local OpenAI-compatible server (demo model, SSE replay, fault injection)",
        description="Run the local OpenAI-compatible server until interrupted; prints its URL. "
        "See the nbstream.server module docstring for models and per-request options.",
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface (default 127.0.0.1; anything else lets the network use it: a warning)",
    )
    serve.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also accept this name in the Host header (repeatable; default: loopback only)",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        default=8 * 1024 * 1024,
        help="largest request body accepted (default 8 MiB; larger gets 413)",
    )
    serve.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    serve.add_argument(
        "--streams-dir", default=None, help="directory served as model='replay:<file>'"
    )
    serve.add_argument(
        "--tokens-per-s",
        type=float,
        default=None,
        help="default pacing (default: as fast as possible)",
    )
    serve.add_argument("--ttft", type=float, default=0.0, help="default time to first token (s)")
    serve.add_argument(
        "--limit-requests", type=int, default=None, help="rate limit: requests/window"
    )
    serve.add_argument("--limit-tokens", type=int, default=None, help="rate limit: tokens/window")
    serve.add_argument("--limit-window", type=float, default=60.0, help="rate-limit window (s)")
    serve.add_argument("--verbose", action="store_true", help="log every request to stderr")
    serve.set_defaults(func=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nbstream`` console script."""
    args = build_parser().parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
