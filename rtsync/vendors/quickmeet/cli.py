"""`rtsync listen|demo quickmeet`: QuickMeet's options and the demo on the local DDP server."""

from __future__ import annotations

import argparse
import os
import time
from typing import IO

from ...errors import ConfigurationError
from ...policy import Backoff
from .client import QuickMeetClient

HELP = "QuickMeet.Chat (Rocket.Chat realtime API over DDP)"
PASSWORD_ENV = "RTSYNC_QUICKMEET_PASSWORD"
TOKEN_ENV = "RTSYNC_QUICKMEET_TOKEN"


def add_arguments(parser: argparse.ArgumentParser, polling: bool = False) -> None:
    parser.add_argument("--url", required=True, help="wss://<host>/websocket")
    parser.add_argument("--username", default=None)
    parser.add_argument("--password", default=None, help=f"(default: ${PASSWORD_ENV}; prefer the variable)")
    parser.add_argument("--resume-token", default=None, help=f"login or personal access token (default: ${TOKEN_ENV})")
    parser.add_argument("--room", action="append", default=[], help="room id whose messages to follow (repeatable)")


def make_client(args: argparse.Namespace) -> QuickMeetClient:
    password = args.password or os.environ.get(PASSWORD_ENV)
    token = args.resume_token or os.environ.get(TOKEN_ENV)
    if not (password or token):
        raise ConfigurationError(f"no credentials: pass --password (or set {PASSWORD_ENV}) or --resume-token")
    client = QuickMeetClient(args.url, username=args.username, password=password, resume_token=token)
    for rid in args.room:
        client.subscribe_room_messages(rid, wait=False)  # sent with the login, renewed on every reconnect
    return client


def demo(out: IO[str], duration: float) -> int:
    """A local DDP server; alice follows GENERAL, bob writes, the link drops, the gap is filled."""
    from ...cli import printer
    from ...testing.quickmeet import QuickMeetServer

    with QuickMeetServer(ping_interval=2.0) as server:
        client = QuickMeetClient(server.websocket_url, username="alice", password="alice-password",
                                 backoff=Backoff(base=0.2, cap=1.0))
        client.on("*", printer(out))
        deadline = time.monotonic() + duration
        with client:
            while client.protocol.state != "ready":
                if time.monotonic() > deadline:
                    return 1
                time.sleep(0.02)
            client.subscribe_room_messages("GENERAL")
            client.send_message("GENERAL", "Hi everyone!")
            server.post("GENERAL", "Hello alice", user="bob")
            time.sleep(0.2)
            server.drop()  # bob writes while alice is away: the gap fill brings it back
            server.post("GENERAL", "(written while alice was disconnected)", user="bob")
            time.sleep(min(1.5, max(0.0, deadline - time.monotonic())))
    return 0
