"""The pull side of a client: events kept for `receive()`, for scripts and REPLs that do not use callbacks."""

from __future__ import annotations

import collections
import threading
import time
from datetime import datetime, timezone
from typing import Callable, Deque, Optional

from .errors import ReceiveTimeout, RtsyncError
from .events import GAP, Event

__all__ = ["Inbox"]

# Events kept for a receive() not yet called, once callbacks handle them (a REPL's look back).
_UNPULLED = 100


class Inbox:
    """Keeps the newest `size` events for `receive()`; fed on the dispatcher thread, after callbacks.

    Until `receive()` is first called, older events make room quietly (callbacks had them), and
    while callbacks handle the events (`handled`) only the newest `_UNPULLED` are kept: holding
    `size` large events that nobody may ever pull costs memory and time (fresh pages, the cyclic
    GC walking them). From then on an overflow is a loss the reader must hear of: the next event
    it gets is an `rtsync.gap` saying how many it missed.
    """

    def __init__(self, size: int, provider: str) -> None:
        self._events: Deque[Event] = collections.deque(maxlen=size)  # appending drops the oldest
        self._size = size
        self._provider = provider
        self._cond = threading.Condition()
        self._pulling = False
        self._waiting = False  # a receive() is blocked: only then does put() take the lock
        self._missed = 0

    def put(self, event: Event, handled: bool) -> None:
        """Keep `event` (`handled`: a callback ran for it). The dispatcher's tap, after its callbacks."""
        # On every event of every client, receive() used or not: no lock unless a reader waits.
        # A reader sets _waiting and looks at the deque under the lock before it sleeps, so an
        # event appended before that is seen, and one appended after finds _waiting set.
        events = self._events
        if not self._pulling:
            if handled and len(events) >= _UNPULLED:
                events.popleft()
        elif len(events) >= self._size:
            self._missed += 1
        events.append(event)
        if self._waiting:
            with self._cond:
                self._cond.notify()

    def receive(self, timeout: Optional[float], ended: Callable[[], Optional[RtsyncError]]) -> Event:
        """The next event; ReceiveTimeout after `timeout`, or the fatal error once the client ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._pulling = self._waiting = True
            try:
                return self._next(deadline, timeout, ended)
            finally:
                self._waiting = False

    def _next(self, deadline: Optional[float], timeout: Optional[float],
              ended: Callable[[], Optional[RtsyncError]]) -> Event:
        """Called with the lock held and `_waiting` set, so no put() between a look and a wait is missed."""
        while True:
            if self._missed:
                missed, self._missed = self._missed, 0
                return Event.make(GAP, provider=self._provider, data={
                    "channel": None, "missing": missed,
                    "reason": f"receive() fell {missed} events behind and they were dropped; "
                              "call it more often or raise queue_size"}, received_at=datetime.now(timezone.utc))
            if self._events:
                return self._events.popleft()
            fatal = ended()
            if fatal is not None:
                raise fatal
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise ReceiveTimeout(f"no event within {timeout:g} s")
            # Short waits: the client may end (fatal) without an event to wake us.
            self._cond.wait(0.5 if left is None else min(left, 0.5))
