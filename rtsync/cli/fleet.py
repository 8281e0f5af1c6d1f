"""`rtsync fleet`: many Dashly accounts shared by any number of worker processes through Redis."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import IO, Any, Dict, List, Optional, Tuple

from ..errors import ConfigurationError
from ..events import Event
from ..vendors.dashly.client import DEFAULT_URL, TRANSPORTS, DashlyClient
from .output import event_json

HELP = "share many Dashly accounts among worker processes through Redis (one connection per account)"

DESCRIPTION = """\
Run this same command on as many machines as you like: the workers share the accounts of
ACCOUNTS_FILE through per-account leases in Redis, each owning a fair share (at most
--capacity), and take over a dead worker's accounts once its leases expire (--ttl).
Every event prints as one JSON line with an "account" key.

ACCOUNTS_FILE has one account per line: an account id (any word without spaces: it names
the account's lease and shows in output and logs), the account's Dashly auth_token, and its
channels. Blank lines and lines starting with # are ignored:

  # id        token                    channels...
  acme        0123456789abcdef         conversation_reply.100 conversation.100
  globex      fedcba9876543210         conversation_reply.200

Keep the file readable only by the service user: it holds tokens. With --resume each
account also resumes where its previous owner's callbacks ended (a RedisLease and a
RedisCheckpoint per account), so a takeover loses and repeats nothing.
"""


def add_parser(sub: Any, epilog: str) -> None:
    parser = sub.add_parser("fleet", help=HELP, description=DESCRIPTION, epilog=epilog,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis", required=True, metavar="URL",
                        help="Redis URL shared by every worker, e.g. redis://db:6379/0")
    parser.add_argument("--accounts", required=True, metavar="ACCOUNTS_FILE",
                        help="one account per line: ID TOKEN CHANNEL [CHANNEL...]")
    parser.add_argument("--capacity", type=int, default=None,
                        help="most accounts this worker runs (default: its fair share only)")
    parser.add_argument("--ttl", type=float, default=10.0,
                        help="seconds a dead worker's accounts stay claimed (default 10)")
    parser.add_argument("--name", default="dashly", help="fleet name: workers with the same one share accounts")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"Dashly base URL (default {DEFAULT_URL})")
    parser.add_argument("--transport", choices=TRANSPORTS, default="websocket", help="default websocket")
    parser.add_argument("--resume", action="store_true",
                        help="resume each account from a checkpoint in Redis, fenced by a lease")
    parser.add_argument("--event", action="append", default=None, metavar="PATTERN",
                        help="only print events matching this glob on name or channel (repeatable)")


def read_accounts(path: str) -> Dict[str, Tuple[str, List[str]]]:
    """account id -> (token, channels). Errors name the line, never its token."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise ConfigurationError(f"cannot read accounts file {path}: {exc.strerror}") from None
    accounts: Dict[str, Tuple[str, List[str]]] = {}
    for number, line in enumerate(lines, 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) < 3:
            raise ConfigurationError(f"{path} line {number}: expected ID TOKEN CHANNEL [CHANNEL...], "
                                     f"got {len(words)} word(s)")
        if words[0] in accounts:
            raise ConfigurationError(f"{path} line {number}: account id {words[0]!r} appears twice")
        accounts[words[0]] = (words[1], words[2:])
    if not accounts:
        raise ConfigurationError(f"{path} lists no account")
    return accounts


class _Printer:
    """One JSON line per event, tagged with its account; a closed pipe stops the fleet."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.lock = threading.Lock()
        self.closed = threading.Event()

    def callback(self, account: str) -> Any:
        def write(event: Event) -> None:
            line = json.dumps({"account": account, **json.loads(event_json(event))}, ensure_ascii=False)
            with self.lock:
                if self.closed.is_set():
                    return
                try:
                    self.stream.write(line + "\n")
                    self.stream.flush()
                except (OSError, ValueError):
                    self.closed.set()
        return write


def run(args: argparse.Namespace, out: Optional[IO[str]] = None) -> int:
    from ..ha import Fleet, RedisCheckpoint, RedisLease

    accounts = read_accounts(args.accounts)
    printer = _Printer(sys.stdout if out is None else out)

    def make_client(account: str) -> DashlyClient:
        token, channels = accounts[account]
        extra: Dict[str, Any] = {}
        if args.resume:
            lease = RedisLease(args.redis, f"{args.name}:{account}", ttl=args.ttl)
            extra = {"lease": lease,
                     "checkpoint": RedisCheckpoint(args.redis, f"{args.name}:{account}", lease=lease)}
        client = DashlyClient(token, channels=channels, url=args.url, transport=args.transport, **extra)
        for pattern in args.event or ["*"]:
            client.on(pattern, printer.callback(account))
        return client

    fleet = Fleet(args.redis, list(accounts), make_client, capacity=args.capacity, ttl=args.ttl, name=args.name)
    fleet.start()
    try:
        while not printer.closed.wait(0.5):
            pass
    finally:
        fleet.stop()
    return 0
