"""`rtsync listen|poll|demo dashly`: Dashly's options, the cron poll and the demo on the local server."""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import IO

from ...checkpoint import FileCheckpoint
from ...errors import ConfigurationError
from ...policy import Backoff
from .client import DEFAULT_URL, TRANSPORTS, DashlyClient

HELP = "Dashly Realtime Services (push stream: websocket, longpoll, shortpoll)"
TOKEN_ENV = "RTSYNC_DASHLY_TOKEN"


def add_arguments(parser: argparse.ArgumentParser, polling: bool = False) -> None:
    parser.add_argument("--token", default=None,
                        help=f"Dashly auth_token (default: ${TOKEN_ENV}; prefer the variable, "
                             "command lines are visible to other users)")
    parser.add_argument("--channel", action="append", required=True,
                        help="channel to listen to (repeatable, up to 50)")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"base URL (default {DEFAULT_URL})")
    if polling:
        parser.add_argument("--checkpoint", required=True, metavar="FILE",
                            help="file holding the resume cursor between runs")
    else:
        parser.add_argument("--transport", choices=TRANSPORTS, default="websocket")
        parser.add_argument("--checkpoint", default=None, metavar="FILE",
                            help="resume from / save the cursor to this file")


def _token(args: argparse.Namespace) -> str:
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        raise ConfigurationError(f"no token: pass --token or set {TOKEN_ENV}")
    return str(token)


def make_client(args: argparse.Namespace) -> DashlyClient:
    checkpoint = FileCheckpoint(args.checkpoint) if args.checkpoint else None
    return DashlyClient(_token(args), args.channel, transport=args.transport, url=args.url,
                        checkpoint=checkpoint)


def poll(args: argparse.Namespace, out: IO[str]) -> int:
    from ...cli import printer

    client = DashlyClient(_token(args), args.channel, transport="shortpoll", url=args.url,
                          checkpoint=FileCheckpoint(args.checkpoint))
    client.on("*", printer(out))
    client.poll_once()
    return 0


def demo(out: IO[str], duration: float) -> int:
    """Start a local push stream server, listen over WebSocket, publish a short conversation, exit."""
    from ...cli import printer
    from ...testing.dashly import DashlyServer

    channels = ["conversation_reply.100", "conversation_typing.100", "user_presence_changed.100"]
    with DashlyServer(tokens={"demo-token"}, ping_interval=1.0) as server:
        client = DashlyClient("demo-token", channels, url=server.http_url,
                              backoff=Backoff(base=0.2, cap=1.0))
        client.on("*", printer(out))
        connected, resumed = threading.Event(), threading.Event()
        client.on("rtsync.connected", lambda e: connected.set())
        client.on("conversation_reply.100",
                  lambda e: resumed.set() if e.data.get("text") == _AWAY else None)
        script = [
            ("user_presence_changed.100", {"user_id": 7, "presence": "online"}),
            ("conversation_typing.100", {"conversation": 42, "user_id": 7}),
            ("conversation_reply.100", {"conversation": 42, "text": "Hello! Is anyone there?"}),
            ("conversation_reply.100", {"conversation": 42, "text": "Hi, how can we help?"}),
        ]
        deadline = time.monotonic() + duration
        with client:
            if not connected.wait(min(10.0, duration)):
                return 1
            for channel, body in script:
                server.publish(channel, body)
                time.sleep(min(0.3, max(0.0, deadline - time.monotonic())))
            # A dropped connection mid-conversation: the client resumes from its cursor.
            server.drop()
            server.publish("conversation_reply.100", {"conversation": 42, "text": _AWAY})
            if not resumed.wait(max(0.0, deadline - time.monotonic())):
                return 1
    return 0


_AWAY = "(sent while the connection was down: recovered by resume)"
