"""The surface every client shares: state, readiness, stats, the pull API, calls made while connecting."""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import List

import pytest

import rtsync
from rtsync.testing import MockLink
from rtsync.wire import Closed
from tests.conftest import wait_for

PONG = '{"doshii":{"pong":1}}'


def order(n: int) -> str:
    return '{"emit":["order_created",{"id":"%d"}]}' % n


def test_state_readiness_and_stats() -> None:
    link = MockLink([PONG, order(1), order(2)])
    client = rtsync.DoshiiClient("id", link=link)
    assert client.state is rtsync.State.STOPPED and not client.connected
    assert client.wait_connected(0.01) is False  # not started: not ready, no wait
    with client:
        assert client.wait_connected(5) and client.connected
        assert link.replayed(5)
        assert client.receive(5).name == "rtsync.connected"
        assert [client.receive(5).id for _ in range(2)] == ["1", "2"]
        stats = client.stats
        assert (stats.connects, stats.reconnects, stats.events, stats.gaps) == (1, 0, 2, 0)
        assert stats.connected_since is not None and stats.last_event_at is not None
    assert client.state is rtsync.State.STOPPED
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.events = 5  # type: ignore[misc]


def test_wait_connected_raises_the_fatal_error() -> None:
    link = MockLink([Closed(4401)])
    client = rtsync.DoshiiClient("id", link=link)
    with client:
        with pytest.raises(rtsync.AuthenticationError):
            client.wait_connected(5)
        assert client.state is rtsync.State.FAILED
    assert client.state is rtsync.State.FAILED and isinstance(client.error, rtsync.AuthenticationError)


def test_receive_times_out_as_a_timeout_error_and_ends_with_the_client() -> None:
    client = rtsync.DoshiiClient("id", link=MockLink([PONG]))
    with pytest.raises(rtsync.ConnectionLost, match="not running"):
        client.receive(0)
    with client:
        assert client.receive(5).name == "rtsync.connected"
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            client.receive(0.2)
        assert 0.15 < time.monotonic() - t0 < 2
        with pytest.raises(rtsync.ReceiveTimeout):
            client.receive(0)


def test_receive_falling_behind_is_told_as_a_gap() -> None:
    link = MockLink([PONG] + [order(n) for n in range(30)])
    client = rtsync.DoshiiClient("id", link=link, queue_size=5)
    with client:
        client.receive(5)  # from the first receive() on, losses are reported
        assert link.replayed(5)
        time.sleep(0.3)
        names = []
        while True:
            try:
                names.append(client.receive(0.2))
            except rtsync.ReceiveTimeout:
                break
    gaps = [e for e in names if e.name == "rtsync.gap"]
    orders = [e for e in names if e.name == "order_created"]
    assert gaps and gaps[0].data["missing"] >= 1 and "receive()" in gaps[0].data["reason"]
    assert orders[-1].id == "29" and len(orders) + gaps[0].data["missing"] >= 29


def test_a_call_made_while_connecting_waits_for_readiness() -> None:
    # QuickMeet: `with client: client.call(...)` right after start() used to fail with "not connected".
    from rtsync.testing.quickmeet import QuickMeetServer

    with QuickMeetServer() as server:
        client = rtsync.QuickMeetClient(url=server.url, username="alice", password="alice-password")
        with client:
            message = client.send_message("GENERAL", "sent before the login finished", timeout=10)
            assert client.connected and message.msg == "sent before the login finished"


def test_callbacks_and_receive_see_the_same_events_in_order() -> None:
    link = MockLink([PONG] + [order(n) for n in range(5)])
    client = rtsync.DoshiiClient("id", link=link)
    seen: List[str] = []
    done = threading.Event()
    client.on("order_created", lambda e: (seen.append(str(e.id)), len(seen) == 5 and done.set()))
    with client:
        assert done.wait(5)
        pulled = [client.receive(1) for _ in range(6)]
    assert seen == ["0", "1", "2", "3", "4"]
    assert [e.id for e in pulled if e.name == "order_created"] == seen


def test_overlapping_patterns_run_a_callback_once_per_event() -> None:
    link = MockLink([PONG, order(1)])
    client = rtsync.DoshiiClient("id", link=link)
    calls: List[str] = []

    def record(event: rtsync.Event) -> None:
        calls.append(event.name)

    client.on("order_*", record)
    client.on("order_created", record)
    client.on("*", record)
    with client:
        assert link.replayed(5)
        client.receive(5)
        client.receive(5)
    assert calls == ["rtsync.connected", "order_created"]


def test_run_forever_from_a_callback_is_a_clear_error() -> None:
    client = rtsync.DoshiiClient("id", link=MockLink([PONG]))
    errors: List[BaseException] = []

    def nested(event: rtsync.Event) -> None:
        try:
            client.run_forever()
        except rtsync.RtsyncError as exc:
            errors.append(exc)

    client.on("rtsync.connected", nested)
    with client:
        assert client.wait_connected(5)
        client.receive(5)
    assert errors and "from a callback" in str(errors[0])


def test_a_slow_callback_is_warned_about_once(caplog: pytest.LogCaptureFixture) -> None:
    link = MockLink([PONG, order(1), order(2)])
    client = rtsync.DoshiiClient("id", link=link)
    client.on("order_created", lambda e: time.sleep(1.05))
    with caplog.at_level("WARNING", logger="rtsync"):
        with client:
            assert link.replayed(5)
            for _ in range(3):
                client.receive(5)
    slow = [r for r in caplog.records if "took" in r.getMessage() and "said once" in r.getMessage()]
    assert len(slow) == 1 and "order_created" in slow[0].getMessage()


def test_before_the_first_receive_handled_events_are_kept_only_briefly() -> None:
    # Callbacks had them: keeping queue_size large events for a receive() that may never come
    # costs memory; the newest ones stay for a late look, and every event once receive() began.
    link = MockLink([PONG] + [order(n) for n in range(300)])
    client = rtsync.DoshiiClient("id", link=link)
    seen: List[str] = []
    client.on("order_created", lambda e: seen.append(str(e.id)))
    with client:
        assert link.replayed(5)
        assert wait_for(lambda: len(seen) == 300)
        pulled = []
        while True:
            try:
                pulled.append(client.receive(0.2))
            except rtsync.ReceiveTimeout:
                break
    ids = [e.id for e in pulled if e.name == "order_created"]
    assert ids == [str(n) for n in range(300 - len(ids), 300)] and 50 <= len(ids) <= 100
    assert not [e for e in pulled if e.name == "rtsync.gap"]  # nothing was pulled yet: no loss to report
