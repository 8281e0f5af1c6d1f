"""What `rtsync serve <vendor>` runs: each vendor's local server with demo credentials, and commands that reach it.

    with serve("voxsig") as server:       # control on: `rtsync publish` can reach it
        print(commands("voxsig", server.url))

Every recipe uses the credentials the matching `rtsync listen` line passes in
its environment variables; they are local, made-up values, never a vendor's.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence

from ._server import LocalServer

__all__ = ["RECIPES", "Recipe", "commands", "serve"]


@dataclass(frozen=True)
class Recipe:
    """One vendor's local server for `rtsync serve`, and the two commands a newcomer runs against it."""

    title: str
    make: Callable[[str, int], LocalServer]  # (host, port) -> a server not yet started
    listen: Callable[[str], List[str]]  # url -> the words of a `rtsync listen` command, env assignments first
    publish: Callable[[str], List[str]]  # url -> the words of a `rtsync publish` command


def _dashly(host: str, port: int) -> LocalServer:
    from .dashly import DashlyServer

    return DashlyServer(tokens={"demo-token"}, host=host, port=port)


def _voxsig(host: str, port: int) -> LocalServer:
    from .voxsig import VoxsigServer

    return VoxsigServer(host=host, port=port)


def _quickmeet(host: str, port: int) -> LocalServer:
    from .quickmeet import QuickMeetServer

    return QuickMeetServer(host=host, port=port)


def _dialpad(host: str, port: int) -> LocalServer:
    from .dialpad import DialpadServer

    return DialpadServer(api_keys={"demo-key"}, host=host, port=port)


def _doshii(host: str, port: int) -> LocalServer:
    from .doshii import DoshiiServer

    return DoshiiServer(client_ids={"demo-client-id"}, host=host, port=port)


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


RECIPES: Dict[str, Recipe] = {
    "dashly": Recipe(
        "a local Dashly push stream server (token demo-token)", _dashly,
        lambda url: ["RTSYNC_DASHLY_TOKEN=demo-token", "rtsync", "listen", "dashly", "--url", url,
                     "--channel", "conversation_reply.100"],
        lambda url: ["rtsync", "publish", "dashly", "--url", url, "--channel", "conversation_reply.100",
                     _json({"conversation": 42, "text": "Hello from rtsync publish"})],
    ),
    "voxsig": Recipe(
        "a local Voxsig ActionCable server (agent token good-user-token: user 1 of account 1)", _voxsig,
        lambda url: ["RTSYNC_VOXSIG_TOKEN=good-user-token", "rtsync", "listen", "voxsig", "--url", url,
                     "--account-id", "1", "--user-id", "1"],
        lambda url: ["rtsync", "publish", "voxsig", "--url", url, "--stream", "account_1",
                     "--event", "message.created", _json({"id": 1, "conversation_id": 42, "content": "Hello"})],
    ),
    "quickmeet": Recipe(
        "a local QuickMeet.Chat DDP server (users alice and bob, passwords alice-password, bob-password)",
        _quickmeet,
        lambda url: ["RTSYNC_QUICKMEET_PASSWORD=alice-password", "rtsync", "listen", "quickmeet", "--url", url,
                     "--username", "alice", "--room", "GENERAL"],
        lambda url: ["rtsync", "publish", "quickmeet", "--url", url, "--room", "GENERAL", "--user", "bob",
                     "Hello alice"],
    ),
    "dialpad": Recipe(
        "a local Dialpad REST API and event socket (API key demo-key)", _dialpad,
        lambda url: ["RTSYNC_DIALPAD_API_KEY=demo-key", "rtsync", "listen", "dialpad", "--url", url],
        lambda url: ["rtsync", "publish", "dialpad", "--url", url,
                     _json({"call_id": 6421977457180672, "state": "ringing", "direction": "inbound",
                            "target": {"type": "user", "id": 7}})],
    ),
    "doshii": Recipe(
        "a local Doshii App WebSocket v3 server (client id demo-client-id)", _doshii,
        lambda url: ["RTSYNC_DOSHII_CLIENT_ID=demo-client-id", "rtsync", "listen", "doshii", "--url", url],
        lambda url: ["rtsync", "publish", "doshii", "--url", url, "--event", "order_created",
                     _json({"id": "3", "status": "pending", "locationId": "loc-1"})],
    ),
}


def serve(vendor: str, *, host: str = "127.0.0.1", port: int = 0) -> LocalServer:
    """The vendor's local server with `rtsync publish`'s control door open; not started (use `with`)."""
    server = RECIPES[vendor].make(host, port)
    server.control = True
    return server


def _line(words: Sequence[str]) -> str:
    # Leading VAR=value words stay unquoted so that the shell reads them as assignments.
    return " ".join(w if "=" in w and w.split("=", 1)[0].isidentifier() and i == 0 else shlex.quote(w)
                    for i, w in enumerate(words))


def commands(vendor: str, url: str) -> Dict[str, str]:
    """The copy-pasteable `listen` and `publish` command lines for a served vendor at `url`."""
    recipe = RECIPES[vendor]
    return {"listen": _line(recipe.listen(url)), "publish": _line(recipe.publish(url))}
