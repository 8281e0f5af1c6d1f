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
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from .errors import ProtocolError, RtsyncError, StaleConnection
from .events import Event

__all__ = [
    "Connected",
    "Fail",
    "Handshake",
    "HttpRequest",
    "HttpResponse",
    "Liveness",
    "Output",
    "Ping",
    "PollingProtocol",
    "Reply",
    "Report",
    "Rotate",
    "Send",
    "WebSocketProtocol",
    "json_object",
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


def json_object(text: str, *, shown: Optional[str] = None) -> Union[Dict[str, Any], Report]:
    """A text frame decoded as a JSON object, or the Report that says why it was skipped.

    The report quotes the frame cut short (`shown` instead, if given: a protocol whose
    frames carry a secret passes them redacted). Never raises for any `str` input.
    """
    try:
        value = json.loads(text)
    except RecursionError:  # not a ValueError: JSON nested deeper than the interpreter's stack allows
        problem = "nested too deeply to decode"
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        problem = "that is not JSON"
    else:
        if isinstance(value, dict):
            return value
        problem = "that is not a JSON object"
    quoted = repr((text if shown is None else shown)[:80])[:120]
    return Report(ProtocolError(f"skipped a frame {problem}: {quoted}"))


class Liveness:
    """For vendors without an app heartbeat: after `keepalive` s without any frame, an RFC 6455
    ping; `keepalive + pong_timeout` s without one is a stale link (a half-open TCP connection
    would otherwise look healthy until the OS gives up, hours later)."""

    def __init__(self, vendor: str, keepalive: float, pong_timeout: float) -> None:
        self.vendor, self.keepalive, self.pong_timeout = vendor, keepalive, pong_timeout
        self._last_heard = 0.0
        self._pinged = False

    def heard(self, now: float) -> None:
        self._last_heard, self._pinged = now, False

    def deadline(self) -> float:
        return self._last_heard + self.keepalive + (self.pong_timeout if self._pinged else 0.0)

    def tick(self, now: float) -> List[Output]:
        silent = now - self._last_heard
        if self._pinged and silent >= self.keepalive + self.pong_timeout:
            return [Fail(StaleConnection(
                f"no frame from {self.vendor} for {silent:.0f} s (not even a PONG); reconnecting"))]
        if not self._pinged and silent >= self.keepalive:
            self._pinged = True
            return [Ping()]
        return []


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

