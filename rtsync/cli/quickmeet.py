"""`rtsync listen|demo quickmeet`: QuickMeet's options and the demo on the local DDP server."""

from __future__ import annotations

import argparse
import os

from ..checkpoint import FileCheckpoint
from ..errors import ConfigurationError
from ..policy import Backoff
from ..vendors.quickmeet.client import QuickMeetClient
from .demo import Demo, local_servers

HELP = "QuickMeet.Chat (Rocket.Chat realtime API over DDP)"
PASSWORD_ENV = "RTSYNC_QUICKMEET_PASSWORD"
TOKEN_ENV = "RTSYNC_QUICKMEET_TOKEN"
SECRETS = {"password": PASSWORD_ENV, "resume_token": TOKEN_ENV}


def add_arguments(parser: argparse.ArgumentParser, polling: bool = False) -> None:
    parser.add_argument("--url", required=True, help="the server's DDP endpoint: wss://<host>/websocket")
    parser.add_argument("--username", default=None, help="log in as this user (with --password)")
    parser.add_argument("--email", default=None, help="log in with this email address instead of --username")
    parser.add_argument("--password", default=None,
                        help=f"the user's password (default: ${PASSWORD_ENV}; prefer the variable)")
    parser.add_argument("--resume-token", default=None,
                        help=f"login or personal access token instead of a password (default: ${TOKEN_ENV})")
    parser.add_argument("--room", action="append", default=[], help="room id whose messages to follow (repeatable)")
    parser.add_argument("--my-messages", action="store_true",
                        help="follow new messages in every room of the user (__my_messages__)")
    parser.add_argument("--checkpoint", default=None, metavar="FILE",
                        help="keep each room's last message here, so a restart fills what it missed")


def make_client(args: argparse.Namespace) -> QuickMeetClient:
    password = args.password or os.environ.get(PASSWORD_ENV)
    token = args.resume_token or os.environ.get(TOKEN_ENV)
    if not (password or token):
        raise ConfigurationError(f"no credentials: pass --password (or set {PASSWORD_ENV}) or --resume-token")
    checkpoint = FileCheckpoint(args.checkpoint) if getattr(args, "checkpoint", None) else None
    client = QuickMeetClient(args.username, password, url=args.url, resume_token=token,
                             email=getattr(args, "email", None), checkpoint=checkpoint)
    for rid in args.room:
        client.subscribe_room_messages(rid, wait=False)  # sent with the login, renewed on every reconnect
    if getattr(args, "my_messages", False):
        client.subscribe_my_messages(wait=False)
    return client


def demo(run: Demo) -> None:
    """A local DDP server; alice follows GENERAL, bob writes, the link drops, the gap is filled."""
    servers = local_servers("quickmeet")
    with servers.QuickMeetServer(ping_interval=2.0) as server:
        client = run.watch(QuickMeetClient("alice", "alice-password", url=server.url,
                                           backoff=Backoff(base=0.2, cap=1.0)))
        with client:
            run.wait(lambda: client.connected, "the client did not log in", client)
            client.subscribe_room_messages("GENERAL")
            client.send_message("GENERAL", "Hi everyone!")
            server.publish("GENERAL", "Hello alice", user="bob")
            run.pause(0.2)
            server.drop()  # bob writes while alice is away: the gap fill brings it back
            server.publish("GENERAL", "(written while alice was disconnected)", user="bob")
            run.pause(1.5)
