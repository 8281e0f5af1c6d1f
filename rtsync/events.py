"""Events, the pattern registry behind on/off/once, and the dispatcher thread that runs callbacks.

Threading contract: reader threads only ever call `Dispatcher.put`; user
callbacks run on the one dispatcher thread, one at a time, in arrival order.
"""

from __future__ import annotations

import collections
import logging
import threading
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    List,
    Optional,
    Set,
    Tuple,
    Type,
    Union,
)

from pydantic import BaseModel, ConfigDict

__all__ = [
    "CONNECTED",
    "DISCONNECTED",
    "ERROR",
    "GAP",
    "RECONNECTING",
    "Dispatcher",
    "Event",
    "Handlers",
    "register_view",
]

log = logging.getLogger("rtsync.events")

# Lifecycle names: the "rtsync." prefix is one no vendor can produce.
CONNECTED = "rtsync.connected"
DISCONNECTED = "rtsync.disconnected"
RECONNECTING = "rtsync.reconnecting"
ERROR = "rtsync.error"
GAP = "rtsync.gap"

Callback = Callable[["Event"], Any]

# (provider, name glob) -> pydantic model giving a typed view of `Event.data`.
_VIEWS: List[Tuple[str, str, Type[BaseModel]]] = []


def register_view(provider: str, pattern: str, model: Type[BaseModel]) -> None:
    """Declare that `data` of `provider` events whose name matches `pattern` parses as `model`."""
    _VIEWS.append((provider, pattern, model))


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Event(BaseModel):
    """One decoded event, vendor or lifecycle.

    `name` is what `on()` matches first; `channel` is the vendor's channel or
    stream (None where the vendor has none); `data` is the decoded payload;
    `raw` is the frame as received. `typed` parses `data` with the vendor's
    pydantic model where one is registered, else returns None.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    channel: Optional[str] = None
    data: Any = None
    id: Optional[Union[int, str]] = None
    provider: str = "rtsync"
    received_at: datetime
    raw: Optional[str] = None

    @classmethod
    def make(
        cls,
        name: str,
        *,
        provider: str,
        data: Any = None,
        channel: Optional[str] = None,
        id: Optional[Union[int, str]] = None,
        raw: Optional[str] = None,
        received_at: Optional[datetime] = None,
        **extra: Any,
    ) -> "Event":
        """Build an event from already-decoded parts, skipping validation (the hot path).

        `extra` fills a subclass's own fields (e.g. DashlyEvent's `tag` and `time`).
        """
        values = {
            "name": name,
            "channel": channel,
            "data": data,
            "id": id,
            "provider": provider,
            "received_at": received_at or _now(),
            "raw": raw,
        }
        if extra:
            values.update(extra)
        return cls._build(values)

    @classmethod
    def _build(cls, values: Dict[str, Any]) -> "Event":
        # What model_construct does, minus its per-call bookkeeping: events are built by
        # our own decoders from already-checked values, at up to ~10^5 per second.
        obj = _new(cls)
        _set(obj, "__dict__", values)
        _set(obj, "__pydantic_fields_set__", _fields_set(cls))
        _set(obj, "__pydantic_extra__", None)
        _set(obj, "__pydantic_private__", None)
        return obj

    @property
    def typed(self) -> Optional[BaseModel]:
        """`data` parsed with the vendor's model (unknown fields kept), or None if none applies.

        Parsed on each access: keep the result if you use it more than once.
        """
        for provider, pattern, model in _VIEWS:
            if provider == self.provider and fnmatchcase(self.name, pattern):
                return model.model_validate(self.data)
        return None


_new = object.__new__
_set = object.__setattr__
_FIELDS_SETS: Dict[type, Set[str]] = {}


def _fields_set(cls: type) -> Set[str]:
    found = _FIELDS_SETS.get(cls)
    if found is None:
        found = _FIELDS_SETS[cls] = set(cls.model_fields)  # type: ignore[attr-defined]
    return found


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
                found = [
                    e
                    for e in self._entries
                    if _matches(e[0], event.name) or _matches(e[0], event.channel)
                ]
                self._cache[key] = found
        return found

    def run(self, event: Event) -> List[Tuple[Callback, BaseException]]:
        """Call every matching callback in registration order; return the failures."""
        failures: List[Tuple[Callback, BaseException]] = []
        for pattern, fn, once in self.matching(event):
            if once and not self._discard((pattern, fn, once)):
                continue  # a `once` callback another event already consumed
            try:
                fn(event)
            except Exception as exc:
                failures.append((fn, exc))
        return failures


_STOP = object()
_BATCH = 64


class Dispatcher:
    """A bounded FIFO of events and the one thread that runs callbacks for them.

    When the queue holds `maxsize` events, `put` blocks the reader (nothing is
    dropped) until the callbacks catch up or `abort` is set; the reader keeps
    its timers running meanwhile (see `Client`), and the socket's own flow
    control makes the server wait. `after` runs on the dispatcher thread after
    each event's callbacks (the Dashly checkpoint uses it).
    """

    def __init__(
        self,
        handlers: Handlers,
        *,
        maxsize: int = 10_000,
        name: str = "rtsync-dispatch",
        after: Optional[Callable[[Event], None]] = None,
    ) -> None:
        if maxsize < 1:
            raise ValueError("queue_size must be at least 1")
        self.handlers = handlers
        self.maxsize = maxsize
        self._after = after
        self._queue: Deque[Any] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._thread: Optional[threading.Thread] = None
        self._name = name
        self._warned_full = False
        self._stop_queued = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, event: Event, wait: Optional[Callable[[], bool]] = None) -> bool:
        """Queue one event. While full, call `wait()` (which returns False to give up) between checks."""
        with self._cond:
            while len(self._queue) >= self.maxsize:
                if not self._warned_full:
                    self._warned_full = True
                    log.warning(
                        "event queue full (%d events): reading paused until callbacks catch up",
                        self.maxsize,
                    )
                if wait is None:
                    self._cond.wait(0.1)
                    continue
                self._cond.release()
                try:
                    if not wait():
                        return False
                finally:
                    self._cond.acquire()
            self._queue.append(event)
            self._cond.notify_all()
        return True

    def put_many(self, events: List[Event], wait: Optional[Callable[[], bool]] = None) -> bool:
        """Queue several events with one lock round while they fit (the reader's hot path)."""
        with self._cond:
            if len(self._queue) + len(events) <= self.maxsize:
                self._queue.extend(events)
                self._cond.notify_all()
                return True
        for event in events:
            if not self.put(event, wait):
                return False
        return True

    def stop(self, timeout: Optional[float] = None) -> bool:
        """Let the thread finish what is queued, then end it. Return True if it ended in time.

        Called from a callback (the dispatcher's own thread) it only asks: the
        thread ends once that callback returns, and returns False.
        """
        thread = self._thread
        if thread is None:
            return True
        with self._cond:
            if not self._stop_queued:
                self._stop_queued = True
                self._queue.append(_STOP)
                self._cond.notify_all()
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
        return len(self._queue) < self.maxsize

    def _run(self) -> None:
        queue, cond, after = self._queue, self._cond, self._after
        while True:
            with cond:
                while not queue:
                    cond.wait()
                # Take a small batch per lock round: fewer hand-offs between the threads.
                batch = [queue.popleft() for _ in range(min(len(queue), _BATCH))]
                if len(queue) < self.maxsize // 2:
                    self._warned_full = False
                cond.notify_all()
            for item in batch:
                if item is _STOP:
                    return
                self.dispatch(item)
                if after is not None:
                    try:
                        after(item)
                    except Exception:
                        log.exception("post-dispatch hook failed for %s", item.name)

    def dispatch(self, event: Event) -> None:
        """Run callbacks for one event on the calling thread, reporting failures as `rtsync.error`."""
        failures = self.handlers.run(event)
        if not failures:
            return
        for fn, exc in failures:
            log.error("callback %r failed on %s", _describe(fn), event.name, exc_info=exc)
            if event.name == ERROR:
                continue  # never report an error about reporting an error
            report = Event.make(
                ERROR,
                provider=event.provider,
                data={
                    "error": f"{type(exc).__name__}: {exc}",
                    "callback": _describe(fn),
                    "event": event.name,
                    "exception": exc,
                    "fatal": False,
                },
            )
            self.dispatch(report)


def _describe(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)
