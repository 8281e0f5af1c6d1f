"""`rtsync listen|demo dialpad`: Dialpad's options and the demo on the local Dialpad."""

from __future__ import annotations

import argparse
import os

from ..errors import ConfigurationError
from ..policy import Backoff
from ..vendors.dialpad.client import DEFAULT_BASE_URL, DialpadClient
from .demo import Demo, local_servers

HELP = "Dialpad (event subscriptions over a REST-issued WebSocket URL)"
KEY_ENV = "RTSYNC_DIALPAD_API_KEY"
SECRET_ENV = "RTSYNC_DIALPAD_SECRET"
SECRETS = {"api_key": KEY_ENV, "secret": SECRET_ENV}
SUBSCRIPTION_TYPES = ["call", "sms", "agent_status", "contact", "changelog"]


def add_arguments(parser: argparse.ArgumentParser, polling: bool = False) -> None:
    parser.add_argument("--api-key", default=None, help=f"API key (default: ${KEY_ENV}; prefer the variable)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--websocket-id", default=None, help="an existing websocket (default: create one)")
    target.add_argument("--subscription-id", default=None, help="listen to one subscription only")
    parser.add_argument("--subscription-type", default="call", choices=SUBSCRIPTION_TYPES,
                        help="kind of events of a websocket rtsync creates (default: call)")
    parser.add_argument("--url", "--base-url", dest="base_url", default=DEFAULT_BASE_URL,
                        help=f"API base (default {DEFAULT_BASE_URL}); --base-url is its older name")
    parser.add_argument("--secret", default=None,
                        help=f"verify HS256-signed events with this secret (default: ${SECRET_ENV})")


def make_client(args: argparse.Namespace) -> DialpadClient:
    key = args.api_key or os.environ.get(KEY_ENV)
    if not key:
        raise ConfigurationError(f"no API key: pass --api-key or set {KEY_ENV}")
    return DialpadClient(key, websocket_id=args.websocket_id, subscription_id=args.subscription_id,
                         subscription_type=args.subscription_type, url=args.base_url,
                         secret=args.secret or os.environ.get(SECRET_ENV))


def demo(run: Demo) -> None:
    """A local Dialpad issuing 2-second tokens; a call rings, connects and hangs up across refreshes."""
    servers = local_servers("dialpad")
    with servers.DialpadServer(api_keys={"demo-key"}, token_lifetime=2.0) as server:
        client = run.watch(DialpadClient("demo-key", url=server.url,
                                         secret="demo-secret-for-hs256-signed-events", refresh_margin=1.0,
                                         backoff=Backoff(base=0.2, cap=1.0)))
        run.say(f"a local Dialpad on {server.url} issuing 2-second socket URLs")
        with client:
            run.wait(lambda: client.connected, "the client did not connect", client)
            run.say("connected; a call rings, connects and hangs up while the URL is refreshed")
            for state in ("ringing", "connected", "hangup"):
                server.publish(servers.call_event(state, call_id=6421977457180672))
                run.pause(min(1.0, run.duration / 6))  # the URL is refreshed in between, make-before-break
            server.publish(servers.sms_event("Thanks for calling!"))
            run.pause(0.3)
