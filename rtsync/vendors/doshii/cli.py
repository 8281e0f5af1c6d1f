"""`rtsync listen|demo doshii`: Doshii's options and the demo on the local Doshii server."""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import IO

from ...errors import ConfigurationError
from ...policy import Backoff
from .client import ENVIRONMENTS, DoshiiClient

HELP = "Doshii (App WebSocket v3: heartbeat, emit events)"
CLIENT_ID_ENV = "RTSYNC_DOSHII_CLIENT_ID"


def add_arguments(parser: argparse.ArgumentParser, polling: bool = False) -> None:
    parser.add_argument("--client-id", default=None,
                        help=f"Doshii client id (default: ${CLIENT_ID_ENV}; prefer the variable)")
    parser.add_argument("--environment", choices=ENVIRONMENTS, default="sandbox")
    parser.add_argument("--device-id", default=None, help="a registered device's doshiiId (filters events)")
    parser.add_argument("--app-version", default="rtsync-cli", help="sent with every heartbeat")
    parser.add_argument("--url", default=None, help="override the socket URL")


def make_client(args: argparse.Namespace) -> DoshiiClient:
    client_id = args.client_id or os.environ.get(CLIENT_ID_ENV)
    if not client_id:
        raise ConfigurationError(f"no client id: pass --client-id or set {CLIENT_ID_ENV}")
    return DoshiiClient(client_id, environment=args.environment, device_id=args.device_id,
                        app_version=args.app_version, url=args.url)


def demo(out: IO[str], duration: float) -> int:
    """A local Doshii server, an app listening, an order's life, a dropped link, the heartbeat at work."""
    from ...cli import printer
    from ...testing.doshii import SAMPLE_EVENTS, DoshiiServer

    with DoshiiServer(client_ids={"demo-client-id"}) as server:
        client = DoshiiClient("demo-client-id", url=server.socket_url, app_version="rtsync-demo",
                              heartbeat_interval=1.0, backoff=Backoff(base=0.2, cap=1.0))
        client.on("*", printer(out))
        connected = threading.Semaphore(0)
        client.on("rtsync.connected", lambda e: connected.release())
        with client:
            if not connected.acquire(timeout=min(10.0, duration)):
                return 1
            for name, payload in SAMPLE_EVENTS[:2]:
                server.emit(name, payload)
            time.sleep(0.3)
            server.drop()  # Doshii replays nothing: the app is told it reconnected
            if not connected.acquire(timeout=max(0.1, duration - 2)):
                return 1
            server.emit(*SAMPLE_EVENTS[2])
            time.sleep(0.3)
    return 0
