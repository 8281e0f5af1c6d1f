"""`rtsync listen|demo voxsig`: Voxsig's options and the demo on the local ActionCable server."""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import IO, Any, Callable

from ...errors import ConfigurationError
from ...policy import Backoff
from .client import DEFAULT_URL, VoxsigClient

HELP = "Voxsig (ActionCable RoomChannel: agent or contact pubsub token)"
TOKEN_ENV = "RTSYNC_VOXSIG_TOKEN"


def add_arguments(parser: argparse.ArgumentParser, polling: bool = False) -> None:
    parser.add_argument("--token", default=None,
                        help=f"pubsub_token (default: ${TOKEN_ENV}; prefer the variable)")
    parser.add_argument("--account-id", type=int, default=None, help="agent tokens: the account id")
    parser.add_argument("--user-id", type=int, default=None, help="agent tokens: the user id")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"cable URL (default {DEFAULT_URL})")
    parser.add_argument("--origin", default=None, help="Origin header (default: the URL's own host)")
    parser.add_argument("--presence-interval", type=float, default=None,
                        help="seconds between presence updates (default 15 for agents, 60 for contacts)")


def make_client(args: argparse.Namespace) -> VoxsigClient:
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        raise ConfigurationError(f"no token: pass --token or set {TOKEN_ENV}")
    return VoxsigClient(token, args.account_id, args.user_id, url=args.url, origin=args.origin,
                        presence_interval=args.presence_interval)


def demo(out: IO[str], duration: float) -> int:
    """A local ActionCable server, an agent listening, a short conversation, a server restart, more."""
    from ...cli import printer
    from ...testing.voxsig import VoxsigServer

    with VoxsigServer(ping_interval=1.0) as server:
        client = VoxsigClient("good-user-token", 1, 1, url=server.cable_url, presence_interval=2.0,
                              backoff=Backoff(base=0.2, cap=1.0))
        client.on("*", printer(out))
        connections = []
        again = threading.Event()

        def on_connected(event: Any) -> None:
            connections.append(event)
            if len(connections) > 1:
                again.set()

        client.on("rtsync.connected", on_connected)
        deadline = time.monotonic() + duration
        with client:
            if not _wait(lambda: connections, deadline):
                return 1
            server.broadcast("account_1", "conversation.created", {"id": 42, "status": "open"})
            server.broadcast("good-user-token", "conversation.typing_on",
                             {"conversation": {"id": 42}, "user": {"id": 7, "name": "Ann"}, "is_private": False})
            server.broadcast("account_1", "message.created", {"id": 1, "conversation_id": 42, "content": "Hello!"})
            time.sleep(0.3)
            server.server_restart()  # the client reconnects, resubscribes and tells us it did
            if not again.wait(max(0.0, deadline - time.monotonic())):
                return 1
            server.broadcast("account_1", "message.created", {"id": 2, "conversation_id": 42, "content": "Back!"})
            time.sleep(0.3)
    return 0


def _wait(predicate: Callable[[], Any], deadline: float) -> bool:
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False
