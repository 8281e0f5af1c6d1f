"""`rtsync listen|poll|demo dashly`: Dashly's options, the cron poll and the demo on the local server."""

from __future__ import annotations

import argparse
import os
import sys
import threading

from ..checkpoint import FileCheckpoint
from ..errors import ConfigurationError
from ..policy import Backoff
from ..vendors.dashly import channels as dashly_channels
from ..vendors.dashly.client import DEFAULT_URL, TRANSPORTS, DashlyClient
from .demo import Demo, local_servers
from .output import Output

HELP = "Dashly Realtime Services (push stream: websocket, longpoll, shortpoll)"
TOKEN_ENV = "RTSYNC_DASHLY_TOKEN"
SECRETS = {"token": TOKEN_ENV}


def add_arguments(parser: argparse.ArgumentParser, polling: bool = False) -> None:
    parser.add_argument("--token", default=None,
                        help=f"Dashly auth_token (default: ${TOKEN_ENV}; prefer the variable, "
                             "command lines are visible to other users)")
    parser.add_argument("--channel", action="append", required=True,
                        help="channel to listen to, e.g. conversation_reply.100 (repeatable; past 50, or "
                             "8 KB of URL, the client opens more connections)")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"base URL (default {DEFAULT_URL})")
    if polling:
        parser.add_argument("--checkpoint", required=True, metavar="FILE",
                            help="file holding the resume cursor between runs; the first run records "
                                 "the current position and prints nothing")
    else:
        parser.add_argument("--transport", choices=TRANSPORTS, default="websocket",
                            help="websocket (default), longpoll or shortpoll (every 3 s)")
        parser.add_argument("--checkpoint", default=None, metavar="FILE",
                            help="resume from / save the cursor to this file")


def _token(args: argparse.Namespace) -> str:
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        raise ConfigurationError(f"no token: pass --token or set {TOKEN_ENV}")
    return str(token)


def make_client(args: argparse.Namespace) -> DashlyClient:
    checkpoint = FileCheckpoint(args.checkpoint) if args.checkpoint else None
    return DashlyClient(_token(args), channels=args.channel, transport=args.transport, url=args.url,
                        checkpoint=checkpoint)


def poll(args: argparse.Namespace, output: Output) -> int:
    checkpoint = FileCheckpoint(args.checkpoint)
    first_run = checkpoint.load() is None
    client = DashlyClient(_token(args), channels=args.channel, transport="shortpoll", url=args.url,
                          checkpoint=checkpoint)
    client.on("*", output)
    client.poll_once()
    if first_run and checkpoint.load() is not None and not output.closed.is_set():
        print(f"rtsync: no cursor in {checkpoint.path} yet: recorded the current position; "
              "the next run prints what is published after it", file=sys.stderr)
    return 0


def demo(run: Demo) -> None:
    """Start a local push stream server, listen over WebSocket, publish a short conversation, drop, resume."""
    servers = local_servers("dashly")
    channels = [dashly_channels.conversation_reply(100), dashly_channels.conversation_typing(100),
                dashly_channels.user_presence_changed(100)]
    with servers.DashlyServer(tokens={"demo-token"}, ping_interval=1.0) as server:
        client = run.watch(DashlyClient("demo-token", channels=channels, url=server.url,
                                        backoff=Backoff(base=0.1, cap=0.5)))
        resumed = threading.Event()
        client.on("conversation_reply.100", lambda e: resumed.set() if e.data.get("text") == _AWAY else None)
        script = [
            ("user_presence_changed.100", {"user_id": 7, "presence": "online"}),
            ("conversation_typing.100", {"conversation": 42, "user_id": 7}),
            ("conversation_reply.100", {"conversation": 42, "text": "Hello! Is anyone there?"}),
            ("conversation_reply.100", {"conversation": 42, "text": "Hi, how can we help?"}),
        ]
        run.say(f"a local push stream server on {server.url}; a client subscribes to {len(channels)} channels")
        with client:
            run.wait(lambda: client.connected, "the client did not connect", client)
            run.say("connected; publishing a short conversation")
            for channel, body in script:
                server.publish(channel, body)
                run.pause(min(0.3, run.duration / 20))
            # A dropped connection mid-conversation: the client resumes from its cursor.
            run.say("dropping the connection now, then publishing while the client is away")
            server.drop()
            server.publish("conversation_reply.100", {"conversation": 42, "text": _AWAY})
            run.wait(resumed, "the client did not reconnect and resume", client)
            run.say("the client reconnected and resumed from its cursor: nothing was lost")


_AWAY = "(sent while the connection was down: recovered by resume)"
