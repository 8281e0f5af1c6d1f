"""The `rtsync` command: listen to a vendor, poll for cron, or run the demo against a bundled local server.

Each vendor package contributes `rtsync/vendors/<name>/cli.py` with:

- `HELP: str` — one line for `rtsync listen --help`;
- `add_arguments(parser, polling=False)` — its options for `listen` (and for `poll`
  when the vendor offers `poll(args, out) -> int`);
- `make_client(args) -> rtsync.Client` — the configured client;
- `demo(out, duration) -> int` — start its local server, run a client that
  prints events as JSON lines to `out`, publish sample events, and exit by
  itself within `duration` seconds (returns the exit code).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from types import ModuleType
from typing import IO, Any, Dict, List, Optional, Sequence

from .errors import RtsyncError
from .events import Event

__all__ = ["event_json", "main"]

VENDORS = ("dashly", "voxsig", "quickmeet", "dialpad", "doshii")


def _vendor(name: str) -> ModuleType:
    return importlib.import_module(f"rtsync.vendors.{name}.cli")


def event_json(event: Event) -> str:
    """One event as one JSON line (the `raw` frame and exception objects left out)."""
    data = event.data
    if isinstance(data, dict) and "exception" in data:
        data = {k: v for k, v in data.items() if k != "exception"}
    return json.dumps(
        {
            "name": event.name,
            "channel": event.channel,
            "id": event.id,
            "provider": event.provider,
            "received_at": event.received_at.isoformat(),
            "data": data,
        },
        default=str,
        ensure_ascii=False,
    )


def printer(out: IO[str]) -> Any:
    """A callback that prints each event as a JSON line and flushes (for pipes)."""

    def emit(event: Event) -> None:
        out.write(event_json(event) + "\n")
        out.flush()

    return emit


def _parser(vendors: Dict[str, ModuleType]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rtsync", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log to stderr (-vv: debug)")
    sub = parser.add_subparsers(dest="command", required=True)

    listen = sub.add_parser("listen", help="print one JSON object per event until Ctrl-C")
    listen_vendors = listen.add_subparsers(dest="vendor", required=True)
    for name, module in vendors.items():
        p = listen_vendors.add_parser(name, help=module.HELP)
        module.add_arguments(p)
        p.add_argument("--event", action="append", default=None, metavar="PATTERN",
                       help="only print events matching this glob (repeatable; default: all)")

    poll = sub.add_parser("poll", help="one poll for cron jobs: print new events and exit")
    poll_vendors = poll.add_subparsers(dest="vendor", required=True)
    for name, module in vendors.items():
        if hasattr(module, "poll"):
            p = poll_vendors.add_parser(name, help=module.HELP)
            module.add_arguments(p, polling=True)

    demo = sub.add_parser("demo", help="run a client against the bundled local server; exits by itself")
    demo.add_argument("vendor", nargs="?", default="dashly", choices=list(vendors))
    demo.add_argument("--duration", type=float, default=10.0, help="seconds to run (default 10)")
    return parser


def _load_vendors() -> Dict[str, ModuleType]:
    found = {}
    for name in VENDORS:
        try:
            found[name] = _vendor(name)
        except ModuleNotFoundError as exc:
            if not exc.name or not exc.name.startswith(f"rtsync.vendors.{name}"):
                raise
    return found


def main(argv: Optional[Sequence[str]] = None, out: IO[str] = sys.stdout) -> int:
    vendors = _load_vendors()
    args = _parser(vendors).parse_args(argv)
    if args.verbose:
        logging.basicConfig(
            level=logging.DEBUG if args.verbose > 1 else logging.INFO,
            format="%(asctime)s %(name)s %(levelname)s %(message)s",
            stream=sys.stderr,
        )
    module = vendors[args.vendor]
    try:
        if args.command == "demo":
            return int(module.demo(out, args.duration))
        if args.command == "poll":
            return int(module.poll(args, out))
        client = module.make_client(args)
        patterns: List[str] = args.event or ["*"]
        for pattern in patterns:
            client.on(pattern, printer(out))
        client.run_forever()
        return 0
    except RtsyncError as exc:
        # Our messages never carry secrets; say what went wrong without a traceback.
        print(f"rtsync: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
