"""`rtsync listen|demo dialpad`: Dialpad's options and the demo on the local Dialpad."""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import IO

from ...errors import ConfigurationError
from ...policy import Backoff
from .client import DEFAULT_BASE_URL, DialpadClient

HELP = "Dialpad (event subscriptions over a REST-issued WebSocket URL)"
KEY_ENV = "RTSYNC_DIALPAD_API_KEY"
SECRET_ENV = "RTSYNC_DIALPAD_SECRET"


def add_arguments(parser: argparse.ArgumentParser, polling: bool = False) -> None:
    parser.add_argument("--api-key", default=None, help=f"API key (default: ${KEY_ENV}; prefer the variable)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--websocket-id", default=None, help="an existing websocket (default: create one)")
    target.add_argument("--subscription-id", default=None, help="listen to one subscription only")
    parser.add_argument("--subscription-type", default="call",
                        choices=["call", "sms", "agent_status", "contact", "changelog"])
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL, help=f"API base (default {DEFAULT_BASE_URL})")
    parser.add_argument("--secret", default=None,
                        help=f"verify HS256-signed events with this secret (default: ${SECRET_ENV})")


def make_client(args: argparse.Namespace) -> DialpadClient:
    key = args.api_key or os.environ.get(KEY_ENV)
    if not key:
        raise ConfigurationError(f"no API key: pass --api-key or set {KEY_ENV}")
    return DialpadClient(key, websocket_id=args.websocket_id, subscription_id=args.subscription_id,
                         subscription_type=args.subscription_type, base_url=args.base_url,
                         secret=args.secret or os.environ.get(SECRET_ENV))


def demo(out: IO[str], duration: float) -> int:
    """A local Dialpad issuing 2-second tokens; a call rings, connects and hangs up across refreshes."""
    from ...cli import printer
    from ...testing.dialpad import DialpadServer, call_event, sms_event

    with DialpadServer(api_keys={"demo-key"}, token_lifetime=2.0) as server:
        client = DialpadClient("demo-key", base_url=server.http_url, secret="demo-secret-for-hs256-signed-events", refresh_margin=1.0,
                               backoff=Backoff(base=0.2, cap=1.0))
        client.on("*", printer(out))
        up = threading.Event()
        client.on("rtsync.connected", lambda e: up.set())
        with client:
            if not up.wait(min(10.0, duration)):
                return 1
            for state in ("ringing", "connected", "hangup"):
                server.publish(call_event(state, call_id=6421977457180672))
                time.sleep(min(1.0, duration / 6))  # the URL is refreshed in between, make-before-break
            server.publish(sms_event("Thanks for calling!"))
            time.sleep(0.3)
    return 0
