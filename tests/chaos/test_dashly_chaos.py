"""Dashly under faults: repeated drops while publishing, restarts, silent links, malformed and oversized frames."""

from __future__ import annotations

import struct
import threading
import time
from collections import defaultdict
from typing import Dict, Iterator, List, Tuple

import pytest

import rtsync
from rtsync.events import Event
from rtsync.testing.dashly import DashlyServer
from rtsync.vendors.dashly import DashlyEvent
from tests.conftest import wait_for

FAST = rtsync.Backoff(base=0.02, cap=0.1)
CHANNELS = ["conversation_reply.1", "conversation_typing.1", "user_presence_changed.1"]


@pytest.fixture
def server() -> Iterator[DashlyServer]:
    with DashlyServer(tokens={"tok"}, longpoll_timeout=1.0, ping_interval=0.3, store_size=1000) as s:
        yield s


def make(server: DashlyServer, transport: str, **kw) -> rtsync.DashlyClient:
    kw.setdefault("backoff", FAST)
    return rtsync.DashlyClient("tok", channels=CHANNELS, transport=transport, url=server.url, poll_interval=0.05, **kw)


def watch(c: rtsync.Client) -> Tuple[List[Event], List[Event], threading.Event]:
    """Record replies and errors; the Event is set once connected."""
    got: List[Event] = []
    errors: List[Event] = []
    up = threading.Event()
    c.on("conversation_reply.1", got.append)
    c.on("rtsync.error", errors.append)
    c.on("rtsync.connected", lambda e: up.set())
    return got, errors, up


@pytest.mark.parametrize("transport", ["websocket", "longpoll", "shortpoll"])
def test_every_message_exactly_once_in_channel_order_across_drops(server: DashlyServer, transport: str) -> None:
    drops, total = 8, 300
    c = make(server, transport)
    got: Dict[str, List[int]] = defaultdict(list)
    c.on("*", lambda e: got[e.channel].append(e.data["n"]) if e.channel in CHANNELS else None)
    up = threading.Event()
    c.on("rtsync.connected", lambda e: up.set())
    with c:
        assert up.wait(5)
        for n in range(total):
            server.publish(CHANNELS[n % 3], {"n": n})
            if n % (total // drops) == total // drops - 1:
                server.drop()
            time.sleep(0.001)
        assert wait_for(lambda: sum(map(len, got.values())) >= total, timeout=20)
        time.sleep(0.5)  # anything extra (a duplicate) would show up now
    for i, ch in enumerate(CHANNELS):
        assert got[ch] == list(range(i, total, 3)), ch


def test_server_restart_resets_ids_and_delivery_goes_on(server: DashlyServer) -> None:
    c = make(server, "websocket")
    got: List[Event] = []
    c.on("conversation_reply.1", got.append)
    up = threading.Event()
    c.on("rtsync.connected", lambda e: up.set())
    with c:
        assert up.wait(5)
        server.publish("conversation_reply.1", {"n": 0})
        server.publish("conversation_reply.1", {"n": 1})
        assert wait_for(lambda: len(got) == 2)
        up.clear()
        time.sleep(1.1)  # the restarted server's messages are in a later second
        server.restart()
        assert up.wait(5)
        server.publish("conversation_reply.1", {"n": 2})  # id 1 again on the fresh server
        assert wait_for(lambda: len(got) == 3)
    assert [(e.id, e.data["n"]) for e in got] == [(1, 0), (2, 1), (1, 2)]


def test_silent_websocket_is_detected_as_stale_and_resumed(server: DashlyServer) -> None:
    c = make(server, "websocket", ping_interval=0.3, ping_timeout=0.3)
    got: List[Event] = []
    reasons: List[str] = []
    c.on("conversation_reply.1", got.append)
    c.on("rtsync.disconnected", lambda e: reasons.append(e.data["reason"]))
    up = threading.Event()
    c.on("rtsync.connected", lambda e: up.set())
    with c:
        assert up.wait(5)
        server.silence(True)
        server.publish("conversation_reply.1", {"n": 0})  # stored, never sent on the silent link
        assert wait_for(lambda: reasons, timeout=5)
        server.silence(False)
        assert wait_for(lambda: len(got) == 1, timeout=5)
    assert "no frame" in reasons[0]


def test_malformed_frames_are_reported_and_the_stream_goes_on(server: DashlyServer) -> None:
    c = make(server, "websocket")
    got, errors, up = watch(c)
    with c:
        assert up.wait(5)
        server.inject("{this is not json")
        server.inject('{"id":"x","channel":"conversation_reply.1"}')
        server.inject('{"id":5,"channel":"conversation_reply.1","message":{},"tag":"1","time":"yesterday"}')
        server.publish("conversation_reply.1", {"n": 1})
        assert wait_for(lambda: len(got) == 1 and len(errors) == 3)
    assert all(e.data["fatal"] is False for e in errors)


def test_oversized_frame_is_skipped_reported_and_the_link_survives(server: DashlyServer) -> None:
    c = make(server, "websocket", max_message_size=64 * 1024)
    got, errors, up = watch(c)
    with c:
        assert up.wait(5)
        big = b"x" * (1024 * 1024)
        server.inject_bytes(struct.pack("!BBQ", 0x81, 127, len(big)) + big)
        server.publish("conversation_reply.1", {"n": 1})
        assert wait_for(lambda: len(got) == 1 and errors)
    assert isinstance(errors[0].data["exception"], rtsync.FrameTooLarge)
    assert "max_message_size" in errors[0].data["error"]


def test_non_utf8_ping_payload_kills_the_link_on_the_server(server: DashlyServer) -> None:
    # The trap the reference warns about; our own keepalive pings are always empty.
    import websocket

    ws = websocket.create_connection(f"{server.ws_url}/websocket/c.1?auth_token=tok")
    ws.ping(b"\xff\xfe\x00\x01")
    ws.settimeout(2)
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
        ws.recv()
    ws.close()


def test_stop_at_any_moment_leaves_no_thread(server: DashlyServer) -> None:
    for delay in (0.0, 0.005, 0.02, 0.05, 0.1):
        for transport in ("websocket", "longpoll"):
            c = make(server, transport)
            c.start()
            time.sleep(delay)
            t0 = time.monotonic()
            c.stop()
            assert time.monotonic() - t0 < 1.0


# -- server restarts and channel garbage collection: ids start again at 1 -----------------------

class FrozenClock:
    """The server's clock, stuck in one second (plus `offset`): every restart reuses ids AND tags.

    Ahead of the real clock, which the client's first cursor comes from (the `Date` of a short poll).
    """

    def __init__(self) -> None:
        self.base = float(int(time.time())) + 30.5
        self.offset = 0.0

    def __call__(self) -> float:
        return self.base + self.offset


def replies(c: rtsync.DashlyClient, channel: str = "conversation_reply.1"):
    got: List[Event] = []
    gaps: List[Event] = []
    up = threading.Event()
    c.on(channel, lambda e: got.append(e) if isinstance(e, DashlyEvent) else None)
    c.on("rtsync.gap", gaps.append)
    c.on("rtsync.connected", lambda e: up.set())
    return got, gaps, up


@pytest.mark.parametrize("transport", ["websocket", "longpoll"])
def test_restarts_within_one_second_lose_nothing(transport: str) -> None:
    # Before the fix the new server's ids 1, 2 (tags 1, 2 again) were dropped as repeats.
    # Not short poll: a restart between two polls fails no request, and the module itself
    # then skips the new server's messages of that second (their tags are below the cursor).
    clock = FrozenClock()
    with DashlyServer(tokens={"tok"}, longpoll_timeout=1.0, ping_interval=0.3, clock=clock) as server:
        c = make(server, transport)
        got, gaps, up = replies(c)
        expected: List[int] = []
        with c:
            assert up.wait(5)
            for restart in range(6):
                for k in range(2):
                    n = restart * 2 + k
                    assert server.publish("conversation_reply.1", {"n": n}) == [k + 1]
                    expected.append(n)
                assert wait_for(lambda: len(got) >= len(expected), timeout=5), (restart, got)
                up.clear()
                server.restart(downtime=0.2)  # a real restart refuses connections for a moment
                if transport == "websocket":
                    assert up.wait(5)
                else:
                    time.sleep(0.3)  # the long poll in flight fails and is retried
            time.sleep(0.5)  # a duplicate would show up now
    assert [e.data["n"] for e in got] == expected
    assert gaps == []


@pytest.mark.parametrize("transport", ["websocket", "longpoll", "shortpoll"])
def test_restart_while_away_in_the_same_second_delivers_the_new_server_backlog(transport: str) -> None:
    clock = FrozenClock()
    with DashlyServer(tokens={"tok"}, longpoll_timeout=1.0, ping_interval=0.3, clock=clock) as server:
        c = make(server, transport)
        got, gaps, up = replies(c)
        with c:
            assert up.wait(5)
            for n in range(3):
                server.publish("conversation_reply.1", {"n": n})
            assert wait_for(lambda: len(got) == 3)
            server.restart(downtime=0.3)
            for n in range(3, 6):  # same ids 1..3, same tags 1..3, before the client is back
                server.publish("conversation_reply.1", {"n": n})
            assert wait_for(lambda: len(got) >= 6, timeout=8), [e.data for e in got]
            time.sleep(0.5)
    assert [(e.id, e.data["n"]) for e in got] == [(1, 0), (2, 1), (3, 2), (1, 3), (2, 4), (3, 5)]
    assert gaps == []


@pytest.mark.parametrize("transport", ["websocket", "longpoll", "shortpoll"])
def test_channel_collected_while_away_restarts_ids_and_evicted_ones_are_a_gap(transport: str) -> None:
    clock = FrozenClock()
    clock.base = time.time()
    with DashlyServer(tokens={"tok"}, longpoll_timeout=1.0, ping_interval=0.3, clock=clock,
                      message_ttl=60, store_size=2) as server:
        c = make(server, transport, gap_grace=0.2)
        got, gaps, up = replies(c)
        c.start()
        assert up.wait(5)
        for n in range(5):
            server.publish("conversation_reply.1", {"n": n})
            assert wait_for(lambda: len(got) == n + 1)
        c.stop()
        assert wait_for(lambda: server.subscribers("conversation_reply.1") == 0)
        clock.offset += 120  # the stored messages expire, then the idle channel is collected
        assert [server.publish("conversation_reply.1", {"n": n})[0] for n in range(5, 9)] == [1, 2, 3, 4]
        assert server.collected == ["conversation_reply.1"]
        with c:
            assert wait_for(lambda: len(got) >= 7 and gaps, timeout=5), ([e.data for e in got], gaps)
            time.sleep(0.4)
    assert [e.data["n"] for e in got] == [0, 1, 2, 3, 4, 7, 8]  # 5 and 6 were evicted (store_size=2)
    assert [(g.data["channel"], g.data["missing"], g.data["missing_ids"]) for g in gaps] == [
        ("conversation_reply.1", 2, [1, 2])]
    assert "reason" in gaps[0].data


@pytest.mark.parametrize("transport", ["websocket", "longpoll"])
def test_collected_channel_comes_back_out_of_order_and_both_ids_arrive(transport: str) -> None:
    clock = FrozenClock()
    clock.base = time.time()
    with DashlyServer(tokens={"tok"}, longpoll_timeout=1.0, ping_interval=0.3, clock=clock,
                      message_ttl=60, reorder=True) as server:
        c = make(server, transport, gap_grace=0.2)
        got, gaps, up = replies(c)
        c.start()
        assert up.wait(5)
        server.publish("conversation_reply.1", {"n": 0})
        assert wait_for(lambda: len(got) == 1)
        c.stop()
        assert wait_for(lambda: server.subscribers("conversation_reply.1") == 0)
        clock.offset += 120
        with c:
            assert wait_for(lambda: server.subscribers("conversation_reply.1") == 1)
            assert server.collected == ["conversation_reply.1"]
            # ids 1 and 2 of the channel's new life, delivered 2 first (two nginx workers)
            assert server.publish(["conversation_reply.1"] * 2, {"n": 1}) == [1, 2]
            assert wait_for(lambda: len(got) >= 3, timeout=3), [(e.id, e.data) for e in got]
            time.sleep(0.4)
    assert sorted(e.id for e in got[1:]) == [1, 2] and len(got) == 3
    assert gaps == []


# -- poison messages: stored, so replayed on every resume -------------------------------------

DEEP = "[" * 5000 + "]" * 5000  # valid JSON that json.loads cannot decode (RecursionError)
POISONS = {
    "deep": DEEP,
    "id-1e999": '{},"id":1e999',  # the template pastes the body unescaped: a duplicate key wins
    "id-true": '{},"id":true',
    "channel-list": '{},"channel":[1]',
}


@pytest.mark.parametrize("poison", sorted(POISONS))
@pytest.mark.parametrize("transport", ["longpoll", "websocket", "shortpoll"])
def test_stored_poison_message_is_reported_once_and_everything_else_delivered(transport: str, poison: str) -> None:
    # Before the fix, on polling: the exception lost the whole response (its good messages were
    # marked seen but never delivered) and the cursor never moved, so every resume replayed the
    # poison: nothing was delivered again.
    with DashlyServer(tokens={"tok"}, longpoll_timeout=1.0, ping_interval=0.3) as server:
        c = make(server, transport)
        got, errors, up = watch(c)
        c.start()
        assert up.wait(5)
        server.publish("conversation_reply.1", {"n": 0})
        assert wait_for(lambda: len(got) == 1)
        c.stop()
        server.publish("conversation_reply.1", {"n": 1})
        server.publish("conversation_reply.1", POISONS[poison])
        server.publish("conversation_reply.1", {"n": 2})  # the same backlog as the poison
        with c:
            assert wait_for(lambda: len(got) >= 3, timeout=5), [e.data for e in got]
            for n in range(3, 8):  # published after it
                server.publish("conversation_reply.1", {"n": n})
            assert wait_for(lambda: len(got) >= 8, timeout=5), [e.data for e in got]
            time.sleep(0.3)
    assert [e.data["n"] for e in got] == list(range(8))
    assert len(errors) == 1, [e.data["error"] for e in errors]
    report = errors[0].data
    assert isinstance(report["exception"], rtsync.ProtocolError) and report["fatal"] is False
    assert "Dashly message" in report["error"] and len(report["error"]) < 260


@pytest.mark.parametrize("transport", ["websocket", "longpoll", "shortpoll"])
def test_many_connections_through_drops_and_channel_changes_deliver_each_message_once(
    server: DashlyServer, transport: str
) -> None:
    """120 channels on 3 connections; drops cut them all while publishing and the channel list changes:
    every message of a channel subscribed throughout arrives exactly once, in per-channel order."""
    channels = [f"c.{i}" for i in range(120)]
    c = rtsync.DashlyClient("tok", channels=channels, transport=transport, url=server.url, backoff=FAST,
                            poll_interval=0.05, gap_grace=5.0)
    got: Dict[str, List[int]] = defaultdict(list)
    c.on("c.*", lambda e: got[e.channel].append(e.data["n"]))
    steady = [f"c.{i}" for i in (0, 49, 50, 99, 100, 119)]
    sent: Dict[str, int] = defaultdict(int)
    with c:
        assert c.wait_connected(10) and c.connections == 3
        for round_ in range(6):
            for _ in range(10):
                for ch in steady:
                    server.publish(ch, {"n": sent[ch]})
                    sent[ch] += 1
            if round_ % 2:
                server.drop()
            elif round_ == 2:
                c.add_channels([f"x.{i}" for i in range(60)])  # fills the last connection, opens a fourth
                assert c.connections == 4
            elif round_ == 4:
                c.remove_channels([f"c.{i}" for i in range(1, 49)])
        assert wait_for(lambda: all(len(got[ch]) == sent[ch] for ch in steady), timeout=30), \
            {ch: (len(got[ch]), sent[ch]) for ch in steady}
    for ch in steady:
        assert got[ch] == list(range(sent[ch])), ch
    assert c.stats.gaps == 0 and c.error is None


@pytest.mark.parametrize("transport", ["websocket", "longpoll", "shortpoll"])
def test_a_server_clock_behind_ours_still_delivers_from_the_first_message(transport: str) -> None:
    # The first cursor comes from the server's `Date`; the local server used to stamp it from the
    # real clock while stamping messages from its own, so a test clock that had fallen into an
    # earlier second than the real one (any frozen clock, under load) made every message look older
    # than the cursor: polling never received it.
    clock = FrozenClock()
    clock.base = float(int(time.time())) - 5
    with DashlyServer(tokens={"tok"}, longpoll_timeout=1.0, ping_interval=0.3, clock=clock) as server:
        c = make(server, transport)
        got, gaps, up = replies(c)
        with c:
            assert up.wait(5)
            for n in range(3):
                server.publish("conversation_reply.1", {"n": n})
                assert wait_for(lambda: len(got) == n + 1), [e.data for e in got]
    assert [e.data["n"] for e in got] == [0, 1, 2] and gaps == []
