"""The engine-facing `Lease`: what a client needs from a lock service to connect only while it holds the lock."""

from __future__ import annotations

import threading
from typing import Callable, Optional, Protocol, Sequence, Tuple

from .dispatch import Handlers
from .errors import ConnectionLost
from .events import CONNECTED, DISCONNECTED, ERROR, RECONNECTING, Callback, Event

__all__ = ["Lease", "LeaseGate", "LeaseLost"]


class LeaseLost(ConnectionLost):
    """This replica can no longer prove it holds its lease: it stopped delivering and stands by again."""


class Lease(Protocol):
    """What `Client(..., lease=...)` uses; `rtsync.RedisLease` is the implementation we ship.

    The engine calls `acquire` before every connection attempt (a standby blocks
    there), asks `valid()` before running each event's callbacks, and calls
    `release` on stop. The lease calls the `lost` callback given to `acquire`,
    from its own renewal thread, the moment it can no longer prove it is held.
    """

    @property
    def token(self) -> Optional[int]:
        """The fencing token of the current holding (grows with every acquisition), or None."""

    def acquire(self, stopping: threading.Event, lost: Callable[[str], None]) -> bool:
        """Block until held (True) or until `stopping` is set (False)."""

    def valid(self) -> bool:
        """True while the holding is provably not expired (checked with the monotonic clock)."""

    def release(self) -> None:
        """Give the lease up (idempotent) so a standby takes over at once."""


# Lifecycle events still shown while the lease is not held: they report the loss itself.
_ALWAYS = frozenset({CONNECTED, DISCONNECTED, ERROR, RECONNECTING})


class LeaseGate(Handlers):
    """The callbacks of a leased client: run only while the lease is provably held.

    Events read or queued before the loss are dropped, not delivered: the next
    holder resumes from the checkpoint, which never covers a dropped event
    (the checkpoint is written after callbacks, and only for events that ran).
    """

    def __init__(self, handlers: Handlers, lease: Lease) -> None:
        super().__init__()
        self.inner = handlers
        self.lease = lease
        self.dropped = 0
        self._last_dropped: Optional[Event] = None
        self._marker: Optional[Event] = None
        self._passed = threading.Event()

    def mark(self, event: Event) -> None:
        """Watch for `event`: once it went through, everything queued before it was run or dropped."""
        self._passed.clear()
        self._marker = event

    def wait_marked(self, stopping: threading.Event) -> bool:
        """Block until the marked event went through (True) or `stopping` is set (False)."""
        while not self._passed.wait(0.05):
            if stopping.is_set():
                return False
        return True

    def admits(self, event: Event) -> bool:
        return event.name in _ALWAYS or self.lease.valid()

    def run(self, event: Event) -> Optional[Sequence[Tuple[Callback, BaseException]]]:
        if event is self._marker:
            self._passed.set()
        if not self.admits(event):
            self.dropped += 1
            self._last_dropped = event
            return []
        return self.inner.run(event)

    def was_dropped(self, event: Event) -> bool:
        """True if `event` was the one just dropped (the after-callbacks hook must skip it too)."""
        return self._last_dropped is event
