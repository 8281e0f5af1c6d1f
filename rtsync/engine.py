"""The engine that runs one client: its threads, its lifecycle and the reconnect loop around a `Reader`.

The link loop (reading, decoding, acting on a protocol's outputs, queueing
events) is `reader.Reader`; the hot standby behind a lease is
`standby.Standby`; the engine owns one of each. A vendor configures it with
a `Vendor` (its sans-I/O protocol, how to prepare a connection, its secrets,
how to read its failures); nothing here is meant to be overridden. The protocol lock guards protocol state only: outputs are
computed under it and acted on outside it, so a full event queue or a slow
send never blocks a user-facing call.

Threading contract:

- one link thread per client (`rtsync-<vendor>-link`) owns the socket or the
  poll loop: it decodes frames through the protocol, runs the protocol's
  timers between reads, and queues events. It never runs user code.
- one dispatcher thread (`rtsync-<vendor>-dispatch`, see `dispatch.py`) runs
  callbacks in arrival order. When callbacks fall behind, the link thread
  keeps reading (pings answered, timers run) and holds up to `reader.READ_AHEAD`
  more events; only past that does reading pause, with timers still running.
- `stop()` interrupts any wait (socket read, connect, long poll, backoff)
  and joins both threads within its `timeout`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple, Union

from . import events as ev
from .dispatch import Dispatcher, Handlers
from .errors import CallTimeout, ConnectionLost, ProtocolError, RtsyncError
from .events import Event
from .lease import Lease
from .pending import Pending
from .policy import Backoff, RetryBudget
from .reader import Reader, Stopping
from .redact import Secrets
from .sansio import Handshake, Output, PollingProtocol, WebSocketProtocol
from .standby import Standby
from .state import State, Stats
from .wire import Link, Verify
from .wire.http import HttpClient
from .wire.network import Network

__all__ = ["Engine", "Vendor"]

# A connection that stayed up this long, or delivered an event, proved itself: backoff starts over.
_PROVEN = 10.0


@dataclass
class Vendor:
    """What a vendor hands the engine."""

    name: str
    protocol: Union[WebSocketProtocol, PollingProtocol]
    secrets: Secrets = field(default_factory=Secrets)
    #: called before every connection attempt for the URL and headers (fetch a URL, read a
    #: cursor); the default is the protocol's own `handshake()`
    prepare: Optional[Callable[[], Handshake]] = None
    #: reinterpret a link failure with what only the vendor knows, before the reconnect policy
    classify: Optional[Callable[[RtsyncError], RtsyncError]] = None
    #: runs on the dispatcher thread after each event's callbacks (checkpoints)
    delivered: Optional[Callable[[Event], None]] = None
    #: runs in `stop()` once the threads are joined
    stopped: Optional[Callable[[], None]] = None
    #: the vendor's own HTTP clients (REST): `stop()` interrupts their requests in flight (a
    #: `prepare` waiting on one) and then lets them serve calls again
    interrupt: Sequence[HttpClient] = ()
    #: called each time a lease is (re)gained, before connecting: reload the resume point from the
    #: checkpoint, since another replica may have moved it
    resume: Optional[Callable[[], None]] = None


class Engine:
    """Runs one vendor's protocol over links, with reconnects, until stopped or failed."""

    def __init__(
        self,
        vendor: Vendor,
        handlers: Handlers,
        *,
        queue_size: int = 10_000,
        backoff: Optional[Backoff] = None,
        retry_budget: Optional[RetryBudget] = None,
        connect_timeout: float = 10.0,
        max_message_size: int = 16 * 1024 * 1024,
        verify: Verify = True,
        link: Optional[Callable[[Handshake], Link]] = None,
        tap: Optional[Callable[[Event, bool], None]] = None,
        network: Optional[Network] = None,
        lease: Optional[Lease] = None,
    ) -> None:
        if queue_size < 1:
            from .errors import ConfigurationError

            raise ConfigurationError("queue_size must be at least 1")
        self.vendor = vendor
        self.protocol = vendor.protocol
        self.backoff = backoff or Backoff()
        self.retry_budget = retry_budget
        self.connect_timeout = connect_timeout
        self.max_message_size = max_message_size
        self.network = network if network is not None else Network(verify=verify)
        self.verify = self.network.verify
        for secret in self.network.secrets:  # proxy credentials: masked wherever the client logs
            vendor.secrets.add(secret)
        self._tap = tap  # sees every event on the dispatcher thread, after its callbacks
        self.http = HttpClient(network=self.network)
        self.log = logging.getLogger(f"rtsync.{vendor.name}")
        self._handlers = handlers
        self._queue_size = queue_size
        self._dispatcher: Optional[Dispatcher] = None
        self._thread: Optional[threading.Thread] = None
        self._stopping = threading.Event()
        self.finished = threading.Event()
        self.fatal: Optional[RtsyncError] = None
        self._lock = threading.RLock()  # guards protocol state and the current link
        self._ready = threading.Condition()
        self.state = State.STOPPED
        self._lease_gone = threading.Event()
        self._reader = Reader(
            vendor, lock=self._lock, stopping=self._stopping, lease_gone=self._lease_gone, http=self.http,
            network=self.network, connect_timeout=connect_timeout, max_message_size=max_message_size,
            new_link=link, set_state=self._set_state, log=self.log,
        )
        # Only the lease's holder connects; see Standby.hold.
        self._standby = None if lease is None else Standby(
            lease, handlers, self._reader, stopping=self._stopping, gone=self._lease_gone,
            http=self.http, set_state=self._set_state, log=self.log,
        )

    @property
    def _connecting(self) -> Optional[Link]:
        """The link being opened right now (a connect or a rotation), if any."""
        return self._reader.connecting

    # ------------------------------------------------------------------
    # Lifecycle
    # ------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the link and dispatcher threads and return at once. Idempotent while running."""
        if self._thread is not None:
            return
        reader = self._reader
        self._stopping.clear()
        self._lease_gone.clear()  # a loss from a previous run is not this run's to report
        self.finished.clear()
        self.fatal = None
        reader.counts = dict.fromkeys(reader.counts, 0)
        reader.backlog.clear()
        self.http.reset()
        self._set_state(State.CONNECTING)
        self._dispatcher = reader.dispatcher = Dispatcher(
            self._handlers if self._standby is None else self._standby.gate,
            maxsize=self._queue_size,
            name=f"rtsync-{self.vendor.name}-dispatch",
            tap=self._tap if self._standby is None else self._gated_tap,
            after=self.vendor.delivered if self._standby is None else self._gated_delivered,
        )
        self._dispatcher.start()
        self._thread = reader.thread = threading.Thread(
            target=self._run, name=f"rtsync-{self.vendor.name}-link", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop reading, deliver what is already queued, and join every thread. Idempotent."""
        thread = self._thread
        if thread is None:
            return
        deadline = time.monotonic() + timeout
        dispatcher = self._dispatcher
        self._stopping.set()
        for http in (self.http, *self.vendor.interrupt):
            http.cancel()
        # Read without the lock: a rotation may be opening its new link.
        link, connecting = self._reader.link, self._reader.connecting
        if link is not None:
            link.close()
        if connecting is not None:
            connecting.abort()
        if thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
        if dispatcher is not None and dispatcher.on_own_thread():
            dispatcher.stop()  # queues the end; a later stop() from another thread joins it
            self._stopped()
            return
        done = dispatcher.stop(max(0.0, deadline - time.monotonic())) if dispatcher is not None else True
        if thread.is_alive() or not done:
            self.log.warning("stop(): a thread did not finish within %.1f s", timeout)
        else:
            self._thread = self._reader.thread = None
            self._dispatcher = self._reader.dispatcher = None
        self._stopped()

    # A replica without its lease drops what was queued: neither receive() nor a checkpoint sees it.
    def _gated_tap(self, event: Event, handled: bool) -> None:
        assert self._standby is not None
        if self._tap is not None and not self._standby.gate.was_dropped(event):
            self._tap(event, handled)

    def _gated_delivered(self, event: Event) -> None:
        assert self._standby is not None
        if self.vendor.delivered is not None and not self._standby.gate.was_dropped(event):
            self.vendor.delivered(event)

    def in_callback(self) -> bool:
        """True on the thread that runs this client's callbacks."""
        dispatcher = self._dispatcher
        return dispatcher is not None and dispatcher.on_own_thread()

    def _stopped(self) -> None:
        for http in self.vendor.interrupt:
            http.reset()
        if self.state is not State.FAILED:
            self._set_state(State.STOPPED)
        try:
            if self.vendor.stopped is not None:
                self.vendor.stopped()
        finally:
            if self._standby is not None:
                self._standby.lease.release()  # after the last checkpoint write, which needs the token

    def _set_state(self, state: State) -> None:
        with self._ready:
            self.state = state
            self._ready.notify_all()

    def wait_connected(self, timeout: Optional[float] = None) -> bool:
        """True once ready; False on timeout or when not running; raises the fatal error if one ended it."""
        with self._ready:
            self._ready.wait_for(lambda: self.state in (State.CONNECTED, State.FAILED, State.STOPPED), timeout)
            if self.state is State.FAILED and self.fatal is not None:
                raise self.fatal
            return self.state is State.CONNECTED

    def stats(self) -> Stats:
        reader = self._reader
        counts = reader.counts
        dispatcher = self._dispatcher
        connects = counts["connects"]
        return Stats(
            connects=connects,
            reconnects=max(0, connects - 1),
            events=counts["events"],
            gaps=counts["gaps"],
            errors=counts["errors"],
            queue_depth=(len(dispatcher) if dispatcher is not None else 0) + len(reader.backlog),
            last_event_at=reader.last_event_at,
            connected_since=reader.connected_since if self.state is State.CONNECTED else None,
        )

    # ------------------------------------------------------------------
    # For vendor methods (any thread)
    # ------------------------------------------------------------------
    def exchange(self, fn: Callable[[Any], Iterable[Output]]) -> None:
        """Run `fn(protocol)` under the protocol lock, then act on its outputs outside it."""
        with self._lock:
            due = self._deadline()
            outputs = list(fn(self.protocol))
            self._wake_if_sooner(due)
        self._reader.apply(outputs, from_link=False)

    def request(self, fn: Callable[[Any], Tuple[str, Iterable[Output]]], timeout: float) -> Any:
        """Send what `fn(protocol)` produces and block until a `Reply` with the key it returns.

        `fn` runs under the protocol lock and returns `(key, outputs)`, so the protocol
        picks the request id. Raises ConnectionLost at once when the link is down or
        drops while waiting, CallTimeout after `timeout`, or the error in the reply.
        """
        reader = self._reader
        pending = Pending()
        deadline = time.monotonic() + timeout
        if self.state in (State.CONNECTING, State.RECONNECTING) and threading.current_thread() is not self._thread:
            self.wait_connected(timeout)  # a call made while connecting waits for readiness, not fails
            timeout = max(0.0, deadline - time.monotonic())
        with self._lock:
            if reader.link is None and not isinstance(self.protocol, PollingProtocol):
                raise ConnectionLost("not connected; the call was not sent")
            due = self._deadline()
            key, outputs = fn(self.protocol)
            outputs = list(outputs)
            reader.pending[key] = pending
            self._wake_if_sooner(due)
        try:
            reader.apply(outputs, from_link=False)
        except BaseException:
            reader.pending.pop(key, None)
            raise
        if not pending.wait(timeout):
            reader.pending.pop(key, None)
            raise CallTimeout(f"no answer within {timeout:g} s")
        if pending.error is not None:
            raise pending.error
        return pending.result

    def _deadline(self) -> Optional[float]:
        protocol = self.protocol
        return protocol.deadline() if isinstance(protocol, WebSocketProtocol) else None

    def _wake_if_sooner(self, before: Optional[float]) -> None:
        """Called with the lock held: wake a reader sleeping toward a later deadline than the protocol's now."""
        if threading.current_thread() is self._thread:
            return
        due = self._deadline()
        if due is not None and (before is None or due < before):
            wake = getattr(self._reader.link, "wake", None)
            if wake is not None:
                wake()

    def emit(self, name: str, **data: Any) -> None:
        """Queue a lifecycle event, behind every event already read."""
        self._reader.emit(name, **data)

    def inject(self, events: List[Event]) -> None:
        """Queue events another engine read (a client with several connections), behind those queued."""
        self._reader.deliver(events)

    # ------------------------------------------------------------------
    # The supervisor: one link after another, with the reconnect policy between them
    # ------------------------------------------------------------------
    def _run(self) -> None:
        reader, standby = self._reader, self._standby
        reader.ident = threading.get_ident()
        try:
            while not self._stopping.is_set():
                reader.was_connected = reader.delivered = False
                try:
                    if standby is not None:
                        standby.hold()
                    if isinstance(self.protocol, PollingProtocol):
                        reader.poll(self.protocol)
                    else:
                        assert isinstance(self.protocol, WebSocketProtocol)
                        reader.stream(self.protocol)
                    error: RtsyncError = ConnectionLost("the link ended")
                except Stopping:
                    break
                except RtsyncError as exc:
                    error = exc
                except Exception as exc:  # a bug of ours must not kill the thread silently
                    self.log.exception("unexpected error in the link loop")
                    error = ProtocolError(f"internal error: {type(exc).__name__}: {exc}")
                finally:
                    reader.link_down()
                try:
                    reader.flush_backlog(wait=True)  # what was read comes before the disconnect
                except Stopping:
                    break
                if self._stopping.is_set():
                    break
                if self._lease_gone.is_set():
                    assert standby is not None
                    if not standby.stand_down():
                        break
                    continue
                error = self.vendor.classify(error) if self.vendor.classify else error
                if reader.was_connected and (reader.delivered or time.monotonic() - reader.up_since >= _PROVEN):
                    self.backoff.reset()  # only a link that proved itself: an accept-and-close server must not storm
                reason = self.vendor.secrets.redact(str(error))
                if not error.retryable:
                    self._fail(error)
                    self.log.error("giving up: %s", reason)
                    self.emit(ev.ERROR, error=reason, exception=error, fatal=True)
                    self.emit(ev.DISCONNECTED, reason=reason, will_reconnect=False)
                    break
                if self.retry_budget is not None and not self.retry_budget.spend():
                    self._fail(ConnectionLost(
                        f"gave up after {self.retry_budget.attempts} reconnects within "
                        f"{self.retry_budget.window:g} s; last failure: {reason}"
                    ))
                    self.log.error("%s", self.fatal)
                    self.emit(ev.ERROR, error=str(self.fatal), exception=self.fatal, fatal=True)
                    self.emit(ev.DISCONNECTED, reason=reason, will_reconnect=False)
                    break
                self._set_state(State.RECONNECTING)
                delay = self.backoff.next_delay(error)
                # The first failure of a streak is worth a WARNING; its repeats are not.
                self.log.log(logging.INFO if reader.failing else logging.WARNING,
                             "disconnected (%s); reconnecting in %.1f s", reason, delay)
                reader.failing = True
                self.emit(ev.DISCONNECTED, reason=reason, will_reconnect=True)
                self.emit(ev.RECONNECTING, delay=delay)
                if self._stopping.wait(delay):
                    break
        finally:
            self.finished.set()

    def _fail(self, error: RtsyncError) -> None:
        self.fatal = error
        self._set_state(State.FAILED)
