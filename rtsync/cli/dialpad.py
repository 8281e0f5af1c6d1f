"""`rtsync listen|demo dialpad`: Dialpad's options, the run's own websocket and subscriptions, and the demo."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..errors import ConfigurationError, RtsyncError
from ..policy import Backoff
from ..vendors.dialpad.client import ENVIRONMENTS, SUBSCRIPTION_TYPES, DialpadClient
from .demo import Demo, local_servers

HELP = "Dialpad (event subscriptions over a REST-issued WebSocket URL)"
KEY_ENV = "RTSYNC_DIALPAD_API_KEY"
SECRET_ENV = "RTSYNC_DIALPAD_SECRET"
SECRETS = {"api_key": KEY_ENV, "secret": SECRET_ENV}

#: --subscribe KIND=VALUE: which field of the kind VALUE sets, and its default
_SUBSCRIBE: Dict[str, Tuple[Optional[str], Optional[str]]] = {
    "call": ("call_states", "all"), "sms": ("direction", "all"), "agent_status": ("agent_type", "callcenter"),
    "contact": ("contact_type", "shared"), "changelog": (None, None),
}
_CHOICES = {"sms": ("all", "inbound", "outbound"), "agent_status": ("callcenter",), "contact": ("shared", "local")}
Subscription = Tuple[str, Dict[str, Any]]


def _subscription(text: str) -> Subscription:
    """`KIND[=VALUE]` -> (kind, the create body's fields)."""
    kind, _, value = text.partition("=")
    if kind not in _SUBSCRIBE:
        raise argparse.ArgumentTypeError(f"{kind!r} is not a subscription kind ({', '.join(SUBSCRIPTION_TYPES)})")
    field, default = _SUBSCRIBE[kind]
    if field is None:
        if value:
            raise argparse.ArgumentTypeError(f"{kind} takes no value")
        return kind, {}
    value = value or str(default)
    if kind == "call":
        return kind, {field: [state for state in value.split(",") if state]}
    if value not in _CHOICES[kind]:
        raise argparse.ArgumentTypeError(f"{kind}={value!r}: choose one of {', '.join(_CHOICES[kind])}")
    return kind, {field: value}


def add_arguments(parser: argparse.ArgumentParser, polling: bool = False) -> None:
    parser.add_argument("--api-key", default=None, help=f"API key (default: ${KEY_ENV}; prefer the variable)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--websocket-id", default=None,
                        help="an existing websocket (default: create one for this run, deleted on exit)")
    target.add_argument("--subscription-id", default=None, help="listen to one subscription only")
    parser.add_argument("--subscription-type", default="call", choices=SUBSCRIPTION_TYPES,
                        help="the kind of --subscription-id (default: call)")
    parser.add_argument("--subscribe", action="append", default=[], type=_subscription, metavar="KIND[=VALUE]",
                        help="create this event subscription for the run and delete it on exit (repeatable): "
                             "call[=STATE,...] (default all), sms[=all|inbound|outbound], "
                             "agent_status[=callcenter], contact[=shared|local], changelog")
    parser.add_argument("--environment", default="production", choices=list(ENVIRONMENTS),
                        help="which Dialpad (default: production; sandbox is https://sandbox.dialpad.com)")
    parser.add_argument("--url", "--base-url", dest="url", default=None,
                        help="REST API base, overriding --environment (e.g. https://dialpad.com)")
    parser.add_argument("--secret", default=None,
                        help=f"verify HS256-signed events with this secret (default: ${SECRET_ENV})")


def make_client(args: argparse.Namespace) -> DialpadClient:
    key = args.api_key or os.environ.get(KEY_ENV)
    if not key:
        raise ConfigurationError(f"no API key: pass --api-key or set {KEY_ENV}")
    if args.subscribe and args.subscription_id:
        raise ConfigurationError("--subscribe creates subscriptions on a websocket: use it with --websocket-id "
                                 "or alone, not with --subscription-id")
    return DialpadClient(key, websocket_id=args.websocket_id, subscription_id=args.subscription_id,
                         subscription_type=args.subscription_type, url=args.url, environment=args.environment,
                         secret=_secret(args))


def _secret(args: argparse.Namespace) -> Optional[str]:
    return args.secret or os.environ.get(SECRET_ENV) or None


def _say(text: str) -> None:
    print(f"rtsync: {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def session(client: DialpadClient, args: argparse.Namespace) -> Iterator[None]:
    """What `listen` sets up around the client: without --websocket-id or --subscription-id a websocket
    for this run, the --subscribe subscriptions, a warning when nothing can arrive; on the way out
    (Ctrl-C, SIGTERM, an error) whatever it created is deleted, each step said on stderr."""
    websocket: Optional[Any] = None
    created: List[Tuple[str, Any]] = []
    try:
        if client.websocket_id is None and client.subscription_id is None:
            websocket = client.create_websocket(_secret(args))["id"]
            client.websocket_id = websocket
            _say(f"created Dialpad websocket {websocket} for this run; it is deleted on exit")
        for kind, fields in args.subscribe:
            sub = client.create_subscription(kind, **fields)
            created.append((kind, sub.get("id")))
            _say(f"created Dialpad {kind} subscription {sub.get('id')} on websocket {client.websocket_id} "
                 "for this run; it is deleted on exit")
        if websocket is not None and not created:
            _say(f"warning: websocket {websocket} has no event subscription, so no event will arrive; "
                 "pass --subscribe KIND (call, sms, agent_status, contact, changelog)")
        elif not created:
            _check_subscribed(client)
        yield
    finally:
        _clean_up(client, websocket, created)


def _check_subscribed(client: DialpadClient) -> None:
    if client.subscription_id is not None:
        sub = client.get_subscription(client.subscription_type, client.subscription_id)
        if sub.get("enabled") is False:
            _say(f"warning: {client.subscription_type} subscription {client.subscription_id} is disabled, so no "
                 "event will arrive; enable it (PATCH enabled=true)")
        return
    found, unchecked = False, []
    for kind in SUBSCRIPTION_TYPES:
        try:
            subs = client.list_subscriptions(kind)
        except RtsyncError:  # some kinds need an admin key or a scope: what we cannot list, we cannot judge
            unchecked.append(kind)
            continue
        found = found or any(str(s.get("endpoint_id")) == str(client.websocket_id) and s.get("enabled", True)
                             for s in subs)
    if not found:
        could_not = f" (could not list {', '.join(unchecked)} subscriptions)" if unchecked else ""
        _say(f"warning: websocket {client.websocket_id} has no enabled event subscription{could_not}, so no "
             "event will arrive; pass --subscribe KIND (call, sms, agent_status, contact, changelog)")


def _clean_up(client: DialpadClient, websocket: Optional[Any], created: List[Tuple[str, Any]]) -> None:
    for kind, sub_id in reversed(created):
        try:
            client.delete_subscription(kind, sub_id)
            _say(f"deleted Dialpad {kind} subscription {sub_id}")
        except RtsyncError as exc:
            _say(f"could not delete Dialpad {kind} subscription {sub_id} ({type(exc).__name__}); "
                 f"delete it yourself: DELETE /api/v2/subscriptions/{kind}/{sub_id}")
    if websocket is not None:
        try:
            client.delete_websocket(websocket)
            _say(f"deleted Dialpad websocket {websocket}")
        except RtsyncError as exc:
            _say(f"could not delete Dialpad websocket {websocket} ({type(exc).__name__}); "
                 f"delete it yourself: DELETE /api/v2/websockets/{websocket}")


def demo(run: Demo) -> None:
    """A local Dialpad issuing 2-second tokens; subscriptions route a call (ringing, connected, hangup
    across refreshes), an SMS and a contact change to the client."""
    servers = local_servers("dialpad")
    with servers.DialpadServer(api_keys={"demo-key"}, token_lifetime=2.0) as server:
        client = run.watch(DialpadClient("demo-key", url=server.url,
                                         secret="demo-secret-for-hs256-signed-events", refresh_margin=1.0,
                                         backoff=Backoff(base=0.2, cap=1.0)))
        run.say(f"a local Dialpad on {server.url} issuing 2-second socket URLs")
        client.create_subscription("call", call_states=["ringing", "connected", "hangup"])  # creates the websocket
        client.create_subscription("sms", direction="inbound")
        client.create_subscription("contact", contact_type="shared")
        with client:
            run.wait(lambda: client.connected, "the client did not connect", client)
            run.say("connected; a call rings, connects and hangs up while the URL is refreshed")
            for state in ("ringing", "connected", "hangup"):
                server.publish(servers.call_event(state, call_id=6421977457180672), route=True)
                run.pause(min(1.0, run.duration / 6))  # the URL is refreshed in between, make-before-break
            server.publish(servers.sms_event("Thanks for calling!"), route=True)
            server.publish(servers.contact_event("Created", display_name="Ada Lovelace"), route=True)
            run.pause(0.3)
