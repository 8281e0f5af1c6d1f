"""DashlyClient's first connection (fail fast), a callable auth_token, and long poll's requests per batch."""

from __future__ import annotations

import logging
import socket
import threading
from typing import List

import pytest

import rtsync
from rtsync.events import Event
from rtsync.testing.dashly import DashlyServer
from tests.conftest import wait_for
from tests.dashly_support import FAST, TRANSPORTS, server  # noqa: F401 - server is a fixture

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_first_connection_refused_fails_fast_naming_host_and_cause(
    transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    # Dashly's own backoff (20-30 s) is in force: without fail fast wait_connected would sit it out.
    c = rtsync.DashlyClient("tok", channels=["c.1"], transport=transport, url=f"http://127.0.0.1:{port}")
    with caplog.at_level(logging.WARNING, logger="rtsync"), c:
        with pytest.raises(rtsync.ConnectionLost) as caught:
            c.wait_connected(60)
    text = str(caught.value)
    assert f"127.0.0.1:{port}" in text and "refused" in text and "fail_fast=False" in text
    assert not caught.value.retryable
    assert c.state is rtsync.State.FAILED and c.error is caught.value
    assert any(f"127.0.0.1:{port}" in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert "tok" not in caplog.text.replace("token", "")


def test_unresolvable_host_fails_fast() -> None:
    c = rtsync.DashlyClient("tok", channels=["c.1"], url="https://no-such-host.invalid")
    with c, pytest.raises(rtsync.ConnectionLost, match="no-such-host.invalid.*could not be resolved"):
        c.wait_connected(60)


def test_wrong_path_is_final(server: DashlyServer) -> None:
    c = rtsync.DashlyClient("tok", channels=["c.1"], transport="longpoll", url=server.url + "/wrong")
    with c, pytest.raises(rtsync.RequestRejected, match="404"):
        c.wait_connected(60)


def test_fail_fast_false_keeps_retrying_until_the_server_comes() -> None:
    port = free_port()
    c = rtsync.DashlyClient("tok", channels=["c.1"], url=f"http://127.0.0.1:{port}", backoff=FAST,
                            fail_fast=False)
    with c:
        assert c.wait_connected(0.5) is False and c.error is None
        with DashlyServer(tokens={"tok"}, port=port, longpoll_timeout=1.0):
            assert c.wait_connected(10)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_failures_after_the_first_connection_keep_retrying(transport: str) -> None:
    port = free_port()
    with DashlyServer(tokens={"tok"}, port=port, longpoll_timeout=1.0) as server:
        c = rtsync.DashlyClient("tok", channels=["c.1"], transport=transport, url=server.url, backoff=FAST,
                                poll_interval=0.1)
        c.start()
        assert c.wait_connected(10)
    try:
        # the server went away after a good connection: refused now, but only retried
        assert wait_for(lambda: c.state is rtsync.State.RECONNECTING)
        assert c.error is None
        with DashlyServer(tokens={"tok"}, port=port, longpoll_timeout=1.0):
            assert wait_for(lambda: c.connected and c.stats.connects >= 2)
    finally:
        c.stop()
    assert c.error is None


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_callable_token_is_asked_before_each_connection(server: DashlyServer, transport: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    current = {"token": "first-secret"}
    asked: List[str] = []

    def token() -> str:
        asked.append(current["token"])
        return current["token"]

    server.tokens = {"first-secret"}
    c = rtsync.DashlyClient(token, channels=["c.1"], transport=transport, url=server.url, backoff=FAST,
                            poll_interval=0.1)
    got: List[Event] = []
    c.on("c.*", got.append)
    with caplog.at_level(logging.DEBUG, logger="rtsync"), c:
        assert c.wait_connected(10)
        server.publish("c.1", {"n": 1})
        assert wait_for(lambda: len(got) == 1)
        server.tokens = {"second-secret"}  # rotated at the server; the next connection must use the new one
        current["token"] = "second-secret"
        server.drop()
        server.publish("c.1", {"n": 2})
        assert wait_for(lambda: len(got) == 2)
    assert [e.data["n"] for e in got] == [1, 2]
    assert asked[0] == "first-secret" and asked[-1] == "second-secret"
    assert len(asked) <= 2 * c.stats.connects + 2  # per connection attempt, not per request
    assert "first-secret" not in caplog.text and "second-secret" not in caplog.text


def test_a_token_callable_that_raises_is_retried_and_never_shown(server: DashlyServer) -> None:
    calls = {"n": 0}

    def token() -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("vault says no: secret-in-message")
        return "tok"

    c = rtsync.DashlyClient(token, channels=["c.1"], url=server.url, backoff=FAST, fail_fast=False)
    errors: List[Event] = []
    c.on("rtsync.disconnected", errors.append)
    with c:
        assert c.wait_connected(10)
    assert errors and all("secret-in-message" not in str(e.data) for e in errors)


def test_long_poll_asks_once_per_delivered_batch(server: DashlyServer) -> None:
    c = rtsync.DashlyClient("tok", channels=["c.1", "c.2"], transport="longpoll", url=server.url, backoff=FAST)
    got: List[Event] = []
    arrived = threading.Event()
    c.on("c.*", lambda e: (got.append(e), arrived.set()))
    with c:
        assert c.wait_connected(10)
        assert wait_for(lambda: server.subscribers("c.1") == 1)
        before = len([r for r in server.requests if r.startswith("/longpoll/")])
        batches = 20
        for n in range(batches):
            arrived.clear()
            server.publish(f"c.{n % 2 + 1}", {"n": n})
            assert arrived.wait(10)
            assert wait_for(lambda: server.subscribers("c.1") == 1)  # the next poll waits at the server
        polls = len([r for r in server.requests if r.startswith("/longpoll/")]) - before
    assert [e.data["n"] for e in got] == list(range(batches))
    # one request per batch, plus a re-ask every 16 live answers (pushstream.js: 1; rtsync before: 2)
    assert batches <= polls <= batches + batches // 16 + 1, polls


@pytest.mark.parametrize("transport", ["longpoll", "websocket"])
def test_out_of_order_tags_lose_nothing(transport: str) -> None:
    """Two nginx workers: live deliveries overtake each other; every message still arrives once."""
    with DashlyServer(tokens={"tok"}, longpoll_timeout=1.0, ping_interval=0.5, reorder=True) as server:
        c = rtsync.DashlyClient("tok", channels=["a", "b"], transport=transport, url=server.url, backoff=FAST,
                                gap_grace=5.0)
        got: List[Event] = []
        c.on("[ab]", got.append)
        with c:
            assert c.wait_connected(10)
            for n in range(40):
                server.publish("a" if n % 3 else "b", {"n": n})
            assert wait_for(lambda: len(got) == 40, timeout=20), len(got)
        assert sorted(e.data["n"] for e in got) == list(range(40))
        assert c.stats.gaps == 0
