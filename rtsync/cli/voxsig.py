"""`rtsync listen|demo voxsig`: Voxsig's options and the demo on the local ActionCable server."""

from __future__ import annotations

import argparse
import os

from ..errors import ConfigurationError
from ..policy import Backoff
from ..vendors.voxsig.client import DEFAULT_URL, VoxsigClient
from .demo import Demo, local_servers

HELP = "Voxsig (ActionCable RoomChannel: agent or contact pubsub token)"
TOKEN_ENV = "RTSYNC_VOXSIG_TOKEN"
SECRETS = {"token": TOKEN_ENV}


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
    return VoxsigClient(token, account_id=args.account_id, user_id=args.user_id, url=args.url,
                        origin=args.origin, presence_interval=args.presence_interval)


def demo(run: Demo) -> None:
    """A local ActionCable server, an agent listening, a short conversation, a server restart, more."""
    servers = local_servers("voxsig")
    with servers.VoxsigServer(ping_interval=1.0) as server:
        client = run.watch(VoxsigClient("good-user-token", account_id=1, user_id=1, url=server.url,
                                        presence_interval=2.0, backoff=Backoff(base=0.2, cap=1.0)))
        run.say(f"a local ActionCable server on {server.url}; an agent subscribes to RoomChannel")
        with client:
            run.wait(lambda: client.stats.connects > 0, "the client did not connect", client)
            run.say("subscribed; broadcasting a conversation, typing and a message")
            server.publish("account_1", "conversation.created", {"id": 42, "status": "open"})
            server.publish("good-user-token", "conversation.typing_on",
                             {"conversation": {"id": 42}, "user": {"id": 7, "name": "Ann"}, "is_private": False})
            server.publish("account_1", "message.created", {"id": 1, "conversation_id": 42, "content": "Hello!"})
            run.pause(0.3)
            run.say("restarting the server now (ActionCable's restart frame)")
            server.server_restart()  # the client reconnects, resubscribes and tells us it did
            run.wait(lambda: client.stats.connects > 1, "the client did not reconnect", client)
            run.say("the client reconnected and resubscribed; one more message")
            server.publish("account_1", "message.created", {"id": 2, "conversation_id": 42, "content": "Back!"})
            run.pause(0.3)
