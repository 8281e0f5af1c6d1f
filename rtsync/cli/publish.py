"""`rtsync publish <vendor>`: send one event to a server started by `rtsync serve` (Dashly: any push stream /pub).

Dashly's push stream server has a publisher endpoint of its own (`POST
/pub?id=<channel>`), so that is what the command uses. The other vendors'
servers have none a user may call, so `rtsync serve` opens a loopback-only
door on its local server, `POST /_rtsync/publish`, and this command sends the
server's `publish(...)` arguments there as JSON.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Dict, List, Tuple
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from ..errors import ConfigurationError, ConnectionLost

__all__ = ["add_parser", "publish"]

VENDORS = ("dashly", "voxsig", "quickmeet", "dialpad", "doshii")

HELP = {
    "dashly": "publish DATA to a channel through the push stream's own /pub endpoint",
    "voxsig": "broadcast event EVENT with DATA (a JSON object) to a stream",
    "quickmeet": "write DATA (text) in a room as another user",
    "dialpad": "send DATA (a JSON event, e.g. a call event) to every open event socket",
    "doshii": "emit event EVENT with DATA (a JSON payload) to every connected app",
}


def add_parser(sub: Any, epilog: str) -> None:
    """Add `publish VENDOR ...` to the command's subparsers."""
    publish = sub.add_parser("publish", help="send one event to a server started by `rtsync serve`",
                             description="Send one event to a local server started by `rtsync serve VENDOR` "
                                         "(which prints a ready-made publish line).", epilog=epilog)
    vendors = publish.add_subparsers(dest="vendor", required=True, metavar="VENDOR",
                                     help="whose server (rtsync publish VENDOR --help for its options)")
    for name in VENDORS:
        p = vendors.add_parser(name, help=HELP[name], description=HELP[name].capitalize() + ".", epilog=epilog)
        p.add_argument("--url", required=True, help="the URL `rtsync serve` printed (the listen command's --url)")
        if name == "dashly":
            p.add_argument("--channel", action="append", required=True,
                           help="channel to publish to (repeatable: one message in each)")
        elif name == "voxsig":
            p.add_argument("--stream", default="account_1",
                           help="stream to broadcast to: account_<id> or a pubsub token (default account_1)")
            p.add_argument("--event", required=True, help="event name, e.g. message.created")
            p.add_argument("--account-id", type=int, default=1, help="account id added to the data (default 1)")
        elif name == "quickmeet":
            p.add_argument("--room", required=True, help="room id, e.g. GENERAL")
            p.add_argument("--user", default="bob", help="who writes the message (default bob)")
        elif name == "doshii":
            p.add_argument("--event", required=True, help="event name, e.g. order_created")
        p.add_argument("data", metavar="DATA",
                       help="the message text" if name == "quickmeet" else "the event's body as JSON")
        p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                       help="print nothing on success")


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"DATA is not JSON ({exc}); quote it for the shell, e.g. '{{\"n\": 1}}'") from None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    if scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"--url must be the http(s):// or ws(s):// URL `rtsync serve` printed, not {url!r}")
    return urlunsplit((scheme, parts.netloc, "", "", ""))


def _control(args: argparse.Namespace) -> Tuple[List[Any], Dict[str, Any]]:
    """The local server's `publish(*args, **kwargs)` for this vendor."""
    if args.vendor == "voxsig":
        data = _json(args.data)
        if not isinstance(data, dict):
            raise ConfigurationError("voxsig DATA must be a JSON object, e.g. '{\"content\": \"hi\"}'")
        return [args.stream, args.event, data], {"account_id": args.account_id}
    if args.vendor == "quickmeet":
        return [args.room, args.data], {"user": args.user}
    if args.vendor == "dialpad":
        event = _json(args.data)
        if not isinstance(event, dict):
            raise ConfigurationError("dialpad DATA must be a JSON object (an event)")
        return [event], {}
    return [args.event, _json(args.data)], {}


def publish(args: argparse.Namespace, connect_timeout: float = 10.0) -> str:
    """Send the event; returns the server's answer (one line). Raises ConnectionLost if unreachable."""
    origin = _origin(args.url)
    try:
        if args.vendor == "dashly":
            _json(args.data)  # the push stream takes any text; a JSON mistake is ours to catch
            ids = "/".join(quote(c, safe="") for c in args.channel)
            response = requests.post(f"{origin}/pub?id={ids}", data=args.data.encode(), timeout=connect_timeout)
        else:
            positional, keywords = _control(args)
            response = requests.post(f"{origin}/_rtsync/publish", json={"args": positional, "kwargs": keywords},
                                     timeout=connect_timeout)
    except requests.RequestException as exc:
        raise ConnectionLost(f"cannot reach {origin} ({type(exc).__name__}); "
                             f"is `rtsync serve {args.vendor}` running there?") from None
    if response.status_code == 404 and args.vendor != "dashly":
        raise ConfigurationError(f"{origin} has no publish door: start the server with `rtsync serve {args.vendor}`")
    if response.status_code >= 400:
        try:
            why = response.json().get("error") or response.text
        except ValueError:
            why = response.headers.get("X-Nginx-PushStream-Explain") or response.reason
        raise ConfigurationError(f"the server refused the event (HTTP {response.status_code}): {why}")
    return " ".join(response.text.split())
