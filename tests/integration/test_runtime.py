"""The shared runtime, driven through DashlyClient against the local server: lifecycle, stop, threads, queue."""

from __future__ import annotations

import _thread
import logging
import socket
import threading
import time
from typing import Iterator, List

import pytest

import rtsync
from rtsync.events import Event
from rtsync.testing.dashly import DashlyServer
from tests.conftest import rtsync_threads, wait_for

FAST = rtsync.Backoff(base=0.05, cap=0.2)


@pytest.fixture
def server() -> Iterator[DashlyServer]:
    with DashlyServer(tokens={"tok"}, longpoll_timeout=25, ping_interval=0.5) as s:
        yield s


def client(server: DashlyServer, transport: str = "websocket", **kw) -> rtsync.DashlyClient:
    kw.setdefault("backoff", FAST)
    return rtsync.DashlyClient("tok", channels=["c.1"], transport=transport, url=server.url, **kw)


def connected(c: rtsync.Client) -> threading.Event:
    flag = threading.Event()
    c.on("rtsync.connected", lambda e: flag.set())
    return flag


def test_many_start_stop_cycles_leave_no_threads(server: DashlyServer) -> None:
    base = threading.active_count()
    for i in range(15):
        c = client(server, transport=("websocket", "longpoll", "shortpoll")[i % 3])
        up = connected(c)
        c.start()
        assert up.wait(5)
        c.stop()
        c.stop()  # idempotent
        assert rtsync_threads() == []
    assert threading.active_count() <= base


def test_stop_mid_long_poll_is_fast(server: DashlyServer) -> None:
    c = client(server, transport="longpoll")
    up = connected(c)
    c.start()
    assert up.wait(5)
    time.sleep(0.3)  # now inside a 25 s hold
    t0 = time.monotonic()
    c.stop()
    assert time.monotonic() - t0 < 1.0
    assert rtsync_threads() == []


def test_stop_mid_backoff_wait_is_fast(server: DashlyServer) -> None:
    c = client(server, backoff=rtsync.Backoff(floor=30, base=0.1, cap=0.1))
    up = connected(c)
    waiting = threading.Event()
    c.on("rtsync.reconnecting", lambda e: waiting.set())
    c.start()
    assert up.wait(5)
    server.drop()
    assert waiting.wait(5)
    t0 = time.monotonic()
    c.stop()
    assert time.monotonic() - t0 < 1.0


def test_stop_mid_handshake_is_fast() -> None:
    # A server that accepts TCP and never answers the upgrade.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    port = listener.getsockname()[1]
    try:
        c = rtsync.DashlyClient("tok", channels=["c.1"], url=f"http://127.0.0.1:{port}", connect_timeout=30)
        c.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        c.stop()
        assert time.monotonic() - t0 < 1.0
    finally:
        listener.close()


def test_run_forever_returns_on_ctrl_c(server: DashlyServer) -> None:
    c = client(server)
    c.on("rtsync.connected", lambda e: threading.Timer(0.2, _thread.interrupt_main).start())
    t0 = time.monotonic()
    c.run_forever()  # must return, not raise KeyboardInterrupt
    assert time.monotonic() - t0 < 5
    assert not c.running


def test_run_forever_raises_auth_error_after_one_attempt(server: DashlyServer) -> None:
    c = rtsync.DashlyClient("wrong", channels=["c.1"], url=server.url, backoff=FAST)
    before = len(server.requests)
    with pytest.raises(rtsync.AuthenticationError, match="refused"):
        c.run_forever()
    assert len(server.requests) - before == 1
    assert isinstance(c.error, rtsync.AuthenticationError)


def test_context_manager_and_decorator(server: DashlyServer) -> None:
    c = client(server)
    got: List[Event] = []

    @c.on("c.*")
    def handle(event: Event) -> None:
        got.append(event)

    up = connected(c)
    with c:
        assert up.wait(5)
        server.publish("c.1", {"a": 1})
        assert wait_for(lambda: len(got) == 1)
    assert not c.running and got[0].data == {"a": 1}


def test_callback_exception_is_reported_and_delivery_goes_on(server: DashlyServer) -> None:
    c = client(server)
    errors, got = [], []
    c.on("c.1", lambda e: 1 / 0 if e.data["n"] == 0 else got.append(e.data["n"]))
    c.on("rtsync.error", errors.append)
    up = connected(c)
    with c:
        assert up.wait(5)
        for n in range(3):
            server.publish("c.1", {"n": n})
        assert wait_for(lambda: got == [1, 2])
    assert "ZeroDivisionError" in errors[0].data["error"] and errors[0].data["fatal"] is False


def test_slow_callback_does_not_stop_reading_or_pings(server: DashlyServer) -> None:
    # Queue holds 5; callbacks take 50 ms each; 40 messages arrive at once; the link stays healthy.
    c = client(server, queue_size=5, ping_interval=0.3, ping_timeout=0.3)
    got, lost = [], []
    c.on("c.1", lambda e: (time.sleep(0.05), got.append(e.id)))
    c.on("rtsync.disconnected", lost.append)
    up = connected(c)
    with c:
        assert up.wait(5)
        for n in range(40):
            server.publish("c.1", {"n": n})
        assert wait_for(lambda: len(got) == 40, timeout=15)
    assert got == list(range(1, 41))
    assert lost == [] or all("stale" not in e.data["reason"] for e in lost)


def test_once_and_off_on_a_client(server: DashlyServer) -> None:
    c = client(server)
    first, every = [], []
    c.once("c.1", first.append)
    fn = c.on("c.1", every.append)
    up = connected(c)
    with c:
        assert up.wait(5)
        server.publish("c.1", {})
        server.publish("c.1", {})
        assert wait_for(lambda: len(every) == 2)
        assert c.off("c.1", fn) == 1
        server.publish("c.1", {})
        time.sleep(0.2)
    assert len(first) == 1 and len(every) == 2


def test_library_adds_no_log_handlers() -> None:
    for name in ("rtsync", "rtsync.dashly", "rtsync.dispatch", "rtsync.wire"):
        assert logging.getLogger(name).handlers == []


def test_stop_sends_a_close_frame(server: DashlyServer) -> None:
    c = client(server)
    up = connected(c)
    c.start()
    assert up.wait(5)
    c.stop()
    assert wait_for(lambda: server.close_codes == [1000])


def test_no_signal_handlers_installed(server: DashlyServer) -> None:
    import signal

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    c = client(server)
    up = connected(c)
    with c:
        assert up.wait(5)
    assert {s: signal.getsignal(s) for s in before} == before


def test_stop_from_inside_a_callback(server: DashlyServer) -> None:
    c = client(server)
    got: List[Event] = []

    def on_message(event: Event) -> None:
        got.append(event)
        if len(got) == 3:
            c.stop()

    c.on("c.1", on_message)
    c.on("rtsync.connected", lambda e: [server.publish("c.1", {"n": n}) for n in range(5)])
    c.run_forever()  # returns once the callback stopped the client
    assert len(got) >= 3 and not c.running
