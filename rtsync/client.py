"""`Client`: what every vendor client offers its user: callbacks, lifecycle, readiness and statistics.

A vendor client is this class with a constructor that hands the engine a
`Vendor` (its protocol, secrets and hooks) and the vendor's own methods;
the connection loop itself lives in `engine.py` (and its link loop in `reader.py`).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, Mapping, Optional, Tuple, TypeVar, overload

from .dispatch import Handlers
from .engine import Engine, Vendor
from .errors import ConnectionLost, RtsyncError
from .events import Event
from .inbox import Inbox
from .lease import Lease
from .policy import Backoff, RetryBudget
from .sansio import Handshake, Output
from .state import State, Stats
from .wire import Link, Verify
from .wire.network import Cert, Network, ProxyOption

__all__ = ["Client"]

C = TypeVar("C", bound="Client")
F = TypeVar("F", bound=Callable[[Event], Any])


class Client:
    """Base of the five vendor clients; see each one for its credentials and events.

    Shared keyword options: `queue_size` (events held for callbacks before
    reading slows), `backoff`, `retry_budget`, `connect_timeout`,
    `max_message_size`, `verify` (True, False, a CA bundle path, or an
    `ssl.SSLContext`), `cert` (client certificate: a PEM path holding cert
    and key, or `(certfile, keyfile)`), `proxy` (`http://`, `https://` (TLS to
    the proxy, checked with `verify`), `socks5://` or
    `socks5h://` URL, user:pass allowed; None reads HTTPS_PROXY, HTTP_PROXY,
    ALL_PROXY and NO_PROXY; False goes direct), `headers` (extra headers on
    every handshake and REST request; the client's own, such as
    Authorization, win a clash, with a warning), and `link` (how a connection is made from a
    `Handshake`: `rtsync.testing.MockLink` replays recorded frames instead of
    opening a socket, for testing your callbacks), and `lease` (an
    `rtsync.RedisLease`: only its holder connects, other replicas stand by;
    see docs/deployment.rst).
    """

    def __init__(
        self,
        vendor: Vendor,
        *,
        queue_size: int = 10_000,
        backoff: Optional[Backoff] = None,
        retry_budget: Optional[RetryBudget] = None,
        connect_timeout: float = 10.0,
        max_message_size: int = 16 * 1024 * 1024,
        verify: Verify = True,
        cert: Optional[Cert] = None,
        proxy: ProxyOption = None,
        headers: Optional[Mapping[str, str]] = None,
        link: Optional[Callable[[Handshake], Link]] = None,
        lease: Optional[Lease] = None,
    ) -> None:
        network = Network(verify=verify, cert=cert, proxy=proxy, headers=headers)  # validated up front
        self._handlers = Handlers()
        self._inbox = Inbox(queue_size, vendor.name)
        self._engine = Engine(
            vendor, self._handlers, queue_size=queue_size, backoff=backoff, retry_budget=retry_budget,
            connect_timeout=connect_timeout, max_message_size=max_message_size, verify=verify, link=link,
            tap=self._inbox.put, network=network, lease=lease,
        )
        self._secrets = vendor.secrets
        self.provider = vendor.name
        self.log = logging.getLogger(f"rtsync.{vendor.name}")

    # -- callbacks -----------------------------------------------------------
    @overload
    def on(self, pattern: str) -> Callable[[F], F]: ...

    @overload
    def on(self, pattern: str, fn: F) -> F: ...

    def on(self, pattern: str, fn: Optional[F] = None) -> Any:
        """Call `fn(event)` for every event whose name or channel glob-matches `pattern`.

        Works as a call (`client.on("x", fn)`) and as a decorator (`@client.on("x")`);
        either way it returns the function unchanged.
        """
        return self._register(pattern, fn, once=False)

    @overload
    def once(self, pattern: str) -> Callable[[F], F]: ...

    @overload
    def once(self, pattern: str, fn: F) -> F: ...

    def once(self, pattern: str, fn: Optional[F] = None) -> Any:
        """Like `on`, but the callback runs for the first matching event only."""
        return self._register(pattern, fn, once=True)

    def _register(self, pattern: str, fn: Optional[F], once: bool) -> Any:
        if fn is None:

            def decorator(f: F) -> F:
                self._handlers.add(pattern, f, once=once)
                return f

            return decorator
        self._handlers.add(pattern, fn, once=once)
        return fn

    def off(self, pattern: str, fn: Optional[Callable[[Event], Any]] = None) -> int:
        """Remove `fn` (or every callback) registered under exactly `pattern`; return how many."""
        return self._handlers.remove(pattern, fn)

    # -- lifecycle -----------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while the link thread runs (connected or reconnecting)."""
        return self._engine.running

    @property
    def state(self) -> State:
        """`rtsync.State`: STOPPED, CONNECTING, CONNECTED, RECONNECTING or FAILED."""
        return self._engine.state

    @property
    def connected(self) -> bool:
        """True while ready: connected, logged in and subscribed."""
        return self._engine.state is State.CONNECTED

    @property
    def error(self) -> Optional[RtsyncError]:
        """The error that ended the client, if one did (e.g. AuthenticationError)."""
        return self._engine.fatal

    @property
    def verify(self) -> Verify:
        """How the server's TLS certificate is checked (True by default)."""
        return self._engine.verify

    @property
    def stats(self) -> Stats:
        """A frozen snapshot of the client's counters."""
        return self._engine.stats()

    def wait_connected(self, timeout: Optional[float] = None) -> bool:
        """Block until ready (True) or `timeout` (False); raise the fatal error if one ended the client."""
        return self._engine.wait_connected(timeout)

    def receive(self, timeout: Optional[float] = None) -> Event:
        """Pull style: the next event (lifecycle events too: check `event.name`), after its callbacks ran.

        Raises `rtsync.ReceiveTimeout` (an RtsyncError and a TimeoutError) when none comes within
        `timeout` s, and the fatal error once one ended the client. The newest `queue_size`
        events wait for `receive()`; if it falls further behind, it gets an `rtsync.gap` saying
        how many it missed.
        """
        return self._inbox.receive(timeout, self._ended)

    def _ended(self) -> Optional[RtsyncError]:
        if self._engine.fatal is not None:
            return self._engine.fatal
        if not self._engine.running:
            return ConnectionLost("the client is not running (start() it first), and no event is left")
        return None

    def start(self: C) -> C:
        """Start the link and dispatcher threads and return at once. Idempotent while running."""
        self._engine.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop reading, deliver what is already queued, and join every thread. Idempotent.

        Waits at most `timeout` seconds in all; a callback still running then is left to
        finish on its (daemon) thread and a warning is logged. Called from a callback,
        it stops the link and lets the dispatcher end once that callback returns.
        """
        self._engine.stop(timeout)

    def run_forever(self) -> None:
        """Start and block until stopped. Ctrl-C stops cleanly and returns.

        Raises the fatal error (e.g. AuthenticationError) if one ended the client.
        """
        if self._engine.in_callback():
            raise RtsyncError("run_forever() was called from a callback, where it would block every "
                              "callback (they run one at a time on one thread); the client is already running")
        self.start()
        try:
            while not self._engine.finished.wait(0.5):
                pass
        except KeyboardInterrupt:
            self.log.info("interrupted; stopping")
        finally:
            self.stop()
        if self._engine.fatal is not None:
            raise self._engine.fatal

    def __enter__(self: C) -> C:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.state.value}>"

    # -- for vendor methods ----------------------------------------------------
    def _exchange(self, fn: Callable[[Any], Iterable[Output]]) -> None:
        self._engine.exchange(fn)

    def _request(self, fn: Callable[[Any], Tuple[str, Iterable[Output]]], timeout: float) -> Any:
        return self._engine.request(fn, timeout)

    def _redact(self, text: str) -> str:
        return self._secrets.redact(text)
