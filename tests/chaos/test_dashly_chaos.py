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
from tests.conftest import wait_for

FAST = rtsync.Backoff(base=0.02, cap=0.1)
CHANNELS = ["conversation_reply.1", "conversation_typing.1", "user_presence_changed.1"]


@pytest.fixture
def server() -> Iterator[DashlyServer]:
    with DashlyServer(tokens={"tok"}, longpoll_timeout=1.0, ping_interval=0.3, store_size=1000) as s:
        yield s


def make(server: DashlyServer, transport: str, **kw) -> rtsync.DashlyClient:
    kw.setdefault("backoff", FAST)
    return rtsync.DashlyClient("tok", CHANNELS, transport=transport, url=server.http_url, poll_interval=0.05, **kw)


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
    c = make(server, "websocket", keepalive=0.3, pong_timeout=0.3)
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
