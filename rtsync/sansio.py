"""The contract between a vendor's sans-I/O protocol and the engine that drives it.

A protocol never touches sockets, threads or clocks. The engine hands it
what arrived (text frames, HTTP responses) and the current monotonic time
`now`, and the protocol answers with a list of outputs:

- an `Event` to deliver to callbacks (vendor events, or `rtsync.gap`),
- `Send(text)` / `Ping()` to write on the current link,
- `Connected(resumed=...)` once the link is fully usable (subscribed, logged in),
- `Reply(key, result, error)` to complete a blocking call made through
  `Client._request`,
- `Report(error)` for a problem worth telling callbacks about (`rtsync.error`)
  that does not end the link (a malformed frame),
- `Fail(error)` to end the link; the engine reconnects if `error.retryable`,
  otherwise stops the client with it,
- `Rotate()` to replace the link make-before-break (new link first, then the
  old one is drained and closed).

Timers are deadlines: after every call the engine asks `deadline()` and calls
`tick(now)` when it passes, so heartbeats and stale checks need no thread.
Events leave a protocol with `received_at` unset: the engine stamps them
from the wall clock when it queues them.

Shared by the vendors' protocols: `Liveness` (probe a quiet link, give up a
stale one), `BoundedSet` (dedupe memory), `json_object` (decode a frame) and
`loads` (json.loads, through orjson when the `fast` extra installed it).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, Generic, List, Mapping, Optional, Sequence, Set, TypeVar, Union

from .errors import ProtocolError, RtsyncError, StaleConnection
from .events import Event
from .jsontext import MAX_DEPTH, QUICK, loads, quick_loads, shallow

K = TypeVar("K")

__all__ = [
    "BoundedSet",
    "Connected",
    "Fail",
    "Handshake",
    "HttpRequest",
    "HttpResponse",
    "Liveness",
    "MAX_DEPTH",
    "Output",
    "Ping",
    "PollingProtocol",
    "Reply",
    "Report",
    "Rotate",
    "Send",
    "WebSocketProtocol",
    "json_object",
    "loads",
    "shallow",
]

@dataclass(frozen=True)
class Send:
    text: str


@dataclass(frozen=True)
class Ping:
    """An RFC 6455 ping with an empty payload (the only kind every server tolerates)."""


@dataclass(frozen=True)
class Connected:
    resumed: bool = False
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    key: str
    result: Any = None
    error: Optional[RtsyncError] = None


@dataclass(frozen=True)
class Report:
    error: RtsyncError


@dataclass(frozen=True)
class Fail:
    error: RtsyncError


@dataclass(frozen=True)
class Rotate:
    reason: str = "refresh"


Output = Union[Event, Send, Ping, Connected, Reply, Report, Fail, Rotate]


@dataclass(frozen=True)
class Handshake:
    """What to open: the URL (secrets included; the engine redacts it in logs) and extras."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    subprotocols: Sequence[str] = ()
    origin: Optional[str] = None
    #: what an HTTP status on the upgrade means for this vendor, added to the error message
    status_hints: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HttpRequest:
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 40.0


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


def quoted(text: str) -> str:
    """A frame cut short, and escaped, for a report."""
    return repr(text[:80])[:120]


def json_object(text: str, *, quote: Callable[[str], str] = quoted) -> Union[Dict[str, Any], Report]:
    """A text frame decoded as a JSON object, or the Report that says why it was skipped.

    The report quotes the frame with `quote` (cut short; a protocol whose frames carry a
    secret passes one that redacts first: it runs only for a report). Never raises for any
    `str` input.
    """
    if quick_loads is not None and len(text) <= QUICK:  # nearly every frame: `loads`' answer without its call
        try:
            value = quick_loads(text)
        except ValueError:
            pass  # `loads` gives the verdict
        else:
            if type(value) is dict:
                return value
    try:
        value = loads(text)
    except RecursionError:  # not a ValueError: JSON nested deeper than the interpreter's stack allows
        problem = "nested too deeply to decode"
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        problem = "that is not JSON"
    else:
        if isinstance(value, dict):
            return value
        problem = "that is not a JSON object"
    return Report(ProtocolError(f"skipped a frame {problem}: {quote(text)}"))


def contained(decode: Callable[[str, float], List[Output]], text: str, now: float,
              quote: Callable[[str], str] = quoted) -> List[Output]:
    """`decode(text, now)` for one frame, as a last resort against the unforeseen: an RtsyncError
    still leaves (the protocol meant it); any other exception becomes one Report, and the link goes on.

    Called on every frame: a bound method, not a closure built per frame, and no keywords.
    """
    try:
        return decode(text, now)
    except RtsyncError:
        raise
    except Exception as exc:
        return [Report(ProtocolError(
            f"skipped a frame that could not be decoded ({type(exc).__name__}): {quote(text)}"))]


class Liveness:
    """When to probe a link and when to give it up as stale: one helper, configured per vendor.

    - `probe`: what goes out: `Ping` (an RFC 6455 ping, the default), a function returning a
      vendor frame (`Send`), or None (the server pings us; we only listen).
    - what "heard" means: by default any sign of life (`heard()`: a frame, a control frame, or the
      engine pausing its reads for slow callbacks) restarts the silence; the probe goes out after
      `interval` s of silence and `timeout` s more is stale (with no probe: `interval + timeout` s).
      With `heartbeat=True` the probe goes out on open and every `interval` s whatever arrives; only
      `answered()` ends the wait for its answer, `heard()` restarts that wait (the answer may sit
      unread), and `timeout` s of waiting is stale.
    - `stale`: the StaleConnection message, with `{vendor}` and `{seconds}` (silence or wait) filled in.

    A half-open TCP connection would otherwise look healthy until the OS gives up, hours later.
    """

    def __init__(
        self,
        vendor: str,
        *,
        interval: float = 0.0,
        timeout: float,
        probe: Optional[Callable[[], Output]] = Ping,
        heartbeat: bool = False,
        stale: str = "no frame from {vendor} for {seconds:.0f} s (not even a PONG); reconnecting",
    ) -> None:
        if heartbeat and probe is None:
            raise ValueError("a heartbeat needs a probe")
        self.vendor, self.interval, self.timeout = vendor, interval, timeout
        self.probe, self.heartbeat, self.stale = probe, heartbeat, stale
        self._since = 0.0  # silence: when last heard; heartbeat: since when an answer is awaited
        self._waiting = False  # a probe is out, not answered yet
        self._next = 0.0  # heartbeat: when the next probe is due

    def opened(self, now: float) -> List[Output]:
        """A new link: silence counts from now; a heartbeat beats at once."""
        self._waiting = False
        if self.heartbeat:
            return self._beat(now)
        self._since = now
        return []

    def heard(self, now: float) -> None:
        if not self.heartbeat:
            self._since, self._waiting = now, False
        elif self._waiting:
            self._since = now

    def answered(self, now: float) -> None:
        """The probe's answer arrived (for a heartbeat, the only thing that ends the wait)."""
        if self.heartbeat:
            self._waiting = False
        else:
            self.heard(now)

    def lost(self) -> None:
        self._waiting = False

    def deadline(self) -> float:
        if self.heartbeat:
            return min(self._next, self._since + self.timeout) if self._waiting else self._next
        if self._waiting or self.probe is None:
            return self._since + self.interval + self.timeout
        return self._since + self.interval

    def tick(self, now: float) -> List[Output]:
        waited = now - self._since
        if self.heartbeat:
            if self._waiting and waited >= self.timeout:
                return [self._stale(waited)]
            return self._beat(now) if now >= self._next else []
        if (self._waiting or self.probe is None) and waited >= self.interval + self.timeout:
            return [self._stale(waited)]
        if not self._waiting and self.probe is not None and waited >= self.interval:
            self._waiting = True
            return [self.probe()]
        return []

    def _beat(self, now: float) -> List[Output]:
        assert self.probe is not None
        self._next = now + self.interval
        if not self._waiting:
            self._waiting, self._since = True, now
        return [self.probe()]

    def _stale(self, seconds: float) -> Fail:
        return Fail(StaleConnection(self.stale.format(vendor=self.vendor, seconds=seconds)))


class BoundedSet(Generic[K]):
    """The last `size` distinct keys added, the oldest forgotten first: dedupe memory that cannot grow."""

    __slots__ = ("size", "_keys", "_order")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.size = size
        self._keys: Set[K] = set()
        self._order: Deque[K] = collections.deque()

    def add(self, key: K) -> bool:
        """Remember `key`; False if it was already remembered (a repeat)."""
        if key in self._keys:
            return False
        self._keys.add(key)
        self._order.append(key)
        if len(self._order) > self.size:
            self._keys.discard(self._order.popleft())
        return True

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def clear(self) -> None:
        self._keys.clear()
        self._order.clear()


class WebSocketProtocol:
    """Base for a vendor's WebSocket protocol; every hook has a harmless default.

    One instance lives as long as the client, across links, so it can keep
    cursors, subscriptions and dedupe state; `opened` marks a new link.
    """

    #: Treat binary frames as UTF-8 text (some vendors' servers send either).
    binary_as_text = False

    def handshake(self) -> Handshake:
        raise NotImplementedError

    def accepted(self, subprotocol: Optional[str]) -> Optional[RtsyncError]:
        """The server's choice of subprotocol (None: it chose none); an error refuses the link."""
        return None

    def opened(self, now: float) -> List[Output]:
        """A new link is open (handshake done)."""
        return []

    def received(self, text: str, now: float) -> List[Output]:
        """One complete text frame arrived."""
        return []

    def heard(self, now: float) -> None:
        """A control frame (ping/pong) arrived: the server is alive."""

    def closed(self, code: Optional[int], reason: str) -> RtsyncError:
        """The server closed the link; say what that means (retryable or not)."""
        from .errors import ConnectionLost

        return ConnectionLost(f"server closed the connection (code {code})")

    def lost(self) -> List[Output]:
        """The link is gone for any reason: reset per-link state, fail calls in flight."""
        return []

    def deadline(self) -> Optional[float]:
        """Monotonic time at which `tick` must run next, or None."""
        return None

    def tick(self, now: float) -> List[Output]:
        return []


class PollingProtocol:
    """Base for a vendor's HTTP polling protocol."""

    def request(self) -> HttpRequest:
        raise NotImplementedError

    def response(self, response: HttpResponse, now: float) -> List[Output]:
        raise NotImplementedError

    def delay(self) -> float:
        """Seconds to wait before the next request after a successful one."""
        return 0.0

    def lost(self) -> List[Output]:
        """A request failed or the client is stopping: reset per-link state."""
        return []

