"""Dialpad under faults: tokens expiring every second while events flow, drops, 429 storms, bad frames."""

from __future__ import annotations

import socket
import threading
import time
from typing import Iterator, List

import jwt
import pytest

import rtsync
from rtsync.events import Event
from rtsync.sansio import Handshake
from rtsync.testing.dialpad import DialpadServer, call_event
from tests.conftest import wait_for

KEY = "chaos-key"
FAST = rtsync.Backoff(base=0.05, cap=0.2)


@pytest.fixture
def server() -> Iterator[DialpadServer]:
    with DialpadServer(api_keys={KEY}, token_lifetime=1.2) as s:
        yield s


def make(server: DialpadServer, **kw) -> rtsync.DialpadClient:
    kw.setdefault("backoff", FAST)
    kw.setdefault("refresh_margin", 0.5)
    return rtsync.DialpadClient(KEY, url=server.url, **kw)


def calls(got: List[Event]) -> List[int]:
    return [e.data["n"] for e in got if e.name.startswith("call.")]


@pytest.mark.parametrize("secret", [None, "chaos-secret-of-at-least-32-bytes!!"])
def test_no_event_lost_across_refreshes(server: DialpadServer, secret) -> None:
    c = make(server, secret=secret)
    got: List[Event] = []
    c.on("*", got.append)
    up = threading.Event()
    c.on("rtsync.connected", lambda e: up.set())
    with c:
        assert up.wait(5)
        for n in range(80):  # 4 s of events, tokens live 1.2 s: three or four refreshes
            server.publish(call_event("ringing", call_id=n, n=n))
            time.sleep(0.05)
        assert wait_for(lambda: len(calls(got)) >= 80, timeout=5)
        time.sleep(0.2)
    assert calls(got) == list(range(80))
    assert sum(r.startswith("GET /api/v2/websockets/") for r in server.rest_calls) >= 3
    assert not any(e.name in ("rtsync.disconnected", "rtsync.gap") for e in got)  # planned: nothing lost


@pytest.mark.parametrize("how", ["close", "close-1001", "drop"])
def test_early_expiry_refused_url_then_fresh_url(server: DialpadServer, how: str) -> None:
    server.token_lifetime = 60  # the client thinks its URL is good for a minute
    server.expiry_close = how
    c = make(server)
    got: List[Event] = []
    c.on("*", got.append)
    with c:
        assert wait_for(lambda: any(e.name == "rtsync.connected" for e in got))
        fetched = len(server.rest_calls)
        server.expire_now()  # the server ends the socket and refuses the old URL from now on
        assert wait_for(lambda: sum(e.name == "rtsync.connected" for e in got) == 2, timeout=6)
        server.publish(call_event("ringing", n=3))
        assert wait_for(lambda: calls(got) == [3])
    assert [e.data["gap_possible"] for e in got if e.name == "rtsync.connected"] == [False, True]
    (gap,) = [e for e in got if e.name == "rtsync.gap"]  # unplanned: what Dialpad sent meanwhile is gone
    assert set(gap.data) >= {"channel", "missing", "reason"} and gap.data["channel"] == f"websocket:{c.websocket_id}"
    # Any close means a fresh URL: the client never retries the URL the server just ended.
    assert any(r.startswith("GET /api/v2/websockets/") for r in server.rest_calls[fetched:])
    reasons = [e.data["reason"] for e in got if e.name == "rtsync.disconnected"]
    assert reasons and not any("refused" in r for r in reasons), reasons


@pytest.mark.parametrize("refusal", ["403", "close-1008"])
def test_a_url_refused_again_and_again_is_final(server: DialpadServer, refusal: str) -> None:
    server.refusal = refusal  # an HTTP 403 at the upgrade, or a socket accepted then closed with 1008
    c = make(server)
    c.start()
    try:
        assert wait_for(lambda: server.live_sockets() == 1)
        server.refuse_urls = True  # every URL, even a fresh one, is refused from now on
        server.expire_now()
        assert wait_for(lambda: not c.running or c.error is not None, timeout=10)
    finally:
        c.stop()
    assert isinstance(c.error, rtsync.AuthenticationError) and "three fresh websocket URLs" in str(c.error)


def test_429_storm_waits_retry_after(server: DialpadServer) -> None:
    server.rate_limit(3, retry_after=0)
    c = make(server)
    got: List[Event] = []
    c.on("*", got.append)
    with c:
        assert wait_for(lambda: any(e.name == "rtsync.connected" for e in got), timeout=5)
    delays = [e.data["delay"] for e in got if e.name == "rtsync.reconnecting"]
    assert delays == [0, 0, 0]


def test_refresh_failure_keeps_the_old_link_and_retries(server: DialpadServer) -> None:
    server.token_lifetime = 3.0
    c = make(server, refresh_margin=2.0)
    c.protocol.retry_refresh = 0.3
    got: List[Event] = []
    c.on("*", got.append)
    with c:
        assert wait_for(lambda: any(e.name == "rtsync.connected" for e in got))
        server.rate_limit(1, retry_after=0)  # the first refresh attempt is refused
        assert wait_for(lambda: sum(r.startswith("GET") for r in server.rest_calls) >= 2, timeout=5)
        server.publish(call_event("ringing", n=1))
        assert wait_for(lambda: calls(got) == [1])
    errors = [e for e in got if e.name == "rtsync.error"]
    assert errors and "429" in errors[0].data["error"]
    assert not any(e.name == "rtsync.disconnected" for e in got)


def test_bad_signatures_and_malformed_frames_reported(server: DialpadServer) -> None:
    c = make(server, secret="right-secret-of-at-least-32-bytes!")
    got: List[Event] = []
    c.on("*", got.append)
    with c:
        assert wait_for(lambda: any(e.name == "rtsync.connected" for e in got))
        server.send_raw(jwt.encode({"call_id": 1, "state": "ringing"}, "wrong-secret-of-at-least-32-bytes!!", algorithm="HS256"))
        server.send_raw('{"call_id": 1, "state": "ringing"}')
        server.send_raw("garbage")
        assert wait_for(lambda: sum(e.name == "rtsync.error" for e in got) == 3)
    assert calls(got) == []


def test_server_drop_and_restart(server: DialpadServer) -> None:
    server.token_lifetime = 60
    c = make(server)
    got: List[Event] = []
    c.on("*", got.append)
    with c:
        assert wait_for(lambda: any(e.name == "rtsync.connected" for e in got))
        server.drop()
        assert wait_for(lambda: sum(e.name == "rtsync.connected" for e in got) == 2, timeout=5)
        server.restart()
        assert wait_for(lambda: sum(e.name == "rtsync.connected" for e in got) == 3, timeout=5)
        server.publish(call_event("ringing", n=5))
        assert wait_for(lambda: calls(got) == [5])


def test_stop_at_any_point(server: DialpadServer) -> None:
    for delay in (0.0, 0.01, 0.05, 0.2):
        c = make(server)
        c.start()
        time.sleep(delay)
        t0 = time.monotonic()
        c.stop()
        assert time.monotonic() - t0 < 1.0


def test_stop_while_a_replacement_link_hangs_in_its_handshake(server: DialpadServer) -> None:
    # The rotation opens its new link with the client's lock held; stop() must not wait for it.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)  # accepts TCP, never answers the upgrade
    try:
        c = make(server, connect_timeout=30)
        got: List[Event] = []
        c.on("*", got.append)
        c.start()
        assert wait_for(lambda: any(e.name == "rtsync.connected" for e in got))
        hanging = Handshake(f"ws://127.0.0.1:{listener.getsockname()[1]}/events/x")
        c._engine.vendor.prepare = lambda: hanging  # noqa: SLF001
        assert wait_for(lambda: c._engine._connecting is not None, timeout=5)  # noqa: SLF001 - the rotation is connecting
        t0 = time.monotonic()
        c.stop()
        assert time.monotonic() - t0 < 1.0
        assert not any(e.name == "rtsync.error" for e in got)  # stopping is not an error
    finally:
        listener.close()


def test_a_half_open_link_is_noticed_by_its_pings_and_replaced(server: DialpadServer) -> None:
    server.token_lifetime = 60  # no refresh during the test: only liveness can notice
    c = make(server, ping_interval=0.3, ping_timeout=0.3)
    got: List[Event] = []
    c.on("*", got.append)
    with c:
        assert wait_for(lambda: any(e.name == "rtsync.connected" for e in got))
        time.sleep(1.0)  # a quiet but healthy line: pinged, answered, kept
        assert not any(e.name == "rtsync.disconnected" for e in got)
        server.silence(True)  # no pong, no data: the link looks open but is dead
        assert wait_for(lambda: any(e.name == "rtsync.disconnected" for e in got), timeout=3)
        server.silence(False)
        assert wait_for(lambda: sum(e.name == "rtsync.connected" for e in got) == 2, timeout=5)
        server.publish(call_event("ringing", n=1))
        assert wait_for(lambda: calls(got) == [1])
    (lost,) = [e for e in got if e.name == "rtsync.disconnected"][:1]
    assert "not even a PONG" in lost.data["reason"]


def test_a_websocket_deleted_while_listening_is_final(server: DialpadServer) -> None:
    server.token_lifetime = 60
    c = make(server)
    got: List[Event] = []
    c.on("*", got.append)
    with c:
        assert wait_for(lambda: any(e.name == "rtsync.connected" for e in got))
        c.delete_websocket(c.websocket_id)  # from elsewhere: its sockets end and it is gone for good
        assert wait_for(lambda: c.state is rtsync.State.FAILED)
    assert isinstance(c.error, rtsync.RequestRejected) and c.error.status == 404
    assert f"no websocket {c.websocket_id}" in str(c.error) and "will not retry" in str(c.error)
    assert sum(r.startswith("GET /api/v2/websockets/") for r in server.rest_calls) == 1  # no retry loop
