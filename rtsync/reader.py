"""The link loop of one client: opens links, reads and decodes frames or polls, and acts on the protocol's outputs.

The `Engine` owns one `Reader` and runs it on its link thread; the reconnect
policy and the lifecycle stay in the engine. The state the per-frame and
per-event paths touch (the link, the backlog, the counters) lives here, on
`self`, so splitting the engine added no indirection to those loops.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple, Union, cast

from . import events as ev
from .dispatch import Dispatcher
from .errors import ConnectionLost, ProtocolError, RtsyncError
from .events import Event
from .lease import LeaseLost
from .pending import Pending
from .sansio import (Connected, Fail, Handshake, Output, Ping, PollingProtocol, Reply, Report, Rotate, Send,
                     WebSocketProtocol)
from .state import State
from .wire import Closed, Heard, Incoming, Link, Skipped, WebSocketLink
from .wire.http import HttpClient
from .wire.network import Network

if TYPE_CHECKING:  # the engine imports this module
    from .engine import Vendor

__all__ = ["READ_AHEAD", "Reader", "Stopping"]

# How long a blocking read may last before the protocol's deadline is asked
# again, on a link that cannot be woken: a timer set from a user thread
# (through exchange) is late by at most this. A link with `wake()` (ours) is
# woken when a user thread sets a sooner deadline, so an idle one sleeps until
# its next deadline (bounded by _IDLE_WAKEABLE). stop() depends on neither (it
# aborts the socket).
_IDLE_READ = 1.0
_IDLE_WAKEABLE = 60.0

# Events read ahead while callbacks lag, beyond `queue_size`: in-band heartbeats (DDP, Doshii) keep
# being answered meanwhile. Past this, reading pauses and the server's flow control holds the rest.
READ_AHEAD = 100_000

# How often the reader hands its backlog to callbacks that fell behind, when nothing else arrives.
_BACKLOG_POLL = 0.02

# How much of an undecodable frame an rtsync.error shows.
_SHOWN = 120


class Stopping(Exception):
    """Raised inside the link thread when `stop()` was called: unwinds it without a reconnect."""


class Reader:
    """Reads one link at a time for the engine and queues what it yields, in order."""

    def __init__(
        self,
        vendor: "Vendor",
        *,
        lock: threading.RLock,
        stopping: threading.Event,
        lease_gone: threading.Event,
        http: HttpClient,
        network: Network,
        connect_timeout: float,
        max_message_size: int,
        new_link: Optional[Callable[[Handshake], Link]],
        set_state: Callable[[State], None],
        log: logging.Logger,
    ) -> None:
        self.vendor = vendor
        self.protocol: Union[WebSocketProtocol, PollingProtocol] = vendor.protocol
        self.http = http
        self.network = network
        self.connect_timeout = connect_timeout
        self.max_message_size = max_message_size
        self.log = log
        self._new_link = new_link
        self._set_state = set_state
        self._lock = lock  # the engine's: guards protocol state and the current link
        self._stopping = stopping
        self._lease_gone = lease_gone
        self.lease_reason = ""
        # Set by the engine on start: the thread that runs this loop and the queue it fills.
        self.thread: Optional[threading.Thread] = None
        self.ident: Optional[int] = None  # that thread's, once it runs (compared on every read)
        self.dispatcher: Optional[Dispatcher] = None
        self.link: Optional[Link] = None
        self.connecting: Optional[Link] = None
        self.pending: Dict[str, Pending] = {}
        self.was_connected = False
        self.failing = False  # the last attempt failed and nothing has connected since
        self.delivered = False  # this link delivered an event (it proved itself)
        self.up_since = 0.0
        self._deferred: List[Output] = []
        self.backlog: Deque[Event] = collections.deque()  # read while callbacks lag (link thread only)
        self.counts = {"connects": 0, "events": 0, "gaps": 0, "errors": 0}
        self.last_event_at: Optional[datetime] = None
        self.connected_since: Optional[datetime] = None

    def check_stop(self) -> None:
        if self._stopping.is_set():
            raise Stopping()
        if self._lease_gone.is_set():
            raise LeaseLost(self.lease_reason)

    def emit(self, name: str, **data: Any) -> None:
        """Queue a lifecycle event, behind every event already read."""
        if name == ev.ERROR:
            self.counts["errors"] += 1
        self.deliver([Event.make(name, provider=self.vendor.name, data=data)])

    def link_down(self) -> None:
        """Drop the current link: fail the calls waiting on it and act on what the protocol says of the loss."""
        with self._lock:
            link, self.link = self.link, None
            pending, self.pending = self.pending, {}
            outputs = list(self.protocol.lost())
        if link is not None:
            link.abort()
        for p in pending.values():
            p.finish(error=ConnectionLost("the connection dropped before the answer came"))
        try:
            self.apply(outputs, from_link=False)
        except (RtsyncError, Stopping):
            pass
        self.flush_backlog(wait=False)  # what was read waits for no further read

    # ------------------------------------------------------------------
    # Reading
    # ------------------------------------------------------------------
    def _open(self) -> Link:
        if self.vendor.prepare:
            handshake = self.vendor.prepare()
        else:
            assert isinstance(self.protocol, WebSocketProtocol)
            handshake = self.protocol.handshake()
        shown = self.vendor.secrets.redact(handshake.url)
        self.log.debug("connecting to %s", shown)
        link: Link
        if self._new_link is not None:
            link = self._new_link(handshake)
        else:
            link = WebSocketLink(handshake, timeout=self.connect_timeout, max_message_size=self.max_message_size,
                                 network=self.network, display_url=shown)
        self.connecting = link
        try:
            self.check_stop()  # stop() may have run before `connecting` was set
            return link.connect()
        finally:
            self.connecting = None

    def stream(self, protocol: WebSocketProtocol) -> None:
        link = self._open()
        with self._lock:
            self.link = link
            refused = protocol.accepted(link.subprotocol)
        if refused is not None:
            raise refused
        self.check_stop()
        self.log.debug("connected")
        clock = time.monotonic
        with self._lock:
            outputs = protocol.opened(clock())
        self.apply(outputs)
        while True:
            # No check_stop() here: stop() and a lost lease abort the link, so its recv raises.
            link = self.link  # a Rotate may have replaced it
            assert link is not None
            # Timers are due before the next read blocks: one look at the deadline per read.
            with self._lock:
                due = protocol.deadline()
                now = clock()
                ticked = None
                if due is not None and due <= now:
                    ticked = protocol.tick(now)
                    due = protocol.deadline()
            if ticked:
                self.apply(ticked, defer=True)
                continue  # what the timer did (a probe, a rotation) may set another deadline
            idle = _IDLE_WAKEABLE if hasattr(link, "wake") else _IDLE_READ
            timeout = idle if due is None else max(0.0, min(idle, due - now))
            if self.backlog:
                # Handed over only now, just before the read blocks and lets go of the GIL: the
                # dispatcher wakes to a free interpreter instead of waiting for this loop.
                self.flush_backlog(wait=False)
                if self.backlog:  # callbacks lag: look again soon
                    timeout = min(timeout, _BACKLOG_POLL)
            try:
                frames = link.recv(timeout)
            except ConnectionLost:
                self.check_stop()
                raise
            with self._lock:
                outputs, closed = self._decode(protocol, frames, clock())
            self.apply(outputs, defer=True)  # outside the lock: a full queue must not block user-facing calls
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
            try:
                if type(frame) is str:  # nearly every frame: the first check
                    outputs.extend(protocol.received(frame, now))
                elif isinstance(frame, Heard):
                    protocol.heard(now)
                elif isinstance(frame, Closed):
                    return outputs, frame
                elif isinstance(frame, Skipped):
                    protocol.heard(now)
                    outputs.append(Report(frame.error))
                else:
                    protocol.heard(now)
                    outputs.extend(self._binary(protocol, cast(bytes, frame), now))
            except RtsyncError as exc:
                outputs.append(Fail(exc))
                break
            except Exception as exc:  # a vendor decoder's bug must not cost the rest of the read
                self.log.debug("undecodable frame", exc_info=True)
                outputs.append(Report(ProtocolError(
                    f"skipped a frame that could not be decoded ({type(exc).__name__}): "
                    f"{cast(Union[str, bytes], frame)[:_SHOWN]!r}")))
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

    def poll(self, protocol: PollingProtocol) -> None:
        clock = time.monotonic
        while True:
            self.check_stop()
            with self._lock:
                request = protocol.request()
            self.log.debug("GET %s", self.vendor.secrets.redact(request.url))
            try:
                response = self.http.request(
                    "GET", request.url, headers=request.headers, timeout=request.timeout,
                    what="poll", check=False,
                )
            except ConnectionLost:
                self.check_stop()
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
            self.apply(outputs)
            if delay and self._stopping.wait(delay):
                raise Stopping()

    # ------------------------------------------------------------------
    # Acting on outputs (never with the protocol lock held)
    # ------------------------------------------------------------------
    def apply(self, outputs: Sequence[Output], from_link: bool = True, defer: bool = False) -> None:
        """Act on outputs in order. With `defer`, events stay in the backlog until the next read."""
        if self._deferred and from_link:
            outputs = [*self._deferred, *outputs]
            self._deferred = []
        batch: List[Event] = []
        for out in outputs:
            if isinstance(out, Event):
                batch.append(out)
                continue
            if batch:  # events before this output keep their place in line
                self.deliver(batch, defer)
                batch = []
            if isinstance(out, Send):
                self._send(out.text)
            elif isinstance(out, Ping):
                if self.link is not None:
                    self.link.ping(b"")
            elif isinstance(out, Connected):
                self.was_connected = True
                self.failing = False
                self.up_since = time.monotonic()
                self.counts["connects"] += 1
                again = self.counts["connects"] > 1
                self.log.info("connected%s", " (reconnected)" if again else "")
                self.emit(ev.CONNECTED, reconnect=again, resumed=out.resumed, **dict(out.detail))
                self.connected_since = datetime.now(timezone.utc)
                self._set_state(State.CONNECTED)
            elif isinstance(out, Reply):
                pending = self.pending.pop(out.key, None)
                if pending is not None:
                    pending.finish(out.result, out.error)
            elif isinstance(out, Report):
                text = self.vendor.secrets.redact(str(out.error))
                self.log.warning("%s", text)
                self.emit(ev.ERROR, error=text, exception=out.error, fatal=False)
            elif isinstance(out, Fail):
                raise out.error
            elif isinstance(out, Rotate):
                self._rotate(out.reason)
        if batch:
            self.deliver(batch, defer)

    def deliver(self, events: List[Event], defer: bool = False) -> None:
        """Queue events in order. On the link thread a full queue does not stop reading at once:
        up to `READ_AHEAD` more events wait in the backlog while heartbeats keep flowing (the
        dispatcher wakes the link once there is room for them); with `defer` they wait there for
        the next read in any case (`stream` hands them over)."""
        dispatcher = self.dispatcher
        if dispatcher is None:
            return
        when = datetime.now(timezone.utc)
        vendor_events = 0
        for event in events:
            values = event.__dict__
            if values["received_at"] is None:  # protocols read no clock: received_at is set here
                values["received_at"] = when
            if not values["name"].startswith("rtsync."):
                vendor_events += 1
                self.last_event_at = values["received_at"]
            elif values["name"] == ev.GAP:
                self.counts["gaps"] += 1
        if vendor_events:
            self.counts["events"] += vendor_events
            self.delivered = self.was_connected  # a link that delivers has proved itself
        if self.ident != threading.get_ident():
            dispatcher.put_many(events)
            return
        backlog = self.backlog
        backlog.extend(events)
        if not defer:
            dispatcher.offer(backlog, getattr(self.link, "wake", None))
        if len(backlog) > READ_AHEAD:
            self.flush_backlog(wait=True)

    def flush_backlog(self, wait: bool) -> None:
        """Hand the backlog to the dispatcher; with `wait`, all of it (reading pauses meanwhile)."""
        dispatcher, backlog = self.dispatcher, self.backlog
        if dispatcher is None or not backlog:
            return
        dispatcher.offer(backlog, getattr(self.link, "wake", None))
        if wait and backlog:
            events = list(backlog)
            backlog.clear()
            if not dispatcher.put_many(events, self._while_full):
                raise Stopping()

    def _send(self, text: str) -> None:
        link = self.link
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
                self.apply([out], from_link=False)
            else:
                self._deferred.append(out)
        return True

    def _rotate(self, reason: str) -> None:
        """Make-before-break: open a new link, then drain and close the old one."""
        protocol = self.protocol
        assert isinstance(protocol, WebSocketProtocol)
        old = self.link
        try:
            new = self._open()
        except RtsyncError as exc:
            if self._stopping.is_set():
                raise Stopping() from None
            if not exc.retryable:
                raise
            self.apply([Report(exc)], from_link=False)
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
                    self.apply([o for o in outputs if not isinstance(o, Fail)])
                    if not frames or closed is not None:
                        break
            except ConnectionLost:
                pass
            old.abort()
        with self._lock:
            self.link = new
            outputs = protocol.opened(time.monotonic())
        self.apply(outputs)
