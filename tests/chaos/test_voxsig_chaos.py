"""Voxsig under faults: drops, server_restart, remote disconnects, stale links, malformed frames, slow callbacks."""

from __future__ import annotations

import time
from typing import Iterator, List

import pytest

import rtsync
from rtsync.events import Event
from rtsync.testing.voxsig import VoxsigServer
from tests.conftest import wait_for

FAST = rtsync.Backoff(base=0.05, cap=0.2)


@pytest.fixture
def server() -> Iterator[VoxsigServer]:
    with VoxsigServer(ping_interval=0.2) as s:
        yield s


def agent(server: VoxsigServer, **kw) -> rtsync.VoxsigClient:
    kw.setdefault("ping_timeout", 1.0)
    return rtsync.VoxsigClient("good-user-token", account_id=1, user_id=1, url=server.url, backoff=FAST, **kw)


def lifecycle(c: rtsync.Client) -> List[Event]:
    events: List[Event] = []
    c.on("rtsync.*", events.append)
    return events


def connections(events: List[Event]) -> List[Event]:
    return [e for e in events if e.name == "rtsync.connected"]


@pytest.mark.parametrize("fault", ["drop", "server_restart", "remote_7.1", "remote_6.1", "restart"])
def test_reconnects_resubscribes_and_says_it_was_a_reconnection(server: VoxsigServer, fault: str) -> None:
    c = agent(server)
    events = lifecycle(c)
    got: List[Event] = []
    c.on("message.created", got.append)
    with c:
        assert wait_for(lambda: len(connections(events)) == 1)
        {"drop": server.drop, "server_restart": server.server_restart, "restart": server.restart,
         "remote_7.1": lambda: server.remote_disconnect("7.1"),
         "remote_6.1": lambda: server.remote_disconnect("6.1")}[fault]()
        assert wait_for(lambda: len(connections(events)) == 2, timeout=5)
        assert wait_for(lambda: server.subscribers("account_1") == 1)
        server.publish("account_1", "message.created", {"id": 2})
        assert wait_for(lambda: got)
    assert connections(events)[1].data["reconnect"] is True


def test_silent_server_is_stale_and_recovered(server: VoxsigServer) -> None:
    c = agent(server, presence_interval=60)
    events = lifecycle(c)
    with c:
        assert wait_for(lambda: len(connections(events)) == 1)
        server.silence(True)
        assert wait_for(lambda: any(e.name == "rtsync.disconnected" for e in events), timeout=5)
        server.silence(False)
        assert wait_for(lambda: len(connections(events)) == 2, timeout=5)
    reason = next(e for e in events if e.name == "rtsync.disconnected").data["reason"]
    assert "no frame from Voxsig" in reason


def test_malformed_frames_do_not_break_the_stream(server: VoxsigServer) -> None:
    c = agent(server)
    events = lifecycle(c)
    got: List[Event] = []
    c.on("message.created", got.append)
    with c:
        assert wait_for(lambda: len(connections(events)) == 1)

        async def junk() -> None:
            for ws in list(server.websockets):
                await ws.send_str("{not json")
                await ws.send_str("[1,2,3]")

        server.call(junk)
        server.publish("account_1", "message.created", {"id": 1})
        assert wait_for(lambda: got)
    errors = [e for e in events if e.name == "rtsync.error"]
    assert len(errors) == 2 and len(connections(events)) == 1


def test_slow_callbacks_do_not_make_the_link_stale(server: VoxsigServer) -> None:
    c = agent(server, ping_timeout=0.6)
    events = lifecycle(c)
    got: List[int] = []
    c.on("message.created", lambda e: (time.sleep(0.1), got.append(e.data["id"])))
    with c:
        assert wait_for(lambda: len(connections(events)) == 1)
        for i in range(20):  # 2 s of callback work, far beyond ping_timeout
            server.publish("account_1", "message.created", {"id": i})
        assert wait_for(lambda: len(got) == 20, timeout=10)
    assert got == list(range(20))
    assert not any(e.name == "rtsync.disconnected" for e in events)


def test_stop_at_any_point(server: VoxsigServer) -> None:
    for delay in (0.0, 0.01, 0.05, 0.15):
        c = agent(server)
        c.start()
        time.sleep(delay)
        t0 = time.monotonic()
        c.stop()
        assert time.monotonic() - t0 < 1.0


def test_old_shape_reconnect_keeps_what_precedes_the_new_confirm(server: VoxsigServer) -> None:
    # Older Chatwoot streams the token before its lookups: after a reconnect, broadcasts reach the new
    # subscription before its confirm. They are delivered, once, ahead of the reconnect's rtsync.connected.
    server.old_shape = True
    c = agent(server)
    events = lifecycle(c)
    got: List[object] = []
    c.on("message.created", lambda e: got.append(e.data["id"]))
    c.on("rtsync.connected", lambda e: got.append("connected"))
    with c:
        assert wait_for(lambda: len(connections(events)) == 1)
        server.hold_lookups = True
        server.drop()
        assert wait_for(lambda: server.parked == 1)
        for i in range(3):
            assert server.publish("good-user-token", "message.created", {"id": i}) == 1
        assert wait_for(lambda: len(got) == 4)
        server.hold_lookups = False
        server.release_lookups()
        assert wait_for(lambda: len(connections(events)) == 2)
        server.publish("good-user-token", "message.created", {"id": 3})
        assert wait_for(lambda: 3 in got)
    assert got == ["connected", 0, 1, 2, "connected", 3]
    assert connections(events)[1].data["reconnect"] is True
