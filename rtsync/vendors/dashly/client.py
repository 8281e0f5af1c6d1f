"""`DashlyClient`: Dashly Realtime Services over WebSocket, long polling or short polling, resumed without loss."""

from __future__ import annotations

import collections
import threading
import time
from datetime import datetime, timezone
from typing import Any, Deque, Dict, List, Optional, Sequence, Set, Union

from ...checkpoint import Checkpoint
from ...errors import ConfigurationError, RtsyncError
from ...dispatch import Dispatcher
from ...events import Event, stamp
from ...client import Client
from ...compat import renamed_arguments
from ...engine import Vendor
from ...policy import Backoff
from ...redact import Secrets
from ...sansio import Fail, Handshake
from .protocol import (
    Cursor,
    DashlyEvent,
    DashlyState,
    LongPollProtocol,
    ShortPollProtocol,
    WebSocketStream,
    validate_channels,
)

__all__ = ["DashlyClient"]

DEFAULT_URL = "https://realtime-services.dashly.app"
TRANSPORTS = ("websocket", "longpoll", "shortpoll")


def _scheme_for(url: str, transport: str) -> str:
    """Dashly serves all three transports on one host; map the scheme to the transport."""
    url = url.rstrip("/")
    for secure, plain in (("https://", "http://"), ("wss://", "ws://")):
        if url.startswith(secure):
            rest, tls = url[len(secure):], True
            break
        if url.startswith(plain):
            rest, tls = url[len(plain):], False
            break
    else:
        raise ConfigurationError(f"url must start with https://, wss://, http:// or ws://, got {url!r}")
    if transport == "websocket":
        return ("wss://" if tls else "ws://") + rest
    return ("https://" if tls else "http://") + rest


class DashlyClient(Client):
    """Listen to Dashly channels; events are named by their channel.

        client = rtsync.DashlyClient(token, ["conversation_reply.100", "conversation.100"])
        client.on("conversation_reply.*", lambda e: print(e.data))
        client.run_forever()

    Each event is a `DashlyEvent`: `name` and `channel` are the message's
    channel, `id` its per-channel id, `data` its `message`, and `tag`/`time`
    its resume cursor. A deleted channel is a `dashly.channel_deleted` event.
    Messages missed while disconnected are fetched again on reconnect from the
    newest `(time, tag)` delivered, repeats are dropped by `(channel, id)`,
    and ids that never arrive are reported as `rtsync.gap`.

    `transport`: "websocket" (default), "longpoll" (25 s holds) or
    "shortpoll" (every `poll_interval` s). After a failure the client waits
    20-30 s before retrying, as Dashly asks ("be nice"); pass `backoff=` to
    change that. A refused token (HTTP 401/403) or a rejected channel list
    (400, close 1008) stops the client with an error instead of retrying.

    `checkpoint=rtsync.FileCheckpoint(path)` saves the cursor of the events
    your callbacks have finished with (at most every `checkpoint_interval` s
    and on stop), so the next run resumes exactly there; `poll_once()` is the
    one-request form for cron jobs.

    Threading: see `rtsync.Client`; callbacks run on one dispatcher thread.
    """

    @renamed_arguments(1, ("channels", "transport", "url", "checkpoint"),
                       {"keepalive": "ping_interval", "pong_timeout": "ping_timeout"})
    def __init__(
        self,
        auth_token: str,
        *,
        channels: Union[str, Sequence[str]],
        transport: str = "websocket",
        url: str = DEFAULT_URL,
        checkpoint: Optional[Checkpoint] = None,
        poll_interval: float = 3.0,
        ping_interval: float = 20.0,
        ping_timeout: float = 10.0,
        gap_grace: float = 2.0,
        checkpoint_interval: float = 1.0,
        backoff: Optional[Backoff] = None,
        **options: Any,
    ) -> None:
        if not isinstance(auth_token, str) or not auth_token.strip():
            raise ConfigurationError("auth_token must be your Dashly Web API token (a non-empty string)")
        if transport not in TRANSPORTS:
            raise ConfigurationError(f"transport must be one of {', '.join(TRANSPORTS)}; got {transport!r}")
        if poll_interval <= 0:
            raise ConfigurationError("poll_interval must be positive")
        self.transport = transport
        self.channels = validate_channels(channels)
        self.checkpoint = checkpoint
        self.checkpoint_interval = checkpoint_interval
        self._state = DashlyState(self.channels, gap_grace=gap_grace)
        if checkpoint is not None:
            saved = checkpoint.load()
            if saved:
                try:
                    self._state.restore(saved)
                except (KeyError, TypeError, ValueError):
                    raise ConfigurationError(
                        f"checkpoint {checkpoint.path} is not a Dashly cursor; delete it to start from now"
                    ) from None
        self._url = url
        self._token = auth_token
        self.protocol: Union[WebSocketStream, LongPollProtocol, ShortPollProtocol]
        if transport == "websocket":
            self.protocol = WebSocketStream(
                _scheme_for(url, transport), auth_token, self._state,
                keepalive=ping_interval, pong_timeout=ping_timeout,
            )
        elif transport == "longpoll":
            self.protocol = LongPollProtocol(_scheme_for(url, transport), auth_token, self._state)
        else:
            self.protocol = ShortPollProtocol(
                _scheme_for(url, transport), auth_token, self._state, interval=poll_interval
            )
        super().__init__(
            Vendor("dashly", self.protocol, Secrets(auth_token), prepare=self._prepare,
                   delivered=self._delivered, stopped=self.save_checkpoint, resume=self._resume),
            backoff=backoff or Backoff(base=10.0, cap=10.0, floor=20.0), **options)
        self._http = self._engine.http
        # What callbacks have finished with: this, not what was read, is what a checkpoint saves.
        self._done_cursor: Optional[Cursor] = self._state.cursor
        self._done_ids: Dict[str, Deque[int]] = collections.defaultdict(lambda: collections.deque(maxlen=256))
        self._done_lock = threading.Lock()
        self._saved_at = 0.0
        self._dirty = False

    def __repr__(self) -> str:
        return f"<DashlyClient {self.transport} channels={self.channels!r} {self.state.value}>"

    @property
    def cursor(self) -> Optional[Cursor]:
        """The newest `(time, tag)` read so far; reconnects resume from it."""
        return self._state.cursor

    # -- checkpoints --------------------------------------------------------
    def _delivered(self, event: Event) -> None:
        if not self._record_done(event):
            return
        now = time.monotonic()
        if now - self._saved_at >= self.checkpoint_interval:
            self._saved_at = now
            self.save_checkpoint()

    def _resume(self) -> None:
        """A lease was (re)gained: resume after the newer of the checkpoint (another replica may have
        moved it) and what our own callbacks finished (a save may have failed while Redis was away),
        never from what was only read: events read but not delivered were dropped."""
        with self._done_lock:
            mine = None if self._done_cursor is None else {
                "cursor": self._done_cursor.to_json(),
                "channels": {ch: list(ids) for ch, ids in self._done_ids.items()},
            }
        saved = self.checkpoint.load() if self.checkpoint is not None else None
        state = DashlyState(self.channels, gap_grace=self._state.gap_grace)
        ids: Dict[str, Set[int]] = collections.defaultdict(set)
        try:
            for data in (saved, mine):
                if data:
                    state.restore(data)
                    for ch, seen in (data.get("channels") or {}).items():
                        ids[ch].update(int(i) for i in seen)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ConfigurationError(
                f"checkpoint {getattr(self.checkpoint, 'path', '')} is not a Dashly cursor; delete it to start from now"
            ) from None
        self._state = self.protocol.state = state
        with self._done_lock:
            self._done_cursor, self._dirty = state.cursor, mine is not None
            self._done_ids.clear()
            for ch, seen in ids.items():
                self._done_ids[ch].extend(sorted(seen))

    def save_checkpoint(self) -> None:
        """Write the cursor of the events callbacks have finished with (no-op without a checkpoint)."""
        if self.checkpoint is None:
            return
        with self._done_lock:
            if not self._dirty:
                return
            self._dirty = False
            data = {
                "cursor": self._done_cursor.to_json() if self._done_cursor else None,
                "channels": {ch: list(ids) for ch, ids in self._done_ids.items()},
            }
        self.checkpoint.save(data)

    def _short_poll(self, timeout: float) -> List[Any]:
        """One short-poll request through the cancellable HTTP client; the protocol's outputs."""
        protocol = ShortPollProtocol(_scheme_for(self._url, "shortpoll"), self._token, self._state)
        request = protocol.request()
        self.log.debug("GET %s", self._redact(request.url))
        response = self._http.request("GET", request.url, timeout=timeout, what="poll", check=False)
        return protocol.response(response, time.monotonic())

    def _prepare(self) -> Handshake:
        if self._state.cursor is None:
            # A WebSocket subscriber without a cursor gets no backlog, so a drop before the
            # first message would lose whatever came meanwhile. One short poll gives a
            # cursor from the server's clock (its Date) before we connect.
            for out in self._short_poll(15.0):
                if isinstance(out, Fail):
                    raise out.error
            if self.checkpoint is not None and self._state.cursor is not None:
                with self._done_lock:
                    if self._done_cursor is None:
                        # Where this run starts: a replica taking over (or the next run) after a
                        # crash before the first event must start here, not later.
                        self._done_cursor, self._dirty = self._state.cursor, True
                self.save_checkpoint()
        assert isinstance(self.protocol, WebSocketStream)
        return self.protocol.handshake()

    # -- cron ---------------------------------------------------------------
    def poll_once(self, timeout: float = 15.0) -> List[Event]:
        """Make one short-poll request, run callbacks for what it returns, save the checkpoint,
        and return the events (gaps included). For cron jobs; do not mix with `start()`.

        The very first call without a saved cursor returns nothing and records the
        server's time, so the next call gets everything published after it.
        """
        if self.running:
            raise RtsyncError("poll_once() cannot run while the client is started; stop() it first")
        self._http.reset()
        outputs = self._short_poll(timeout)
        stamp((out for out in outputs if isinstance(out, Event)), datetime.now(timezone.utc))
        outputs.extend(self._state.due_gaps(time.monotonic(), force=True))
        events: List[Event] = []
        dispatcher = Dispatcher(self._handlers)
        for out in outputs:
            if isinstance(out, Fail):
                raise out.error
            if isinstance(out, Event):
                events.append(out)
                dispatcher.dispatch(out)
                self._record_done(out)
        if self.checkpoint is not None:
            if self._state.cursor is not None and (self._done_cursor is None or self._state.cursor > self._done_cursor):
                # A 304 bootstrap or trailing validators: nothing undelivered lies before it.
                with self._done_lock:
                    self._done_cursor, self._dirty = self._state.cursor, True
            self.save_checkpoint()
        return events

    def _record_done(self, event: Event) -> bool:
        """Note that callbacks finished with `event`; True if a checkpoint should be written."""
        if not isinstance(event, DashlyEvent) or self.checkpoint is None:
            return False
        cursor = Cursor.parse(event.time, event.tag)
        with self._done_lock:
            if self._done_cursor is None or cursor > self._done_cursor:
                self._done_cursor = cursor
            self._done_ids[event.channel or ""].append(int(event.id or 0))
            self._dirty = True
        return True
