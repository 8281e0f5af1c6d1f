"""The engine that runs one client: the link thread, the reconnect loop, and acting on a protocol's outputs.

A vendor configures it with a `Vendor` (its sans-I/O protocol, how to prepare
a connection, its secrets, how to read its failures); nothing here is meant
to be overridden. The protocol lock guards protocol state only: outputs are
computed under it and acted on outside it, so a full event queue or a slow
send never blocks a user-facing call.

Threading contract:

- one link thread per client (`rtsync-<vendor>-link`) owns the socket or the
  poll loop: it decodes frames through the protocol, runs the protocol's
  timers between reads, and queues events. It never runs user code.
- one dispatcher thread (`rtsync-<vendor>-dispatch`, see `dispatch.py`) runs
  callbacks in arrival order. When callbacks fall behind, the link thread
  keeps reading (pings answered, timers run) and holds up to `READ_AHEAD`
  more events; only past that does reading pause, with timers still running.
- `stop()` interrupts any wait (socket read, connect, long poll, backoff)
  and joins both threads within its `timeout`.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import events as ev
from .dispatch import Dispatcher, Handlers
from .errors import CallTimeout, ConnectionLost, ProtocolError, RtsyncError
from .events import Event
from .lease import Lease, LeaseGate, LeaseLost
from .policy import Backoff, RetryBudget
from .redact import Secrets
from .sansio import (
    Connected,
    Fail,
    Handshake,
    Output,
    Ping,
    PollingProtocol,
    Reply,
    Report,
    Rotate,
    Send,
    WebSocketProtocol,
)
from .state import State, Stats
from .wire import Closed, Heard, Incoming, Link, Skipped, Verify, WebSocketLink
from .wire.http import HttpClient
from .wire.network import Network

__all__ = ["Engine", "Vendor"]

# How long a blocking read may last before the protocol's deadline is asked
# again, on a link that cannot be woken: a timer set from a user thread
# (through exchange) is late by at most this. A link with `wake()` (ours) is
# woken when a user thread sets a sooner deadline, so an idle one sleeps until
# its next deadline (bounded by _IDLE_WAKEABLE). stop() depends on neither (it
# aborts the socket).
_IDLE_READ = 1.0
_IDLE_WAKEABLE = 60.0

# A connection that stayed up this long, or delivered an event, proved itself: backoff starts over.
_PROVEN = 10.0

# Events read ahead while callbacks lag, beyond `queue_size`: in-band heartbeats (DDP, Doshii) keep
# being answered meanwhile. Past this, reading pauses and the server's flow control holds the rest.
READ_AHEAD = 100_000

# How often the reader hands its backlog to callbacks that fell behind, when nothing else arrives.
_BACKLOG_POLL = 0.02

# How much of an undecodable frame an rtsync.error shows.
_SHOWN = 120


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


class _Stopping(Exception):
    pass


class _Pending:
    __slots__ = ("done", "result", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: Optional[RtsyncError] = None


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
        tap: Optional[Callable[[Event], None]] = None,
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
        self._new_link = link
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
        self._link: Optional[Link] = None
        self._connecting: Optional[Link] = None
        self._pending: Dict[str, _Pending] = {}
        self._was_connected = False
        self._failing = False  # the last attempt failed and nothing has connected since
        self._delivered = False  # this link delivered an event (it proved itself)
        self._up_since = 0.0
        self._deferred: List[Output] = []
        self._backlog: Deque[Event] = collections.deque()  # read while callbacks lag (link thread only)
        self._ready = threading.Condition()
        self.state = State.STOPPED
        self._counts = {"connects": 0, "events": 0, "gaps": 0, "errors": 0}
        self._last_event_at: Optional[datetime] = None
        self._connected_since: Optional[datetime] = None
        self._lease = lease  # only its holder connects; see _hold_lease
        self._gate = LeaseGate(handlers, lease) if lease is not None else None
        self._lease_gone = threading.Event()
        self._lease_reason = ""
        self._resume_due = False

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
        self._stopping.clear()
        self._lease_gone.clear()  # a loss from a previous run is not this run's to report
        self.finished.clear()
        self.fatal = None
        self._counts = dict.fromkeys(self._counts, 0)
        self._backlog.clear()
        self.http.reset()
        self._set_state(State.CONNECTING)
        self._dispatcher = Dispatcher(
            self._handlers if self._gate is None else self._gate,
            maxsize=self._queue_size,
            name=f"rtsync-{self.vendor.name}-dispatch",
            after=self._after_callbacks,
        )
        self._dispatcher.start()
        self._thread = threading.Thread(target=self._run, name=f"rtsync-{self.vendor.name}-link", daemon=True)
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
        link, connecting = self._link, self._connecting
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
            self._thread = None
            self._dispatcher = None
        self._stopped()

    def _after_callbacks(self, event: Event) -> None:
        if self._gate is not None and self._gate.was_dropped(event):
            return  # never checkpoint what a replica without its lease did not deliver
        if self._tap is not None:
            self._tap(event)
        if self.vendor.delivered is not None:
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
            if self._lease is not None:
                self._lease.release()  # after the last checkpoint write, which needs the token

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
        counts = self._counts
        dispatcher = self._dispatcher
        connects = counts["connects"]
        return Stats(
            connects=connects,
            reconnects=max(0, connects - 1),
            events=counts["events"],
            gaps=counts["gaps"],
            errors=counts["errors"],
            queue_depth=(len(dispatcher) if dispatcher is not None else 0) + len(self._backlog),
            last_event_at=self._last_event_at,
            connected_since=self._connected_since if self.state is State.CONNECTED else None,
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
        self._apply(outputs, from_link=False)

    def request(self, fn: Callable[[Any], Tuple[str, Iterable[Output]]], timeout: float) -> Any:
        """Send what `fn(protocol)` produces and block until a `Reply` with the key it returns.

        `fn` runs under the protocol lock and returns `(key, outputs)`, so the protocol
        picks the request id. Raises ConnectionLost at once when the link is down or
        drops while waiting, CallTimeout after `timeout`, or the error in the reply.
        """
        pending = _Pending()
        deadline = time.monotonic() + timeout
        if self.state in (State.CONNECTING, State.RECONNECTING) and threading.current_thread() is not self._thread:
            self.wait_connected(timeout)  # a call made while connecting waits for readiness, not fails
            timeout = max(0.0, deadline - time.monotonic())
        with self._lock:
            if self._link is None and not isinstance(self.protocol, PollingProtocol):
                raise ConnectionLost("not connected; the call was not sent")
            due = self._deadline()
            key, outputs = fn(self.protocol)
            outputs = list(outputs)
            self._pending[key] = pending
            self._wake_if_sooner(due)
        try:
            self._apply(outputs, from_link=False)
        except BaseException:
            self._pending.pop(key, None)
            raise
        if not pending.done.wait(timeout):
            self._pending.pop(key, None)
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
            wake = getattr(self._link, "wake", None)
            if wake is not None:
                wake()

    def emit(self, name: str, **data: Any) -> None:
        """Queue a lifecycle event, behind every event already read."""
        if name == ev.ERROR:
            self._counts["errors"] += 1
        self._deliver([Event.make(name, provider=self.vendor.name, data=data)])

    def inject(self, events: List[Event]) -> None:
        """Queue events another engine read (a client with several connections), behind those queued."""
        self._deliver(events)

    def _stream_protocol(self) -> WebSocketProtocol:
        assert isinstance(self.protocol, WebSocketProtocol)
        return self.protocol

    # ------------------------------------------------------------------
    # The loop
    # ------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._was_connected = self._delivered = False
                try:
                    if self._lease is not None:
                        self._hold_lease()
                    if isinstance(self.protocol, PollingProtocol):
                        self._poll(self.protocol)
                    else:
                        assert isinstance(self.protocol, WebSocketProtocol)
                        self._stream(self.protocol)
                    error: RtsyncError = ConnectionLost("the link ended")
                except _Stopping:
                    break
                except RtsyncError as exc:
                    error = exc
                except Exception as exc:  # a bug of ours must not kill the thread silently
                    self.log.exception("unexpected error in the link loop")
                    error = ProtocolError(f"internal error: {type(exc).__name__}: {exc}")
                finally:
                    self._link_down()
                try:
                    self._flush_backlog(wait=True)  # what was read comes before the disconnect
                except _Stopping:
                    break
                if self._stopping.is_set():
                    break
                if self._lease_gone.is_set():
                    if not self._stand_down():
                        break
                    continue
                error = self.vendor.classify(error) if self.vendor.classify else error
                if self._was_connected and (self._delivered or time.monotonic() - self._up_since >= _PROVEN):
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
                self.log.log(logging.INFO if self._failing else logging.WARNING,
                             "disconnected (%s); reconnecting in %.1f s", reason, delay)
                self._failing = True
                self.emit(ev.DISCONNECTED, reason=reason, will_reconnect=True)
                self.emit(ev.RECONNECTING, delay=delay)
                if self._stopping.wait(delay):
                    break
        finally:
            self.finished.set()

    def _fail(self, error: RtsyncError) -> None:
        self.fatal = error
        self._set_state(State.FAILED)

    def _link_down(self) -> None:
        with self._lock:
            link, self._link = self._link, None
            pending, self._pending = self._pending, {}
            outputs = list(self.protocol.lost())
        if link is not None:
            link.abort()
        for p in pending.values():
            p.error = ConnectionLost("the connection dropped before the answer came")
            p.done.set()
        try:
            self._apply(outputs, from_link=False)
        except (RtsyncError, _Stopping):
            pass

    def _check_stop(self) -> None:
        if self._stopping.is_set():
            raise _Stopping()
        if self._lease_gone.is_set():
            raise LeaseLost(self._lease_reason)

    # ------------------------------------------------------------------
    # The lease (hot standby)
    # ------------------------------------------------------------------
    def _hold_lease(self) -> None:
        """Stand by until this replica holds the lease, then let the vendor reload its resume point."""
        lease = self._lease
        assert lease is not None
        if not lease.valid():
            if self._lease_gone.is_set() and not self._stand_down():
                raise _Stopping()
            self.log.info("standing by: waiting for the lease")
            if not lease.acquire(self._stopping, self._lease_lost):
                raise _Stopping()
            self._lease_gone.clear()
            for http in (self.http, *self.vendor.interrupt):
                http.reset()
            self.log.info("took the lease (fencing token %s)", lease.token)
            self._resume_due = True
        if self._resume_due and self.vendor.resume is not None:
            self.vendor.resume()  # may raise (Redis gone again): retried with the usual backoff
        self._resume_due = False

    def _lease_lost(self, reason: str) -> None:
        """From the lease's thread: the holding can no longer be proven, so cut the link now."""
        self._lease_reason = reason
        self._lease_gone.set()
        for http in (self.http, *self.vendor.interrupt):
            http.cancel()
        link, connecting = self._link, self._connecting
        if link is not None:
            link.abort()
        if connecting is not None:
            connecting.abort()

    def _stand_down(self) -> bool:
        """After a lost lease: report it once everything queued before was dropped; False if stopped."""
        reason = self._lease_reason
        error = LeaseLost(f"lease lost ({reason}): stopped delivering; events not yet delivered are "
                          "left to the next holder, which resumes from the checkpoint; standing by")
        self.log.warning("%s", error)
        self._set_state(State.RECONNECTING)
        self._counts["errors"] += 1
        marker = Event.make(ev.ERROR, provider=self.vendor.name,
                            data={"error": str(error), "exception": error, "fatal": False})
        assert self._gate is not None
        self._gate.mark(marker)
        self._deliver([marker])
        self.emit(ev.DISCONNECTED, reason=str(error), will_reconnect=True)
        try:
            self._flush_backlog(wait=True)
        except _Stopping:
            return False
        # Until the marker went through, a re-taken lease would let old queued events run.
        if not self._gate.wait_marked(self._stopping):
            return False
        self._lease_gone.clear()
        return True

    def _open(self) -> Link:
        handshake = self.vendor.prepare() if self.vendor.prepare else self._stream_protocol().handshake()
        shown = self.vendor.secrets.redact(handshake.url)
        self.log.debug("connecting to %s", shown)
        link: Link
        if self._new_link is not None:
            link = self._new_link(handshake)
        else:
            link = WebSocketLink(handshake, timeout=self.connect_timeout, max_message_size=self.max_message_size,
                                 network=self.network, display_url=shown)
        self._connecting = link
        try:
            self._check_stop()  # stop() may have run before _connecting was set
            return link.connect()
        finally:
            self._connecting = None

    def _stream(self, protocol: WebSocketProtocol) -> None:
        link = self._open()
        with self._lock:
            self._link = link
            refused = protocol.accepted(link.subprotocol)
        if refused is not None:
            raise refused
        self._check_stop()
        self.log.debug("connected")
        clock = time.monotonic
        with self._lock:
            outputs = protocol.opened(clock())
        self._apply(outputs)
        while True:
            self._check_stop()
            link = self._link  # a Rotate may have replaced it
            assert link is not None
            with self._lock:
                due = protocol.deadline()
            idle = _IDLE_WAKEABLE if hasattr(link, "wake") else _IDLE_READ
            timeout = idle if due is None else max(0.0, min(idle, due - clock()))
            if self._backlog:
                self._flush_backlog(wait=False)
                timeout = min(timeout, _BACKLOG_POLL)
            try:
                frames = link.recv(timeout)
            except ConnectionLost:
                self._check_stop()
                raise
            now = clock()
            with self._lock:
                outputs, closed = self._decode(protocol, frames, now)
                due = protocol.deadline()
                if closed is None and due is not None and due <= now:
                    outputs.extend(protocol.tick(now))
            self._apply(outputs)  # outside the lock: a full queue must not block user-facing calls
            if closed is not None:
                link.close()
                with self._lock:
                    error = protocol.closed(closed.code, closed.reason)
                raise error

    def _decode(self, protocol: WebSocketProtocol, frames: List[Incoming], now: float,
                ) -> Tuple[List[Output], Optional[Closed]]:
        """The outputs of one read, each frame decoded on its own (called with the lock held).

        A frame the protocol cannot decode costs one rtsync.error and nothing else; an error
        the protocol raises on purpose ends the link after the outputs before it are applied.
        """
        outputs: List[Output] = []
        for frame in frames:
            if isinstance(frame, Heard):
                protocol.heard(now)
                continue
            if isinstance(frame, Closed):
                return outputs, frame
            if isinstance(frame, Skipped):
                protocol.heard(now)
                outputs.append(Report(frame.error))
                continue
            try:
                if isinstance(frame, str):
                    outputs.extend(protocol.received(frame, now))
                else:
                    protocol.heard(now)
                    outputs.extend(self._binary(protocol, frame, now))
            except RtsyncError as exc:
                outputs.append(Fail(exc))
                break
            except Exception as exc:  # a vendor decoder's bug must not cost the rest of the read
                shown = frame[:_SHOWN]
                self.log.debug("undecodable frame", exc_info=True)
                outputs.append(Report(ProtocolError(
                    f"skipped a frame that could not be decoded ({type(exc).__name__}): {shown!r}"
                )))
        return outputs, None

    @staticmethod
    def _binary(protocol: WebSocketProtocol, payload: bytes, now: float) -> List[Output]:
        if protocol.binary_as_text:
            try:
                text = payload.decode("utf-8")
            except UnicodeDecodeError:
                return [Report(ProtocolError("ignored a binary frame that is not UTF-8 text"))]
            return protocol.received(text, now)
        return [Report(ProtocolError("ignored a binary frame (this vendor sends text)"))]

    def _poll(self, protocol: PollingProtocol) -> None:
        clock = time.monotonic
        while True:
            self._check_stop()
            with self._lock:
                request = protocol.request()
            self.log.debug("GET %s", self.vendor.secrets.redact(request.url))
            try:
                response = self.http.request(
                    "GET", request.url, headers=request.headers, timeout=request.timeout,
                    what="poll", check=False,
                )
            except ConnectionLost:
                self._check_stop()
                raise
            with self._lock:
                try:
                    outputs = list(protocol.response(response, clock()))
                except RtsyncError as exc:
                    outputs = [Fail(exc)]
                except Exception as exc:  # a vendor decoder's bug must not end the client
                    self.log.debug("undecodable response", exc_info=True)
                    outputs = [Report(ProtocolError(
                        f"skipped a response that could not be decoded ({type(exc).__name__}): "
                        f"{response.body[:_SHOWN]!r}"))]
                delay = protocol.delay()
            self._apply(outputs)
            if delay and self._stopping.wait(delay):
                raise _Stopping()

    # ------------------------------------------------------------------
    # Acting on outputs (never with the protocol lock held)
    # ------------------------------------------------------------------
    def _apply(self, outputs: Sequence[Output], from_link: bool = True) -> None:
        if self._deferred and from_link:
            outputs = [*self._deferred, *outputs]
            self._deferred = []
        batch: List[Event] = []
        for out in outputs:
            if isinstance(out, Event):
                batch.append(out)
                continue
            if batch:  # events before this output keep their place in line
                self._deliver(batch)
                batch = []
            if isinstance(out, Send):
                self._send(out.text)
            elif isinstance(out, Ping):
                if self._link is not None:
                    self._link.ping(b"")
            elif isinstance(out, Connected):
                self._was_connected = True
                self._failing = False
                self._up_since = time.monotonic()
                self._counts["connects"] += 1
                again = self._counts["connects"] > 1
                self.log.info("connected%s", " (reconnected)" if again else "")
                self.emit(ev.CONNECTED, reconnect=again, resumed=out.resumed, **dict(out.detail))
                self._connected_since = datetime.now(timezone.utc)
                self._set_state(State.CONNECTED)
            elif isinstance(out, Reply):
                pending = self._pending.pop(out.key, None)
                if pending is not None:
                    pending.result, pending.error = out.result, out.error
                    pending.done.set()
            elif isinstance(out, Report):
                text = self.vendor.secrets.redact(str(out.error))
                self.log.warning("%s", text)
                self.emit(ev.ERROR, error=text, exception=out.error, fatal=False)
            elif isinstance(out, Fail):
                raise out.error
            elif isinstance(out, Rotate):
                self._rotate(out.reason)
        if batch:
            self._deliver(batch)

    def _deliver(self, events: List[Event]) -> None:
        """Queue events in order. On the link thread a full queue does not stop reading at once:
        up to `READ_AHEAD` more events wait in the backlog while heartbeats keep flowing."""
        dispatcher = self._dispatcher
        if dispatcher is None:
            return
        ev.stamp(events, datetime.now(timezone.utc))  # protocols read no clock: received_at is set here
        for event in events:
            if not event.name.startswith("rtsync."):
                self._counts["events"] += 1
                self._last_event_at = event.received_at
                self._delivered = self._was_connected  # a link that delivers has proved itself
            elif event.name == ev.GAP:
                self._counts["gaps"] += 1
        if threading.current_thread() is not self._thread:
            dispatcher.put_many(events)
            return
        backlog = self._backlog
        backlog.extend(events)
        dispatcher.offer(backlog)
        if len(backlog) > READ_AHEAD:
            self._flush_backlog(wait=True)

    def _flush_backlog(self, wait: bool) -> None:
        """Hand the backlog to the dispatcher; with `wait`, all of it (reading pauses meanwhile)."""
        dispatcher, backlog = self._dispatcher, self._backlog
        if dispatcher is None or not backlog:
            return
        dispatcher.offer(backlog)
        if wait and backlog:
            events = list(backlog)
            backlog.clear()
            if not dispatcher.put_many(events, self._while_full):
                raise _Stopping()

    def _send(self, text: str) -> None:
        link = self._link
        if link is None:
            raise ConnectionLost("not connected; nothing was sent")
        link.send_text(text)

    def _while_full(self) -> bool:
        """Called by the dispatcher while its queue is full: keep timers alive, then wait a bit."""
        if self._stopping.wait(0.05):
            return False
        protocol = self.protocol
        if not isinstance(protocol, WebSocketProtocol):
            return True
        now = time.monotonic()
        with self._lock:
            protocol.heard(now)  # we stopped reading on purpose; the link is not stale
            due = protocol.deadline()
            outputs = protocol.tick(now) if due is not None and due <= now else []
        for out in outputs:
            if isinstance(out, (Send, Ping)):
                self._apply([out], from_link=False)
            else:
                self._deferred.append(out)
        return True

    def _rotate(self, reason: str) -> None:
        """Make-before-break: open a new link, then drain and close the old one."""
        protocol = self.protocol
        assert isinstance(protocol, WebSocketProtocol)
        old = self._link
        try:
            new = self._open()
        except RtsyncError as exc:
            if self._stopping.is_set():
                raise _Stopping() from None
            if not exc.retryable:
                raise
            self._apply([Report(exc)], from_link=False)
            return
        with self._lock:
            refused = protocol.accepted(new.subprotocol)
        if refused is not None:
            new.close()
            raise refused
        self.log.info("replaced the connection (%s)", reason)
        if old is not None:
            # Events the server sent on the old link before our close still count.
            old.begin_close()
            deadline = time.monotonic() + 1.0
            try:
                while time.monotonic() < deadline:
                    frames = old.recv(max(0.0, deadline - time.monotonic()))
                    with self._lock:
                        outputs, closed = self._decode(protocol, frames, time.monotonic())
                    self._apply([o for o in outputs if not isinstance(o, Fail)])
                    if not frames or closed is not None:
                        break
            except ConnectionLost:
                pass
            old.abort()
        with self._lock:
            self._link = new
            outputs = protocol.opened(time.monotonic())
        self._apply(outputs)
