"""DashlyClient against the local push stream server on all three transports."""

from __future__ import annotations

import threading
import time
from typing import List

import pytest

import rtsync
from rtsync.events import Event
from rtsync.testing.dashly import DashlyServer
from rtsync.vendors.dashly import CHANNEL_DELETED
from tests.conftest import wait_for
from tests.dashly_support import FAST, TRANSPORTS, make, server  # noqa: F401 - server is a fixture

def collect(c: rtsync.Client, pattern: str = "c.*") -> List[Event]:
    got: List[Event] = []
    c.on(pattern, got.append)
    return got


def wait_connected(c: rtsync.Client) -> threading.Event:
    flag = threading.Event()
    c.on("rtsync.connected", lambda e: flag.set())
    return flag


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_receives_in_order_with_ids_tags_and_times(server: DashlyServer, transport: str) -> None:
    c = make(server, transport)
    got = collect(c)
    up = wait_connected(c)
    with c:
        assert up.wait(5)
        for n in range(5):
            server.publish("c.1", {"n": n})
            server.publish("c.2", {"n": n})
        assert wait_for(lambda: len(got) == 10)
    for ch in ("c.1", "c.2"):
        mine = [e for e in got if e.channel == ch]
        assert [e.id for e in mine] == [1, 2, 3, 4, 5] and [e.data["n"] for e in mine] == list(range(5))
    assert all(e.name == e.channel and e.provider == "dashly" and e.tag >= 1 and e.time for e in got)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_resume_after_drop_loses_nothing_and_repeats_nothing(server: DashlyServer, transport: str) -> None:
    c = make(server, transport)
    got = collect(c)
    up = wait_connected(c)
    reconnected = threading.Event()
    c.on("rtsync.connected", lambda e: reconnected.set() if e.data["reconnect"] else None)
    with c:
        assert up.wait(5)
        server.publish("c.1", {"n": 0})
        assert wait_for(lambda: len(got) == 1)
        server.drop()
        for n in range(1, 6):  # published while the client is away or reconnecting
            server.publish("c.1", {"n": n})
        if transport == "websocket":
            assert reconnected.wait(5)
        assert wait_for(lambda: len(got) == 6)
        time.sleep(0.3)
    assert [e.data["n"] for e in got] == list(range(6))


def test_cursor_goes_back_percent_encoded_never_plus(server: DashlyServer) -> None:
    c = make(server, "shortpoll")
    got = collect(c)
    with c:
        server.publish("c.1", {})
        time.sleep(0.3)
        server.publish("c.1", {})
        assert wait_for(lambda: len(got) >= 1)
    resumed = [r for r in server.requests if "time=" in r]
    assert resumed and all("%20" in r and "+" not in r for r in resumed)


def test_forbidden_token_is_fatal_on_every_transport(server: DashlyServer) -> None:
    for transport in TRANSPORTS:
        c = rtsync.DashlyClient("nope", channels=["c.1"], transport=transport, url=server.url, backoff=FAST)
        before = len(server.requests)
        with pytest.raises(rtsync.AuthenticationError):
            c.run_forever()
        assert len(server.requests) - before == 1, transport


def test_rejected_channel_close_1008_is_fatal_and_explained(server: DashlyServer) -> None:
    c = make(server, "websocket", channels=["c.1"])
    c._shards[0].state.channels.append("x" * 201)  # noqa: SLF001  # bypass our own validation to see the server's answer
    with pytest.raises(rtsync.RequestRejected, match="Channel id is too large"):
        c.run_forever()


def test_channel_deleted_event(server: DashlyServer) -> None:
    c = make(server, "websocket")
    deleted: List[Event] = []
    c.on(CHANNEL_DELETED, deleted.append)
    up = wait_connected(c)
    with c:
        assert up.wait(5)
        server.publish("c.2", {})
        time.sleep(0.2)
        assert server.delete("c.2")
        assert wait_for(lambda: len(deleted) == 1)
    assert deleted[0].channel == "c.2"


def test_out_of_order_workers_lose_nothing_on_long_poll() -> None:
    with DashlyServer(tokens={"tok"}, reorder=True, longpoll_timeout=2) as server:
        c = make(server, "longpoll", channels=["c.1", "c.2"])
        got = collect(c)
        up = wait_connected(c)
        with c:
            assert up.wait(5)
            for n in range(30):
                server.publish("c.1" if n % 2 else "c.2", {"n": n})
                time.sleep(0.01)
            assert wait_for(lambda: len(got) == 30, timeout=10)
            time.sleep(0.3)
        assert sorted(e.data["n"] for e in got) == list(range(30))


def test_checkpoint_resumes_the_next_run_exactly(server: DashlyServer, tmp_path) -> None:
    path = tmp_path / "cursor.json"
    first = make(server, "websocket", channels=["c.1"], checkpoint=rtsync.FileCheckpoint(path))
    got1 = collect(first)
    up = wait_connected(first)
    with first:
        assert up.wait(5)
        for n in range(3):
            server.publish("c.1", {"n": n})
        assert wait_for(lambda: len(got1) == 3)
    for n in range(3, 6):
        server.publish("c.1", {"n": n})  # while nobody listens
    second = make(server, "longpoll", channels=["c.1"], checkpoint=rtsync.FileCheckpoint(path))
    got2 = collect(second)
    with second:
        assert wait_for(lambda: len(got2) == 3)
        time.sleep(0.3)
    assert [e.data["n"] for e in got2] == [3, 4, 5]


def test_missing_ids_become_a_gap_event() -> None:
    with DashlyServer(tokens={"tok"}, store_size=2) as server:
        c = make(server, "shortpoll", channels=["c.1"], gap_grace=0.1, poll_interval=0.2)
        got = collect(c)
        gaps: List[Event] = []
        c.on("rtsync.gap", gaps.append)
        with c:
            assert c.wait_connected(5)  # a short poll starts from the server's time at its first poll
            server.publish("c.1", {"n": 0})
            assert wait_for(lambda: len(got) == 1)
            c._http.cancel()  # noqa: SLF001 - make the next polls fail so messages pile up
            for n in range(1, 6):
                server.publish("c.1", {"n": n})  # only the last 2 stay in the store
            c._http.reset()  # noqa: SLF001
            assert wait_for(lambda: len(gaps) == 1, timeout=10)
        assert gaps[0].data["missing_ids"] == [2, 3, 4]


def test_tls_on_by_default() -> None:
    c = rtsync.DashlyClient("tok", channels=["c.1"])
    assert c.protocol.handshake().url.startswith("wss://realtime-services.dashly.app/")
    assert c.verify is True


class _Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_channel_collected_between_runs_restarts_at_id_1_and_nothing_is_lost(transport: str) -> None:
    clock = _Clock()
    with DashlyServer(tokens={"tok"}, longpoll_timeout=1.0, ping_interval=0.5, clock=clock, message_ttl=60) as server:
        c = make(server, transport, gap_grace=0.2)
        got = collect(c)
        gaps = collect(c, "rtsync.gap")
        up = wait_connected(c)
        c.start()
        assert up.wait(5)
        for n in range(3):
            server.publish("c.1", {"n": n})
        assert wait_for(lambda: len(got) == 3)
        c.stop()
        assert wait_for(lambda: server.subscribers("c.1") == 0)
        clock.offset += 120  # messages expire, then the idle channel is garbage-collected
        assert [server.publish("c.1", {"n": n})[0] for n in range(3, 6)] == [1, 2, 3]
        assert server.collected == ["c.1"]
        with c:
            assert wait_for(lambda: len([e for e in got if e.name == "c.1"]) >= 6)
            time.sleep(0.5)
    assert [e.data["n"] for e in got if e.name == "c.1"] == list(range(6))
    assert gaps == []
