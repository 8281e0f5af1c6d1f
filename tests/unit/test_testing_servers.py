"""The local servers in rtsync.testing share one shape (`.url`, `.publish()`, `.drop()`, `.restart()`) and stop quietly."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple
from urllib.parse import urlsplit

import pytest

pytest.importorskip("aiohttp")

import rtsync  # noqa: E402
from rtsync.testing._server import LocalServer  # noqa: E402
from rtsync.testing.dashly import DashlyServer  # noqa: E402
from rtsync.testing.dialpad import DialpadServer, call_event  # noqa: E402
from rtsync.testing.doshii import DoshiiServer  # noqa: E402
from rtsync.testing.quickmeet import QuickMeetServer  # noqa: E402
from rtsync.testing.voxsig import VoxsigServer  # noqa: E402

FAST = rtsync.Backoff(base=0.05, cap=0.2)
Server = Any  # each case's own server class
Client = Any


@dataclass
class Case:
    make_server: Callable[[], LocalServer]
    scheme: str  # of `.url`
    path: str  # of `.url`
    make_client: Callable[[Server], Client]
    publish: Callable[[Server], Any]  # one event through the new name
    ready: Callable[[Server, Client], None] = lambda server, client: None  # after the client is connected
    noise: Tuple[str, ...] = ()  # event names the server sends on its own (not ours to compare)
    # old name -> (how the old name is used, the same through the new name); properties compare to `.url`
    aliases: Dict[str, Tuple[Callable[[Server], Any], Callable[[Server], Any]]] = field(default_factory=dict)


def _quickmeet_ready(server: Server, client: Client) -> None:
    client.subscribe_room_messages("GENERAL")


def _dialpad_ready(server: Server, client: Client) -> None:
    client.create_subscription("call")  # websocket-wide: routed events reach the client's socket


CASES: Dict[str, Case] = {
    "dashly": Case(
        make_server=lambda: DashlyServer(tokens={"tok"}),
        scheme="http", path="",
        make_client=lambda s: rtsync.DashlyClient("tok", channels=["c.1"], url=s.url, backoff=FAST),
        publish=lambda s: s.publish("c.1", {"n": 1}),
    ),
    "voxsig": Case(
        make_server=lambda: VoxsigServer(),
        scheme="ws", path="/cable",
        make_client=lambda s: rtsync.VoxsigClient("good-user-token", account_id=1, user_id=1, url=s.url,
                                                  backoff=FAST),
        publish=lambda s: s.publish("account_1", "message.created", {"id": 1}),
        noise=("presence.update",),  # the answers to the client's update_presence
        aliases={
            "cable_url": (lambda s: s.cable_url, lambda s: s.url),
            "broadcast": (lambda s: s.broadcast("account_1", "message.created", {"id": 2}),
                          lambda s: s.publish("account_1", "message.created", {"id": 2})),
        },
    ),
    "quickmeet": Case(
        make_server=lambda: QuickMeetServer(),
        scheme="ws", path="/websocket",
        make_client=lambda s: rtsync.QuickMeetClient("alice", "alice-password", url=s.url, backoff=FAST),
        publish=lambda s: s.publish("GENERAL", "hello"),
        ready=_quickmeet_ready,
        aliases={
            "websocket_url": (lambda s: s.websocket_url, lambda s: s.url),
            "post": (lambda s: s.post("GENERAL", "again", "bob"), lambda s: s.publish("GENERAL", "again", "bob")),
        },
    ),
    "dialpad": Case(
        make_server=lambda: DialpadServer(api_keys={"key"}),
        scheme="http", path="",
        make_client=lambda s: rtsync.DialpadClient("key", url=s.url, backoff=FAST),
        publish=lambda s: s.publish(call_event("ringing", call_id=1)),
        ready=_dialpad_ready,
        aliases={
            "emit": (lambda s: s.emit(call_event("ringing", call_id=2)),
                     lambda s: s.publish(call_event("ringing", call_id=3), route=True)),  # not a repeat: no dedupe
        },
    ),
    "doshii": Case(
        make_server=lambda: DoshiiServer(client_ids={"cid"}),
        scheme="ws", path="/app/socket/v3",
        make_client=lambda s: rtsync.DoshiiClient("cid", url=s.url, rest_url=s.rest_url, backoff=FAST),
        publish=lambda s: s.publish("order_created", {"id": "3", "status": "pending"}),
        aliases={
            "socket_url": (lambda s: s.socket_url, lambda s: s.url),
            "emit": (lambda s: s.emit("order_updated", {"id": "3"}), lambda s: s.publish("order_updated", {"id": "3"})),
        },
    ),
}


def _next_event(client: Client, noise: Tuple[str, ...] = (), timeout: float = 5.0) -> rtsync.Event:
    """The client's next vendor event (lifecycle events and `noise` skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        event = client.receive(timeout=max(0.01, deadline - time.monotonic()))
        if not event.name.startswith("rtsync.") and event.name not in noise:
            return event


def _comparable(result: Any) -> Any:
    """A publish result with what differs between two sends of one event (a message's id and times) left out."""
    if isinstance(result, dict):
        return {k: v for k, v in result.items() if k not in ("_id", "ts", "_updatedAt")}
    if isinstance(result, list):  # Dashly: the ids, one per channel
        return len(result)
    return result


@pytest.mark.parametrize("vendor", sorted(CASES))
def test_every_server_has_the_shared_shape(vendor: str) -> None:
    case = CASES[vendor]
    server = case.make_server()
    for name in ("url", "publish", "drop", "restart"):
        assert hasattr(type(server), name), f"{type(server).__name__} has no .{name}"
    with server as entered:
        assert entered is server
        url = urlsplit(server.url)
        assert (url.scheme, url.hostname, url.port, url.path) == (case.scheme, server.host, server.port, case.path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the clients' own renames are not under test
            client = case.make_client(server)
        with client:
            assert client.wait_connected(10)
            case.ready(server, client)

            with warnings.catch_warnings():
                warnings.simplefilter("error", DeprecationWarning)  # the new names never warn
                assert server.url == server.url
                case.publish(server)
            first = _next_event(client, case.noise)

            for old, (use_old, use_new) in case.aliases.items():
                with pytest.warns(DeprecationWarning, match=rf"use \.\w+(\([^)]*\))?; \.{old}(\(\))? goes away"):
                    through_old = use_old(server)
                with warnings.catch_warnings():
                    warnings.simplefilter("error", DeprecationWarning)
                    through_new = use_new(server)
                assert _comparable(through_old) == _comparable(through_new), old
                if callable(getattr(type(server), old)):  # a method: both sends reach the client alike
                    assert through_new, f"{old}: the event reached nobody"
                    a, b = _next_event(client, case.noise), _next_event(client, case.noise)
                    assert (a.name, a.channel) == (b.name, b.channel), old

            assert server.drop() >= 1  # the client's connection, cut
            server.restart()
            assert urlsplit(server.url).port == url.port  # same place: the client finds it again
            deadline = time.monotonic() + 20
            while True:  # publish until the reconnected (and resubscribed) client hears one
                case.publish(server)
                try:
                    again = _next_event(client, case.noise, timeout=0.5)
                    break
                except rtsync.ReceiveTimeout:
                    assert time.monotonic() < deadline, "the client never heard the server after restart()"
            assert again.name == first.name


SCRIPT = textwrap.dedent('''
    import gc, sys, time
    import rtsync
    from rtsync.testing.dashly import DashlyServer
    from rtsync.testing.dialpad import DialpadServer, call_event
    from rtsync.testing.doshii import DoshiiServer
    from rtsync.testing.quickmeet import QuickMeetServer
    from rtsync.testing.voxsig import VoxsigServer

    FAST = rtsync.Backoff(base=0.05, cap=0.2)
    SHORT = "short"  # an HS256 key PyJWT finds too short: the servers must not warn about it

    def run(server, make, publish, server_first=True):
        server.start()
        client = make(server)
        client.start()
        assert client.wait_connected(10), type(server).__name__
        publish(server, client)
        time.sleep(0.2)
        if server_first:  # stopped under a connected client
            server.stop(); client.stop(timeout=5)
        else:  # the client goes first: its server-side handler may still be waiting (a long poll)
            client.stop(timeout=5); server.stop()
        gc.collect()

    for transport in ("websocket", "longpoll"):
        for server_first in (True, False):
            run(DashlyServer(tokens={"tok"}),
                lambda s: rtsync.DashlyClient("tok", channels=["c.1"], transport=transport, url=s.url, backoff=FAST),
                lambda s, c: s.publish("c.1", {"n": 1}), server_first)
    run(VoxsigServer(ping_interval=0.05),
        lambda s: rtsync.VoxsigClient("good-user-token", account_id=1, user_id=1, url=s.url, backoff=FAST),
        lambda s, c: s.publish("account_1", "message.created", {"id": 1}))
    run(QuickMeetServer(),
        lambda s: rtsync.QuickMeetClient("alice", "alice-password", url=s.url, backoff=FAST),
        lambda s, c: (c.subscribe_room_messages("GENERAL"), s.publish("GENERAL", "hi")))
    run(DialpadServer(api_keys={"key"}),
        lambda s: rtsync.DialpadClient("key", url=s.url, secret=SHORT, backoff=FAST),
        lambda s, c: s.publish(call_event("ringing")))
    run(DoshiiServer(client_ids={"cid"}, client_secrets={"cid": SHORT}),
        lambda s: rtsync.DoshiiClient("cid", url=s.url, rest_url=s.rest_url, client_secret=SHORT, backoff=FAST),
        lambda s, c: (c.list_devices(), s.publish("order_created", {"id": "3"})))
    gc.collect()
    print("all stopped", flush=True)
''')


def test_stopping_a_server_prints_nothing() -> None:
    root = Path(rtsync.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    env.pop("PYTHONWARNINGS", None)
    proc = subprocess.run([sys.executable, "-W", "default::UserWarning", "-c", SCRIPT], cwd=str(root), env=env,
                          capture_output=True, text=True, timeout=100)
    assert proc.returncode == 0 and "all stopped" in proc.stdout, proc.stderr[-3000:]
    problems: List[str] = [line for line in proc.stderr.splitlines() if any(
        text in line for text in ("Task was destroyed", "never retrieved", "InsecureKeyLengthWarning",
                                  "Traceback", "Unclosed", "ResourceWarning"))]
    assert not problems, proc.stderr[-3000:]
