"""`rtsync serve <vendor>`: run a vendor's local server in the foreground and print how to listen to it and publish."""

from __future__ import annotations

import argparse
import importlib
import sys
import threading
from types import ModuleType
from typing import IO, Any

from ..errors import ConfigurationError
from .demo import TestingMissing

__all__ = ["add_parser", "serve"]

VENDORS = ("dashly", "voxsig", "quickmeet", "dialpad", "doshii")


def add_parser(sub: Any, epilog: str) -> None:
    """Add `serve VENDOR [--port N]` to the command's subparsers."""
    serve = sub.add_parser("serve", help="run a vendor's local server until Ctrl-C (needs the testing extra)",
                           description="Run a vendor's local server (from rtsync.testing; needs "
                                       "pip install 'rtsync[testing]') in the foreground until Ctrl-C or "
                                       "SIGTERM. The first line printed is its URL; then a ready-made "
                                       "`rtsync listen` line and a `rtsync publish` line to paste into "
                                       "other terminals.", epilog=epilog)
    serve.add_argument("vendor", choices=VENDORS, help="whose server to run")
    serve.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: any free port)")
    serve.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                       help="print only the URL")


def _recipes() -> ModuleType:
    try:
        return importlib.import_module("rtsync.testing.serve")
    except ImportError as exc:
        if (getattr(exc, "name", None) or "").split(".")[0] == "rtsync":
            raise
        raise TestingMissing("serve") from None


def serve(args: argparse.Namespace, out: IO[str]) -> None:
    """Serve until a KeyboardInterrupt: Ctrl-C, or SIGTERM/SIGHUP through the command's signal handler."""
    recipes = _recipes()
    server = recipes.serve(args.vendor, port=args.port)
    try:
        try:
            server.start()
        except OSError as exc:
            raise ConfigurationError(f"cannot listen on 127.0.0.1:{args.port} ({exc.strerror or exc}); "
                                     "pick another --port, or leave it out for any free port") from None
        _announce(args, out, recipes, server.url)
        forever = threading.Event()
        try:
            while not forever.wait(0.5):  # short waits: a signal handler runs between them
                pass
        except KeyboardInterrupt:
            pass
    finally:
        server.stop()
    if not args.quiet:
        print("rtsync serve: stopped", file=sys.stderr, flush=True)


def _announce(args: argparse.Namespace, out: IO[str], recipes: ModuleType, url: str) -> None:
    """The URL alone on the first line (for scripts), then the commands to paste (for people)."""
    print(url, file=out, flush=True)
    if not args.quiet:
        lines = recipes.commands(args.vendor, url)
        print(f"# {recipes.RECIPES[args.vendor].title}; Ctrl-C stops it\n"
              f"# in another terminal, listen:\n{lines['listen']}\n"
              f"# and in a third, publish (repeat at will):\n{lines['publish']}", file=out, flush=True)
