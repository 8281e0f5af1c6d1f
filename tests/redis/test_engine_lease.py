"""The engine's lease hook with recorded frames and a lease the test controls: no Redis, no socket."""

from __future__ import annotations

import threading
from typing import Callable, List, Optional

import rtsync
from rtsync.events import Event
from rtsync.testing import MockLink
from tests.conftest import wait_for

PONG = '{"doshii":{"pong":1,"version":"3"}}'


def order(n: int) -> str:
    return '{"emit":["order_created",{"id":"%d","status":"pending"}]}' % n


class HandLease:
    """A lease granted and taken away by the test."""

    def __init__(self) -> None:
        self.granted = threading.Event()
        self.held = False
        self.acquired = 0
        self.released = 0
        self._lost: Optional[Callable[[str], None]] = None

    @property
    def token(self) -> Optional[int]:
        return self.acquired if self.held else None

    def acquire(self, stopping: threading.Event, lost: Callable[[str], None]) -> bool:
        while not self.granted.wait(0.01):
            if stopping.is_set():
                return False
        self.granted.clear()
        self.held, self._lost = True, lost
        self.acquired += 1
        return True

    def valid(self) -> bool:
        return self.held

    def release(self) -> None:
        self.held = False
        self.released += 1

    def lose(self) -> None:
        self.held = False
        assert self._lost is not None
        self._lost("taken away by the test")


def test_standby_connects_only_when_granted_and_stands_down_when_lost() -> None:
    link = MockLink([PONG, order(1)], [PONG, order(2)])
    lease = HandLease()
    resumed: List[int] = []
    client = rtsync.DoshiiClient("client-id", link=link, lease=lease)
    client._engine.vendor.resume = lambda: resumed.append(lease.acquired)  # the vendor's reload hook
    got: List[Event] = []
    client.on("*", got.append)
    with client:
        assert client.wait_connected(0.3) is False
        assert link.handshakes == [] and client.state is rtsync.State.CONNECTING  # standing by
        lease.granted.set()
        assert wait_for(lambda: any(e.name == "order_created" for e in got), timeout=5)
        assert client.connected and resumed == [1]
        lease.lose()
        assert wait_for(lambda: any(isinstance(e.data.get("exception"), rtsync.LeaseLost) for e in got), timeout=5)
        assert wait_for(lambda: client.state is rtsync.State.RECONNECTING, timeout=5)
        lost = next(e for e in got if e.name == "rtsync.error")
        assert lost.data["fatal"] is False and "taken away by the test" in lost.data["error"]
        assert len(link.handshakes) == 1  # no new connection without the lease
        lease.granted.set()
        assert wait_for(lambda: sum(e.name == "order_created" for e in got) == 2, timeout=5)
        assert resumed == [1, 2] and len(link.handshakes) == 2
    assert lease.released >= 1 and not lease.held
    names = [e.name for e in got if e.name in ("order_created", "rtsync.error", "rtsync.disconnected")]
    assert names[:3] == ["order_created", "rtsync.error", "rtsync.disconnected"]
    assert [e.data["id"] for e in got if e.name == "order_created"] == ["1", "2"]


def test_events_queued_before_a_loss_are_dropped_not_delivered() -> None:
    link = MockLink([PONG] + [order(n) for n in range(1, 51)])
    lease = HandLease()
    client = rtsync.DoshiiClient("client-id", link=link, lease=lease)
    release = threading.Event()
    seen: List[str] = []

    def slow(event: Event) -> None:
        seen.append(event.data["id"])
        release.wait(5)  # the first callback holds the rest in the queue

    client.on("order_created", slow)
    lease.granted.set()
    with client:
        assert link.replayed(timeout=5)
        assert wait_for(lambda: seen == ["1"], timeout=5)
        lease.lose()  # while 49 events wait behind the running callback
        release.set()
        assert wait_for(lambda: client.state is rtsync.State.RECONNECTING, timeout=5)
    assert seen == ["1"]


def test_a_client_restarted_after_a_loss_does_not_report_it_again() -> None:
    link = MockLink([PONG, order(1)], [PONG, order(2)])
    lease = HandLease()
    client = rtsync.DoshiiClient("client-id", link=link, lease=lease)
    got: List[Event] = []
    client.on("*", got.append)
    lease.granted.set()
    client.start()
    assert wait_for(lambda: any(e.name == "order_created" for e in got), timeout=5)
    lease.lose()
    client.stop()  # possibly before it stood down
    got.clear()
    lease.granted.set()
    with client:
        assert wait_for(lambda: any(e.name == "order_created" for e in got), timeout=5)
    assert not [e for e in got if isinstance(e.data.get("exception"), rtsync.LeaseLost)]
