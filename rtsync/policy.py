"""Reconnect policy: how long to wait after a failure, and whether to try again at all.

Waits come from the `backoff` package's wait generators (`backoff.expo`)
with full jitter; the sleeping itself is the engine's, on an Event that
`stop()` can interrupt. Clock and jitter are injectable for tests.
"""

from __future__ import annotations

import collections
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, Iterator, Optional, Tuple

import backoff

from .errors import (
    AuthenticationError,
    ConnectionLost,
    RateLimited,
    RequestRejected,
    RtsyncError,
    TLSVerificationError,
)

__all__ = ["CLOSE_CODES", "Backoff", "RetryBudget", "close_error", "network_cause", "seconds", "status_error",
           "tls_error"]

#: What a server's close code means, per vendor ("*": every vendor unless it says otherwise):
#: "final" ends the client (the request itself was refused), "auth" ends it with
#: AuthenticationError, "wait" retries after a pause, "retry" reconnects with backoff.
#: Codes not listed are "retry". Dashly's 1008 (a JSON reason from the push stream module)
#: and Dialpad's 1008 (a refused URL token, final after three) are read by their protocols.
CLOSE_CODES: Dict[str, Dict[int, Tuple[str, str]]] = {
    "*": {
        1003: ("final", "the server cannot accept the kind of data we sent"),
        1008: ("final", "the server refused the request (policy violation)"),
        1013: ("wait", "the server is overloaded; try again later"),
        4401: ("auth", "the credentials were not accepted"),
        4403: ("auth", "the credentials are not allowed here"),
    },
    "doshii": {
        1008: ("auth", "Doshii did not accept the client id"),
        4001: ("auth", "Doshii did not accept the client id"),
    },
    "quickmeet": {  # the ddp-streamer's (reference sections 4 and 7.2): a fresh session starts clean
        1002: ("retry", "the server saw a protocol error (a frame before connect, or a malformed method or sub)"),
        1007: ("retry", "the server could not parse a frame we sent"),
        1013: ("retry", "we read too slowly and the server's buffer for us filled up"),
        4000: ("retry", "the server heard nothing from us in time (ping timeout)"),
    },
}

_WAIT_AFTER_1013 = 10.0


def close_error(vendor: str, code: Optional[int], reason: str = "") -> RtsyncError:
    """The error a server's close code means for `vendor`, as `CLOSE_CODES` says."""
    verdict, meaning = CLOSE_CODES.get(vendor, {}).get(code or 0) or CLOSE_CODES["*"].get(code or 0) or ("retry", "")
    said = f"{vendor.capitalize()} closed the connection (code {code}{': ' + reason if reason else ''})"
    if meaning:
        said = f"{said}; {meaning}"
    if verdict == "auth":
        return AuthenticationError(f"{said}. Check the credentials; rtsync will not retry.")
    if verdict == "final":
        return RequestRejected(f"{said}. Retrying the same request would fail the same way.", status=code)
    if verdict == "wait":
        return RateLimited(said, retry_after=_WAIT_AFTER_1013)
    return ConnectionLost(said)


def status_error(status: int, what: str, retry_after: Optional[float] = None, hint: str = "") -> RtsyncError:
    """Map an HTTP status on a handshake or request to the rtsync error the policy understands."""
    if hint:
        what = f"{what} ({hint})"
    if status in (401, 403):
        return AuthenticationError(
            f"{what} was refused with HTTP {status}: the credentials were not accepted. "
            "Check the token or key; rtsync will not retry."
        )
    if status == 429:
        return RateLimited(f"{what} was rate limited (HTTP 429)", retry_after=retry_after)
    if 400 <= status < 500 and status != 408:
        return RequestRejected(f"{what} was rejected with HTTP {status}", status=status)
    return ConnectionLost(f"{what} failed with HTTP {status}")


def tls_error(what: str, detail: str) -> TLSVerificationError:
    return TLSVerificationError(
        f"{what} failed: the server's TLS certificate could not be verified ({detail}). "
        "If it uses a private CA, pass verify='/path/to/ca.pem'; verify=False only for testing."
    )


def network_cause(exc: BaseException) -> str:
    """Why a connection could not be made or kept, in words, with the likely fix (walks the cause chain)."""
    seen: Optional[BaseException] = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return "the host name could not be resolved (check the URL's host)"
        if isinstance(seen, ConnectionRefusedError):
            return "the connection was refused (is the port right, and the server up?)"
        if isinstance(seen, ConnectionResetError):
            return "the server reset the connection"
        if isinstance(seen, (socket.timeout, TimeoutError)):
            return "it timed out"
        if isinstance(seen, ssl.SSLError):
            return f"the TLS handshake failed ({seen.reason or 'SSLError'}: is it a plain ws:// or http:// port?)"
        seen = seen.__cause__ or seen.__context__ or (seen.args[0] if seen.args and
                                                      isinstance(seen.args[0], BaseException) else None)
    text = str(exc)
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


def seconds(value: Optional[str]) -> Optional[float]:
    """A Retry-After value in seconds, or None when absent or not a number of seconds."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


@dataclass
class Backoff:
    """Exponential backoff with full jitter: wait `floor + jitter(min(cap, base * 2**n))`.

    `floor` is a minimum pause every failure costs (Dashly asks for 20-30 s:
    `Backoff(floor=20, base=10, cap=10)`). A `RateLimited` error with a
    `retry_after` waits exactly what the server said instead.
    """

    base: float = 1.0
    cap: float = 30.0
    floor: float = 0.0
    jitter: Callable[[float], float] = backoff.full_jitter
    _waits: Optional[Iterator[float]] = field(default=None, init=False, repr=False)

    def reset(self) -> None:
        """Forget past failures (called once a link has been healthy)."""
        self._waits = None

    def next_delay(self, error: Optional[RtsyncError] = None) -> float:
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return max(0.0, float(error.retry_after))
        if self._waits is None:
            # backoff.expo yields None first (its "prime" step) before the series starts.
            self._waits = backoff.expo(base=2, factor=self.base, max_value=self.cap)
            next(self._waits)
        return self.floor + self.jitter(next(self._waits))


@dataclass
class RetryBudget:
    """At most `attempts` reconnects within any `window` seconds; beyond that the client gives up."""

    attempts: int
    window: float
    clock: Callable[[], float] = time.monotonic
    _times: Deque[float] = field(default_factory=collections.deque, init=False, repr=False)

    def spend(self) -> bool:
        """Record one reconnect; return False when the budget for the window is exhausted."""
        now = self.clock()
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()
        if len(self._times) >= self.attempts:
            return False
        self._times.append(now)
        return True
