"""DoshiiClient against the local Doshii server: heartbeat, events, faults, retry budget, secrets."""

from __future__ import annotations

import base64
import logging
import socket
import threading
import time
from typing import Iterator, List

import pytest

import rtsync
from rtsync.cli import main
from rtsync.events import Event
from rtsync.testing.doshii import SAMPLE_EVENTS, DoshiiServer
from tests.conftest import wait_for

CLIENT_ID = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.secret-client-id+/="
FAST = rtsync.Backoff(base=0.05, cap=0.2)


@pytest.fixture
def server() -> Iterator[DoshiiServer]:
    with DoshiiServer(client_ids={CLIENT_ID}) as s:
        yield s


def make(server: DoshiiServer, **kw) -> rtsync.DoshiiClient:
    kw.setdefault("backoff", FAST)
    kw.setdefault("ping_interval", 0.2)
    kw.setdefault("ping_timeout", 0.5)
    return rtsync.DoshiiClient(CLIENT_ID, url=server.url, app_version="tests/1.0", **kw)


def watch(c: rtsync.Client) -> tuple:
    got: List[Event] = []
    up = threading.Event()
    c.on("*", got.append)
    c.on("rtsync.connected", lambda e: up.set())
    return got, up


def named(got: List[Event], prefix: str = "") -> List[Event]:
    return [e for e in got if not e.name.startswith("rtsync.") and e.name.startswith(prefix)]


def test_heartbeat_on_open_and_on_cadence(server: DoshiiServer) -> None:
    c = make(server)
    got, up = watch(c)
    with c:
        assert up.wait(5)
        assert wait_for(lambda: len(server.pings) >= 4, timeout=5)
    assert all(p["version"] == "tests/1.0" and p["ping"] > 1_500_000_000_000 for p in server.pings)


@pytest.mark.parametrize("shape", ["emit", "event", "type", "binary"])
def test_events_in_every_shape(server: DoshiiServer, shape: str) -> None:
    c = make(server)
    got, up = watch(c)
    with c:
        assert up.wait(5)
        for name, payload in SAMPLE_EVENTS:
            server.publish(name, payload, shape=shape)
        assert wait_for(lambda: len(named(got)) == 3)
    assert [e.name for e in named(got)] == [n for n, _ in SAMPLE_EVENTS]
    assert named(got)[1].typed.order_id == "123"


def test_device_id_is_sent(server: DoshiiServer) -> None:
    c = rtsync.DoshiiClient(CLIENT_ID, url=server.url, device_id="dev 1", backoff=FAST)
    got, up = watch(c)
    with c:
        assert up.wait(5)
    assert server.device_ids == ["dev 1"]


def test_idle_server_close_when_heartbeats_stop_and_reconnect(server: DoshiiServer) -> None:
    server.idle_timeout = 0.3
    c = make(server, ping_interval=5.0, ping_timeout=10.0)  # beats slower than the server allows
    got, up = watch(c)
    with c:
        assert wait_for(lambda: sum(e.name == "rtsync.connected" for e in got) >= 2, timeout=5)
    reason = next(e for e in got if e.name == "rtsync.disconnected").data["reason"]
    assert "1000" in reason


def test_missing_pong_is_a_stale_link(server: DoshiiServer) -> None:
    c = make(server)
    got, up = watch(c)
    with c:
        assert up.wait(5)
        server.ignore_pings = True
        assert wait_for(lambda: any(e.name == "rtsync.disconnected" for e in got), timeout=5)
        server.ignore_pings = False
        assert wait_for(lambda: sum(e.name == "rtsync.connected" for e in got) == 2, timeout=5)
    assert "no pong" in next(e for e in got if e.name == "rtsync.disconnected").data["reason"]


def test_server_ping_answered(server: DoshiiServer) -> None:
    c = make(server, ping_interval=30)
    got, up = watch(c)
    with c:
        assert up.wait(5)
        before = len(server.pings)
        server.server_ping(42)
        time.sleep(0.2)
    assert len(server.pings) == before  # a pong went back, not a ping


@pytest.mark.parametrize("failure", [401, 403])
def test_refused_client_id_is_final(server: DoshiiServer, failure: int) -> None:
    server.auth_failure = failure
    c = rtsync.DoshiiClient("unknown-id", url=server.url, backoff=FAST)
    with pytest.raises(rtsync.AuthenticationError):
        c.run_forever()
    assert server.connections_total == 0


def test_retry_budget_ends_the_client_with_a_clear_error() -> None:
    with socket.socket() as s:  # a port nobody listens on: every attempt is refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = rtsync.DoshiiClient("some-id", url=f"ws://127.0.0.1:{port}/app/socket", backoff=FAST,
                            retry_budget=rtsync.RetryBudget(attempts=4, window=60))
    with pytest.raises(rtsync.ConnectionLost, match="gave up after 4 reconnects"):
        c.run_forever()


def test_accept_then_close_1008_is_a_refused_client_id(server: DoshiiServer) -> None:
    server.auth_failure = "close-1008"  # the reference's accept-then-close variant of a bad auth
    c = rtsync.DoshiiClient("unknown-id", url=server.url, backoff=FAST)
    downs: list = []
    c.on("rtsync.disconnected", downs.append)
    with pytest.raises(rtsync.AuthenticationError, match="did not accept the client id"):
        c.run_forever()
    assert [d.data["will_reconnect"] for d in downs] == [False]  # one attempt, not a retry loop


def test_drops_restart_and_malformed_frames(server: DoshiiServer) -> None:
    c = make(server)
    got, up = watch(c)
    with c:
        assert up.wait(5)
        server.drop()
        assert wait_for(lambda: sum(e.name == "rtsync.connected" for e in got) == 2, timeout=5)
        server.restart()
        assert wait_for(lambda: sum(e.name == "rtsync.connected" for e in got) == 3, timeout=5)
        server.send_raw("{broken")
        server.publish("order_created", {"id": "9"})
        assert wait_for(lambda: named(got, "order"))
    assert any(e.name == "rtsync.error" for e in got)
    assert [e.data["reconnect"] for e in got if e.name == "rtsync.connected"] == [False, True, True]


def test_stop_at_any_point(server: DoshiiServer) -> None:
    for delay in (0.0, 0.01, 0.05):
        c = make(server)
        c.start()
        time.sleep(delay)
        t0 = time.monotonic()
        c.stop()
        assert time.monotonic() - t0 < 1.0


def test_client_id_never_leaks(server: DoshiiServer, caplog: pytest.LogCaptureFixture,
                               capsys: pytest.CaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    c = make(server)
    got, up = watch(c)
    with c:
        assert up.wait(5)
        server.drop()
        assert wait_for(lambda: sum(e.name == "rtsync.connected" for e in got) == 2)
    server.auth_failure = 401
    bad = rtsync.DoshiiClient(CLIENT_ID + "x", url=server.url, backoff=FAST)
    with pytest.raises(rtsync.AuthenticationError) as info:
        bad.run_forever()
    assert main(["-vv", "listen", "doshii", "--client-id", CLIENT_ID + "x", "--url", server.url]) == 3
    out, err = capsys.readouterr()
    secrets = [CLIENT_ID, base64.b64encode(CLIENT_ID.encode()).decode()]
    text = "\n".join(r.getMessage() for r in caplog.records) + repr(got) + repr(c) + str(info.value) + out + err
    assert "auth=***" in text
    for secret in secrets:
        assert secret not in text
