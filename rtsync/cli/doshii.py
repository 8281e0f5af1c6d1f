"""`rtsync listen|demo doshii`: Doshii's options and the demo on the local Doshii server."""

from __future__ import annotations

import argparse
import os

from ..errors import ConfigurationError
from ..policy import Backoff
from ..vendors.doshii.client import DEFAULT_APP_VERSION, ENVIRONMENTS, DoshiiClient
from .demo import Demo, local_servers

HELP = "Doshii (App WebSocket v3: heartbeat, emit events)"
CLIENT_ID_ENV = "RTSYNC_DOSHII_CLIENT_ID"
SECRETS = {"client_id": CLIENT_ID_ENV}


def add_arguments(parser: argparse.ArgumentParser, polling: bool = False) -> None:
    parser.add_argument("--client-id", default=None,
                        help=f"Doshii client id (default: ${CLIENT_ID_ENV}; prefer the variable)")
    parser.add_argument("--environment", choices=ENVIRONMENTS, default="sandbox",
                        help="which Doshii to connect to (default: sandbox)")
    parser.add_argument("--device-id", default=None, help="a registered device's doshiiId (filters events)")
    parser.add_argument("--app-version", default=None,
                        help=f"your app's version, sent with every heartbeat (default: {DEFAULT_APP_VERSION})")
    parser.add_argument("--url", default=None, help="override the socket URL")


def make_client(args: argparse.Namespace) -> DoshiiClient:
    client_id = args.client_id or os.environ.get(CLIENT_ID_ENV)
    if not client_id:
        raise ConfigurationError(f"no client id: pass --client-id or set {CLIENT_ID_ENV}")
    return DoshiiClient(client_id, environment=args.environment, device_id=args.device_id,
                        app_version=args.app_version, url=args.url)


def demo(run: Demo) -> None:
    """A local Doshii server, an app listening, an order's life, a dropped link, the heartbeat at work."""
    servers = local_servers("doshii")
    with servers.DoshiiServer(client_ids={"demo-client-id"}) as server:
        client = run.watch(DoshiiClient("demo-client-id", url=server.url, app_version="rtsync-demo",
                                        ping_interval=1.0, backoff=Backoff(base=0.2, cap=1.0)))
        run.say(f"a local Doshii on {server.url}; an app connects and heartbeats every second")
        with client:
            run.wait(lambda: client.stats.connects > 0, "the client did not connect", client)
            run.say("connected; an order is created and updated")
            for name, payload in servers.SAMPLE_EVENTS[:2]:
                server.publish(name, payload)
            run.pause(0.3)
            run.say("dropping the connection now (Doshii replays nothing: the app is told it reconnected)")
            server.drop()  # Doshii replays nothing: the app is told it reconnected
            run.wait(lambda: client.stats.connects > 1, "the client did not reconnect", client)
            server.publish(*servers.SAMPLE_EVENTS[2])
            run.pause(0.3)
