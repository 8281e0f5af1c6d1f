"""The connection loop every client shares: connect, read, run timers, classify failures, back off, resume.

Threading contract:

- one link thread per client (`rtsync-<provider>-link`) owns the socket or
  the poll loop: it decodes frames through the vendor's sans-I/O protocol,
  runs the protocol's timers between reads, and puts events on the bounded
  queue. It never runs user code.
- one dispatcher thread (`rtsync-<provider>-dispatch`) runs callbacks, one at a
  time, in arrival order. A slow callback never stops pings or reads until
  the queue is full; then reading pauses (nothing is dropped) while timers
  and heartbeats keep running.
- `stop()` interrupts any wait (socket read, long poll, backoff) and joins
  both threads; it returns within about a second plus the time callbacks
  need to finish the events already queued, bounded by its `timeout`.

The runtime knows nothing about any one vendor: a client subclass provides a
`WebSocketProtocol` or `PollingProtocol` (see `rtsync.sansio`) as `protocol`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

from . import events as ev
from .errors import CallTimeout, ConnectionLost, ProtocolError, RtsyncError
from .events import Callback, Dispatcher, Event, Handlers
from .policy import Backoff, RetryBudget
from .redact import redact, redact_url
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
from .transport.http import HttpClient
from .transport.websocket import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    WebSocketLink,
    close_details,
)

__all__ = ["Client"]

F = TypeVar("F", bound=Callable[..., Any])

# How long a blocking read may last before the protocol's deadline is asked
# again: a timer set from a user thread (through _exchange) is late by at most
# this. stop() does not depend on it (it aborts the socket).
_IDLE_READ = 1.0


class _Stopping(Exception):
    pass


class _Pending:
    __slots__ = ("done", "result", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: Optional[RtsyncError] = None


class Client:
    """Base of every rtsync client: callbacks, lifecycle, and the connection loop.

    Subclasses set `provider` and `protocol`, list their secrets in
    `_secrets`, and may override `_handshake()` (e.g. to fetch a fresh URL).
    """

    provider = "rtsync"

    def __init__(
        self,
        *,
        queue_size: int = 10_000,
        backoff: Optional[Backoff] = None,
        retry_budget: Optional[RetryBudget] = None,
        connect_timeout: float = 10.0,
        max_message_size: int = 16 * 1024 * 1024,
        verify: Union[bool, str] = True,
    ) -> None:
        self.protocol: Union[WebSocketProtocol, PollingProtocol, None] = None
        self.backoff = backoff or Backoff()
        self.retry_budget = retry_budget
        self.connect_timeout = connect_timeout
        self.max_message_size = max_message_size
        self.verify = verify
        self._secrets: List[str] = []
        self._handlers = Handlers()
        self._queue_size = queue_size
        self._dispatcher: Optional[Dispatcher] = None
        self._thread: Optional[threading.Thread] = None
        self._stopping = threading.Event()
        self._finished = threading.Event()
        self._fatal: Optional[RtsyncError] = None
        self._lock = threading.RLock()  # guards protocol state and the current link
        self._link: Optional[WebSocketLink] = None
        self._connecting: Optional[WebSocketLink] = None
        self._http = HttpClient(verify=verify)
        self._pending: Dict[str, _Pending] = {}
        self._was_connected = False
        self._connections = 0
        self._deferred: List[Output] = []
        self.log = logging.getLogger(f"rtsync.{self.provider}")

    # ------------------------------------------------------------------
    # Callbacks
    # ------------------------------------------------------------------
    def on(self, pattern: str, fn: Optional[Callback] = None) -> Any:
        """Call `fn(event)` for every event whose name or channel glob-matches `pattern`.

        Works as a call (`client.on("x", fn)`) and as a decorator (`@client.on("x")`).
        """
        if fn is None:

            def decorator(f: F) -> F:
                self._handlers.add(pattern, f)
                return f

            return decorator
        self._handlers.add(pattern, fn)
        return fn

    def once(self, pattern: str, fn: Optional[Callback] = None) -> Any:
        """Like `on`, but the callback runs for the first matching event only."""
        if fn is None:

            def decorator(f: F) -> F:
                self._handlers.add(pattern, f, once=True)
                return f

            return decorator
        self._handlers.add(pattern, fn, once=True)
        return fn

    def off(self, pattern: str, fn: Optional[Callback] = None) -> int:
        """Remove `fn` (or every callback) registered under exactly `pattern`; return how many."""
        return self._handlers.remove(pattern, fn)

    # ------------------------------------------------------------------
    # Lifecycle
    # ------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def error(self) -> Optional[RtsyncError]:
        """The error that ended the client, if one did (e.g. AuthenticationError)."""
        return self._fatal

    def start(self) -> "Client":
        """Start the link and dispatcher threads and return at once. Idempotent while running."""
        if self._thread is not None:
            return self
        if self.protocol is None:
            raise RtsyncError(f"{type(self).__name__} has no protocol")
        self._stopping.clear()
        self._finished.clear()
        self._fatal = None
        self._connections = 0
        self._http.reset()
        self._dispatcher = Dispatcher(
            self._handlers,
            maxsize=self._queue_size,
            name=f"rtsync-{self.provider}-dispatch",
            after=self._after_dispatch,
        )
        self._dispatcher.start()
        self._thread = threading.Thread(
            target=self._run, name=f"rtsync-{self.provider}-link", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop reading, deliver what is already queued, and join every thread. Idempotent.

        Waits at most `timeout` seconds in all; a callback still running then is left to
        finish on its (daemon) thread and a warning is logged. Called from a callback,
        it stops the link and lets the dispatcher end once that callback returns.
        """
        thread = self._thread
        if thread is None:
            return
        deadline = time.monotonic() + timeout
        dispatcher = self._dispatcher
        self._stopping.set()
        self._http.cancel()
        # Read without the lock: a rotation holds it while its new link connects.
        link, connecting = self._link, self._connecting
        if link is not None:
            link.close()
        if connecting is not None:
            connecting.abort()
        if thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
        if dispatcher is not None and dispatcher.on_own_thread():
            dispatcher.stop()  # queues the end; a later stop() from another thread joins it
            self._on_stopped()
            return
        done = dispatcher.stop(max(0.0, deadline - time.monotonic())) if dispatcher is not None else True
        if thread.is_alive() or not done:
            self.log.warning("stop(): a thread did not finish within %.1f s", timeout)
        else:
            self._thread = None
            self._dispatcher = None
        self._on_stopped()

    def run_forever(self) -> None:
        """Start and block until stopped. Ctrl-C stops cleanly and returns.

        Raises the fatal error (e.g. AuthenticationError) if one ended the client.
        """
        self.start()
        try:
            while not self._finished.wait(0.5):
                pass
        except KeyboardInterrupt:
            self.log.info("interrupted; stopping")
        finally:
            self.stop()
        if self._fatal is not None:
            raise self._fatal

    def __enter__(self) -> "Client":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {state}>"

    # ------------------------------------------------------------------
    # Hooks for vendor clients
    # ------------------------------------------------------------------
    def _handshake(self) -> Handshake:
        assert isinstance(self.protocol, WebSocketProtocol)
        return self.protocol.handshake()

    def _classify(self, error: RtsyncError) -> RtsyncError:
        """Reinterpret a link failure with vendor knowledge before the reconnect policy sees it."""
        return error

    def _after_dispatch(self, event: Event) -> None:
        """Runs on the dispatcher thread after each event's callbacks (override for checkpoints)."""

    def _on_stopped(self) -> None:
        """Runs in `stop()` after the threads are joined."""

    def _redact(self, text: str) -> str:
        return redact_url(redact(text, self._secrets), self._secrets)

    def _emit(self, name: str, **data: Any) -> None:
        """Queue a lifecycle event."""
        if self._dispatcher is not None:
            self._dispatcher.put(Event.make(name, provider=self.provider, data=data))

    def _exchange(self, fn: Callable[[Any], Iterable[Output]]) -> None:
        """Run `fn(protocol)` under the protocol lock from any thread and act on its outputs."""
        with self._lock:
            outputs = list(fn(self.protocol))
            self._apply(outputs, from_link=False)

    def _request(self, fn: Callable[[Any], Tuple[str, Iterable[Output]]], timeout: float) -> Any:
        """Send what `fn(protocol)` produces and block until a `Reply` with the key it returns.

        `fn` runs under the protocol lock and returns `(key, outputs)`, so the protocol
        picks the request id. Raises ConnectionLost at once when the link is down or
        drops while waiting, CallTimeout after `timeout`, or the error in the reply.
        """
        pending = _Pending()
        with self._lock:
            if self._link is None and not isinstance(self.protocol, PollingProtocol):
                raise ConnectionLost("not connected; the call was not sent")
            key, outputs = fn(self.protocol)
            self._pending[key] = pending
            try:
                self._apply(list(outputs), from_link=False)
            except BaseException:
                self._pending.pop(key, None)
                raise
        if not pending.done.wait(timeout):
            with self._lock:
                self._pending.pop(key, None)
            raise CallTimeout(f"no answer within {timeout:g} s")
        if pending.error is not None:
            raise pending.error
        return pending.result

    # ------------------------------------------------------------------
    # The loop
    # ------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._was_connected = False
                try:
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
                if self._stopping.is_set():
                    break
                error = self._classify(error)
                if self._was_connected:
                    self.backoff.reset()
                reason = self._redact(str(error))
                if not error.retryable:
                    self._fatal = error
                    self.log.error("giving up: %s", reason)
                    self._emit(ev.ERROR, error=reason, exception=error, fatal=True)
                    self._emit(ev.DISCONNECTED, reason=reason, will_reconnect=False)
                    break
                if self.retry_budget is not None and not self.retry_budget.spend():
                    self._fatal = ConnectionLost(
                        f"gave up after {self.retry_budget.attempts} reconnects within "
                        f"{self.retry_budget.window:g} s; last failure: {reason}"
                    )
                    self.log.error("%s", self._fatal)
                    self._emit(ev.ERROR, error=str(self._fatal), exception=self._fatal, fatal=True)
                    self._emit(ev.DISCONNECTED, reason=reason, will_reconnect=False)
                    break
                delay = self.backoff.next_delay(error)
                self.log.info("disconnected (%s); reconnecting in %.1f s", reason, delay)
                self._emit(ev.DISCONNECTED, reason=reason, will_reconnect=True)
                self._emit(ev.RECONNECTING, delay=delay)
                if self._stopping.wait(delay):
                    break
        finally:
            self._finished.set()

    def _link_down(self) -> None:
        with self._lock:
            link, self._link = self._link, None
            if link is not None:
                link.abort()
            pending, self._pending = self._pending, {}
            for p in pending.values():
                p.error = ConnectionLost("the connection dropped before the answer came")
                p.done.set()
            try:
                self._apply(list(self.protocol.lost()), from_link=False)  # type: ignore[union-attr]
            except RtsyncError:
                pass

    def _check_stop(self) -> None:
        if self._stopping.is_set():
            raise _Stopping()

    def _open(self) -> WebSocketLink:
        handshake = self._handshake()
        shown = self._redact(handshake.url)
        self.log.debug("connecting to %s", shown)
        link = WebSocketLink(
            handshake,
            timeout=self.connect_timeout,
            max_message_size=self.max_message_size,
            verify=self.verify,
            display_url=shown,
        )
        with self._lock:
            self._connecting = link
        try:
            if self._stopping.is_set():
                raise _Stopping()
            return link.connect()
        finally:
            with self._lock:
                self._connecting = None

    def _stream(self, protocol: WebSocketProtocol) -> None:
        link = self._open()
        with self._lock:
            self._link = link
        refused = protocol.accepted(link.subprotocol)
        if refused is not None:
            raise refused
        if self._stopping.is_set():
            raise _Stopping()
        self.log.debug("connected")
        clock = time.monotonic
        with self._lock:
            self._apply(protocol.opened(clock()))
        while True:
            self._check_stop()
            link = self._link  # a Rotate may have replaced it
            assert link is not None
            due = protocol.deadline()
            timeout = _IDLE_READ if due is None else max(0.0, min(_IDLE_READ, due - clock()))
            try:
                frames = link.recv(timeout)
            except ConnectionLost:
                self._check_stop()
                raise
            now = clock()
            with self._lock:
                outputs: List[Output] = []
                for opcode, payload in frames:
                    if opcode == TEXT:
                        outputs.extend(protocol.received(payload, now))  # type: ignore[arg-type]
                    elif opcode in (PING, PONG):
                        protocol.heard(now)
                    elif opcode == CLOSE:
                        self._apply(outputs)
                        code, reason = close_details(payload)  # type: ignore[arg-type]
                        raise protocol.closed(code, reason)
                    elif opcode == BINARY:
                        protocol.heard(now)
                        outputs.extend(self._binary(protocol, payload, now))  # type: ignore[arg-type]
                    else:
                        protocol.heard(now)
                        outputs.append(Report(link.frame_error(opcode, payload, link.max_message_size)))
                due = protocol.deadline()
                if due is not None and due <= now:
                    outputs.extend(protocol.tick(now))
                self._apply(outputs)

    @staticmethod
    def _binary(protocol: WebSocketProtocol, payload: bytes, now: float) -> List[Output]:
        if protocol.binary_as_text:
            try:
                return protocol.received(payload.decode("utf-8"), now)
            except UnicodeDecodeError:
                return [Report(ProtocolError("ignored a binary frame that is not UTF-8 text"))]
        return [Report(ProtocolError("ignored a binary frame (this vendor sends text)"))]

    def _poll(self, protocol: PollingProtocol) -> None:
        clock = time.monotonic
        while True:
            self._check_stop()
            with self._lock:
                request = protocol.request()
            self.log.debug("GET %s", self._redact(request.url))
            try:
                response = self._http.request(
                    "GET", request.url, headers=request.headers, timeout=request.timeout,
                    what="poll", check=False,
                )
            except ConnectionLost:
                self._check_stop()
                raise
            with self._lock:
                self._apply(protocol.response(response, clock()))
                delay = protocol.delay()
            if delay and self._stopping.wait(delay):
                raise _Stopping()

    # ------------------------------------------------------------------
    # Acting on outputs (called with self._lock held)
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
                self._deliver(batch, from_link)
                batch = []
            if isinstance(out, Send):
                self._send(out.text)
            elif isinstance(out, Ping):
                if self._link is not None:
                    self._link.ping(b"")
            elif isinstance(out, Connected):
                self._was_connected = True
                self._connections += 1
                again = self._connections > 1
                self.log.info("connected%s", " (reconnected)" if again else "")
                self._emit(ev.CONNECTED, reconnect=again, resumed=out.resumed, **dict(out.detail))
            elif isinstance(out, Reply):
                pending = self._pending.pop(out.key, None)
                if pending is not None:
                    pending.result, pending.error = out.result, out.error
                    pending.done.set()
            elif isinstance(out, Report):
                text = self._redact(str(out.error))
                self.log.warning("%s", text)
                self._emit(ev.ERROR, error=text, exception=out.error, fatal=False)
            elif isinstance(out, Fail):
                raise out.error
            elif isinstance(out, Rotate):
                self._rotate(out.reason)
        if batch:
            self._deliver(batch, from_link)

    def _deliver(self, events: List[Event], from_link: bool) -> None:
        dispatcher = self._dispatcher
        if dispatcher is not None and not dispatcher.put_many(events, self._while_full if from_link else None):
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
        if isinstance(protocol, WebSocketProtocol):
            now = time.monotonic()
            protocol.heard(now)  # we stopped reading on purpose; the link is not stale
            due = protocol.deadline()
            if due is not None and due <= now:
                for out in protocol.tick(now):
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
                    now = time.monotonic()
                    texts = [p for op, p in frames if op == TEXT]
                    for payload in texts:
                        self._apply(protocol.received(payload, now))  # type: ignore[arg-type]
                    if not frames or any(op == CLOSE for op, _ in frames):
                        break
            except ConnectionLost:
                pass
            old.abort()
        self._link = new
        self._apply(protocol.opened(time.monotonic()))
