"""The callback registry behind on/off/once, and the dispatcher thread that runs callbacks in order.

Threading contract: reader threads only ever call `Dispatcher.put`; user
callbacks run on the one dispatcher thread, one at a time, in arrival order.
Whatever a callback raises, `BaseException` included, is logged and reported
as `rtsync.error`, and delivery goes on.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import queue
import threading
import time
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

from .events import ERROR, Callback, Event

__all__ = ["Dispatcher", "Handlers"]

log = logging.getLogger("rtsync.dispatch")


_NONE: Sequence[Tuple[Callback, BaseException]] = ()  # what `run` returns when every callback succeeded


def _matches(pattern: str, value: Optional[str]) -> bool:
    return value is not None and fnmatchcase(value, pattern)


class Handlers:
    """The callback registry: glob patterns matched against an event's name or channel."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: List[Tuple[str, Callback, bool]] = []
        # (name, channel) -> callbacks; cleared whenever the registry changes.
        self._cache: Dict[Tuple[str, Optional[str]], List[Tuple[str, Callback, bool]]] = {}

    def add(self, pattern: str, fn: Callback, once: bool = False) -> None:
        if not isinstance(pattern, str) or not pattern:
            raise TypeError("pattern must be a non-empty string such as 'message.created' or '*'")
        if not callable(fn):
            raise TypeError(f"callback for {pattern!r} must be callable, got {type(fn).__name__}")
        with self._lock:
            self._entries.append((pattern, fn, once))
            self._cache = {}

    def remove(self, pattern: str, fn: Optional[Callback] = None) -> int:
        """Remove `fn` (or every callback) registered under `pattern`; return how many went."""
        with self._lock:
            keep = [e for e in self._entries if not (e[0] == pattern and (fn is None or e[1] == fn))]
            removed = len(self._entries) - len(keep)
            self._entries = keep
            self._cache = {}
        return removed

    def _discard(self, entry: Tuple[str, Callback, bool]) -> bool:
        with self._lock:
            try:
                self._entries.remove(entry)
            except ValueError:
                return False
            self._cache = {}
            return True

    def matching(self, event: Event) -> List[Tuple[str, Callback, bool]]:
        key = (event.name, event.channel)
        found = self._cache.get(key)
        if found is None:
            with self._lock:
                found = []
                for entry in self._entries:
                    if not (_matches(entry[0], event.name) or _matches(entry[0], event.channel)):
                        continue
                    # One function under two overlapping patterns still runs once per event.
                    if not any(other[1] == entry[1] for other in found):
                        found.append(entry)
                self._cache[key] = found
        return found

    def run(self, event: Event) -> Optional[Sequence[Tuple[Callback, BaseException]]]:
        """Call every matching callback in registration order; return the failures (None: no callback matched)."""
        failures: Optional[List[Tuple[Callback, BaseException]]] = None
        found = self._cache.get((event.name, event.channel))  # `matching`, without its call once cached
        if found is None:
            found = self.matching(event)
        if not found:
            return None
        for pattern, fn, once in found:
            if once and not self._discard((pattern, fn, once)):
                continue  # a `once` callback another event already consumed
            try:
                fn(event)
            except BaseException as exc:  # SystemExit, KeyboardInterrupt too: delivery must go on
                if failures is None:
                    failures = []
                failures.append((fn, exc))
        return _NONE if failures is None else failures


class _Batches:
    """The dispatcher thread's FIFO of batches, with a doorbell rung only while that thread sleeps.

    On Linux (Python 3.10+) the doorbell is an eventfd, which CPython writes with the GIL
    released, so the thread it wakes finds the GIL free. A `SimpleQueue` wakes it while the
    reader still holds the GIL: the woken thread often preempts the reader on its core, finds
    the GIL taken and sleeps again. At 2,000 msg/s the eventfd cut context switches from about
    5 to under 3 per read, and CPU per event from 47 to 37 us (medians of six alternating runs).
    Elsewhere the doorbell is a `SimpleQueue`.

    `put` and `close` are called under the dispatcher's `_put_lock`, `open` by `start`, and `get`
    only by the dispatcher's thread.
    """

    def __init__(self) -> None:
        self._items: Deque[Any] = collections.deque()
        self._sleeping = False  # set by `get` before it waits; a `put` that sees it rings once
        self._fd = -1
        self._ring: Callable[[], None] = _nothing
        self._wait: Callable[[], Any] = _nothing

    def open(self) -> None:
        if hasattr(os, "eventfd"):
            self._fd = os.eventfd(0, os.EFD_CLOEXEC)
            self._ring = functools.partial(os.eventfd_write, self._fd, 1)
            self._wait = functools.partial(os.eventfd_read, self._fd)
        else:
            bell: "queue.SimpleQueue[None]" = queue.SimpleQueue()
            self._ring, self._wait = functools.partial(bell.put, None), bell.get

    def put(self, item: Any) -> None:
        self._items.append(item)
        if self._sleeping:
            self._sleeping = False
            self._ring()

    def get(self) -> Any:
        items = self._items
        while not items:
            self._sleeping = True
            if items:  # put before it could see the flag: it will not ring
                self._sleeping = False
                break
            self._wait()  # returns at once at most once after that race, for the ring it missed
        return items.popleft()

    def close(self) -> None:
        self._sleeping = False  # no later put rings a closed descriptor (or its number's next owner)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _nothing() -> None:
    return None


_STOP = object()
_SLOW = 1.0  # a callback this slow is worth one warning: everything queues behind it


class Dispatcher:
    """A bounded FIFO of events and the one thread that runs callbacks for them.

    When the queue holds `maxsize` events, `put` blocks the reader (nothing is
    dropped) until the callbacks catch up or `abort` is set; the reader keeps
    its timers running meanwhile (see `Client`), and the socket's own flow
    control makes the server wait. After each event's callbacks, on the
    dispatcher thread, `tap(event, handled)` sees it (the client's `receive()`
    side) and then `after(event)` (a vendor's checkpoint).

    Readers hand over whole batches (one read's events) through `_Batches`, which
    wakes the other thread only when it waits: one hand-off per read, not per
    event. The depth is `_put - _done`, each counter written by
    one side only (producers under `_put_lock`, the dispatcher thread alone), so
    the per-event path takes no lock.
    """

    def __init__(
        self,
        handlers: Handlers,
        *,
        maxsize: int = 10_000,
        name: str = "rtsync-dispatch",
        tap: Optional[Callable[[Event, bool], None]] = None,
        after: Optional[Callable[[Event], None]] = None,
    ) -> None:
        if maxsize < 1:
            raise ValueError("queue_size must be at least 1")
        self.handlers = handlers
        self.maxsize = maxsize
        self._tap = tap
        self._after = after
        self._queue = _Batches()
        self._put = 0  # events queued, ever (producers, under _put_lock)
        self._done = 0  # events whose callbacks ran (the dispatcher thread only)
        self._put_lock = threading.Lock()
        self._room = threading.Event()  # set by the dispatcher when a producer waits for room
        self._waiting = False
        # Called by the dispatcher once half the queue is free again: a reader holding events
        # that did not fit (`offer`) is woken to hand them over, instead of finding out later.
        self._refill: Optional[Callable[[], None]] = None
        self._thread: Optional[threading.Thread] = None
        self._name = name
        self._warned_full = False
        self._warned_slow = False
        self._stop_queued = False

    def start(self) -> None:
        self._queue.open()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def __len__(self) -> int:
        return self._put - self._done

    def put(self, event: Event, wait: Optional[Callable[[], bool]] = None) -> bool:
        """Queue one event. While full, call `wait()` (which returns False to give up) between checks."""
        return self.put_many([event], wait)

    def put_many(self, events: List[Event], wait: Optional[Callable[[], bool]] = None) -> bool:
        """Queue `events` in order, as one batch while they fit; while full, wait as `put` does."""
        if self.offer_all(events):
            return True
        pending = collections.deque(events)
        while True:
            self.offer(pending)
            if not pending:
                return True
            # A callback's own call (e.g. a subscribe that yields a gap) must not wait for itself.
            if self.on_own_thread():
                self._give(list(pending))
                return True
            if not self._warned_full:
                self._warned_full = True
                log.warning("event queue full (%d events): reading paused until callbacks catch up", self.maxsize)
            self._waiting = True
            if wait is None:
                self._room.wait(0.1)
            elif not wait():
                return False
            self._room.clear()

    def offer_all(self, events: List[Event]) -> bool:
        """Queue all of `events` as one batch (the list is kept: the caller must not reuse it) if they fit now."""
        with self._put_lock:
            if self._put - self._done + len(events) > self.maxsize:
                return False
            self._put += len(events)
            self._queue.put(events)
        return True

    def _give(self, events: List[Event]) -> None:
        with self._put_lock:
            self._put += len(events)
            self._queue.put(events)

    def offer(self, events: Deque[Event], refill: Optional[Callable[[], None]] = None) -> None:
        """Move from the left of `events` as many as fit now, without waiting; if some are left,
        `refill()` is called (once, on the dispatcher thread) when half the queue is free again."""
        with self._put_lock:
            room = self.maxsize - (self._put - self._done)
            if events and room > 0:
                if room >= len(events):
                    batch = list(events)
                    events.clear()
                else:
                    batch = [events.popleft() for _ in range(room)]
                self._put += len(batch)
                self._queue.put(batch)
            if events and refill is not None:
                self._refill = refill  # the queue is full now: the dispatcher has events to finish

    def stop(self, timeout: Optional[float] = None) -> bool:
        """Let the thread finish what is queued, then end it. Return True if it ended in time.

        Called from a callback (the dispatcher's own thread) it only asks: the
        thread ends once that callback returns, and returns False.
        """
        thread = self._thread
        if thread is None:
            return True
        with self._put_lock:
            if not self._stop_queued:
                self._stop_queued = True
                self._queue.put(_STOP)
        if self.on_own_thread():
            return False
        thread.join(timeout)
        if thread.is_alive():
            return False
        self._thread = None
        return True

    def on_own_thread(self) -> bool:
        return self._thread is threading.current_thread()

    def has_room(self) -> bool:
        return self._put - self._done < self.maxsize

    def _run(self) -> None:
        try:
            self._deliver()
        finally:
            with self._put_lock:
                self._queue.close()

    def _deliver(self) -> None:
        get, tap, after, clock = self._queue.get, self._tap, self._after, time.monotonic
        run = self.handlers.run
        while True:
            batch = get()
            if batch is _STOP:
                return
            began = clock()
            for item in batch:
                failures = run(item)
                if failures:
                    self._report(item, failures)
                if tap is not None or after is not None:
                    try:
                        if tap is not None:
                            tap(item, failures is not None)
                        if after is not None:
                            after(item)
                    except BaseException:
                        log.exception("post-dispatch hook failed for %s", item.name)
                self._done += 1
                ended = clock()  # one clock read per event: this one's end is the next one's start
                if ended - began >= _SLOW and not self._warned_slow:
                    self._warned_slow = True
                    log.warning("callbacks for %s took %.1f s; events wait behind them (this is said once)",
                                item.name, ended - began)
                began = ended
                if self._waiting:  # a producer waits for room: tell it now, not at the end of the batch
                    self._waiting = False
                    self._room.set()
                refill = self._refill
                if refill is not None and self._put - self._done <= self.maxsize // 2:
                    self._refill = None
                    refill()
            if self._put - self._done < self.maxsize // 2:
                self._warned_full = False

    def dispatch(self, event: Event) -> None:
        """Run callbacks for one event on the calling thread, reporting failures as `rtsync.error`."""
        failures = self.handlers.run(event)
        if failures:
            self._report(event, failures)

    def _report(self, event: Event, failures: Sequence[Tuple[Callback, BaseException]]) -> None:
        for fn, exc in failures:
            try:
                log.error("callback %r failed on %s", _describe(fn), event.name, exc_info=exc)
            except BaseException:  # formatting the traceback calls the exception's __str__
                log.error("callback %r failed on %s: %s", _describe(fn), event.name, _text(exc))
            if event.name == ERROR:
                continue  # never report an error about reporting an error
            report = Event.make(
                ERROR,
                provider=event.provider,
                received_at=datetime.now(timezone.utc),
                data={
                    "error": f"{type(exc).__name__}: {_text(exc)}",
                    "callback": _describe(fn),
                    "event": event.name,
                    "exception": exc,
                    "fatal": False,
                },
            )
            self.dispatch(report)


def _text(exc: BaseException) -> str:
    try:
        return str(exc)
    except BaseException:  # a user's exception whose __str__ itself fails
        return f"<{type(exc).__name__} whose str() failed>"


def _describe(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)
