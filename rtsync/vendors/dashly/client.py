"""`DashlyClient`: Dashly Realtime Services over WebSocket, long polling or short polling, resumed without loss."""

from __future__ import annotations

import collections
import dataclasses
import time
from datetime import datetime, timezone
from typing import Any, Deque, Dict, List, Mapping, Optional, Sequence, Set, Union

from ...checkpoint import Checkpoint, CheckpointWriter
from ...credentials import Credential, CredentialSource
from ...errors import ConfigurationError, ConnectionLost, RateLimited, RtsyncError
from ...dispatch import Dispatcher
from ...events import Event, register_views, stamp
from ...client import Client
from ...compat import renamed_arguments
from ...engine import Vendor
from ...policy import Backoff
from ...redact import Secrets
from ...sansio import Fail, Handshake
from ...wire.http import HttpClient
from .cursor import Cursor, DashlyEvent, validate_channels
from .envelope import EPOCHS
from .protocol import LongPollProtocol, ShortPollProtocol, WebSocketStream
from .replan import ChannelPlan
from .shards import Protocol, Shard, ShardedClient, plan, restore_data, snapshot
from .state import DashlyState

register_views(__package__ + ".models")  # typed views: pydantic loads at the first `typed`

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


class DashlyClient(ShardedClient):
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

    `auth_token` may be a zero-argument callable returning the token; it is
    called before every connection attempt (a rotating token, a vault).
    More than 50 channels, or a list too long for one URL, is split over
    several connections behind this one client (one callback thread, one
    checkpoint); `add_channels()`/`remove_channels()` change the list while
    running, resuming from the cursor so nothing is lost or repeated.

    `transport`: "websocket" (default), "longpoll" (25 s holds) or
    "shortpoll" (every `poll_interval` s). After a failure the client waits
    20-30 s before retrying, as Dashly asks ("be nice"); pass `backoff=` to
    change that. With `fail_fast` (default) a first connection that fails
    ends the client at once (`wait_connected()` raises the error, naming the
    host and cause) instead of retrying a wrong URL in silence; later
    failures are retried. A refused token (HTTP 401/403) or a rejected
    channel list (400, close 1008) stops the client instead of retrying.

    Channel names for the documented kinds: `rtsync.vendors.dashly.channels`
    (`channels.conversation_reply(100, user_id=7)`); `event.typed` is the
    kind's model from `rtsync.vendors.dashly.models`. Messages of the `ping`
    channel are liveness: they arrive as `dashly.ping` events.

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
        auth_token: Credential,
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
        fail_fast: bool = True,
        **options: Any,
    ) -> None:
        secrets = Secrets()
        self._token = CredentialSource("auth_token", auth_token, secrets,
                                       hint="pass your Dashly Web API token")
        if transport not in TRANSPORTS:
            raise ConfigurationError(f"transport must be one of {', '.join(TRANSPORTS)}; got {transport!r}")
        if poll_interval <= 0:
            raise ConfigurationError("poll_interval must be positive")
        self.transport = transport
        self.checkpoint = checkpoint
        self.fail_fast = fail_fast
        self._url = url
        self._base = _scheme_for(url, transport)
        self._knobs = dict(poll_interval=poll_interval, ping_interval=ping_interval,
                           ping_timeout=ping_timeout, gap_grace=gap_grace)
        channels = validate_channels(channels, limit=None)
        saved = checkpoint.load() if checkpoint is not None else None
        self._shards: List[Shard] = []
        self._where: Dict[str, Shard] = {}
        for group in plan(channels, self._base):
            self._shards.append(self._new_shard(group, saved))
        self._leased = options.get("lease") is not None
        if self._leased and len(self._shards) > 1:
            raise ConfigurationError(
                f"lease= covers one connection, and these {len(channels)} channels need {len(self._shards)} "
                "(50 channels or 8 KB of URL each); split them over several leased clients")
        # What callbacks have finished with: this, not what was read, is what a checkpoint saves.
        self._done_ids: Dict[str, Deque[int]] = collections.defaultdict(lambda: collections.deque(maxlen=256))
        self._writer = CheckpointWriter(checkpoint, checkpoint_interval,
                                        snapshot=lambda: snapshot(self._shards, self._done_ids))
        self._done_lock = self._writer.lock
        self._plan = ChannelPlan(self._shards, self._where, self._base,
                                 new_shard=lambda group: self._new_shard(group, None), spawn=self._spawn,
                                 running=lambda: self.running, done_lock=self._done_lock, leased=self._leased)
        self._backoff = backoff or Backoff(base=10.0, cap=10.0, floor=20.0)
        self._options = options
        super().__init__(self._vendor(self._shards[0], secrets), backoff=self._backoff, **options)
        self._shards[0].engine = self._engine
        for shard in self._shards[1:]:
            self._spawn(shard)
        self._http = self._engine.http

    # -- connections ------------------------------------------------------------
    def _new_shard(self, channels: List[str], saved: Optional[Mapping[str, Any]]) -> Shard:
        state = DashlyState(channels, gap_grace=self._knobs["gap_grace"])
        if saved:
            try:
                state.restore(restore_data(saved, channels))
            except (KeyError, TypeError, ValueError, AttributeError):
                path = getattr(self.checkpoint, "path", "")
                raise ConfigurationError(
                    f"checkpoint {path} is not a Dashly cursor; delete it to start from now") from None
        protocol: Protocol
        if self.transport == "websocket":
            protocol = WebSocketStream(self._base, self._token, state, keepalive=self._knobs["ping_interval"],
                                       pong_timeout=self._knobs["ping_timeout"])
        elif self.transport == "longpoll":
            protocol = LongPollProtocol(self._base, self._token, state)
        else:
            protocol = ShortPollProtocol(self._base, self._token, state, interval=self._knobs["poll_interval"])
        shard = Shard(len(self._shards), state, protocol)
        for ch in channels:
            self._where[ch] = shard
        return shard

    def _vendor(self, shard: Shard, secrets: Secrets) -> Vendor:
        first = not self._shards or shard is self._shards[0]
        return Vendor("dashly", shard.protocol, secrets, prepare=lambda: self._prepare(shard),
                      classify=lambda error: self._classify(shard, error),
                      delivered=self._delivered if first and self.checkpoint is not None else None,
                      stopped=self.save_checkpoint if first else None,
                      resume=(lambda: self._resume(shard)) if first else None)

    def _spawn(self, shard: Shard) -> None:
        """A hidden client runs this connection; its events join ours, in order, on our callback thread."""
        options = dict(self._options)
        if options.get("retry_budget") is not None:
            options["retry_budget"] = dataclasses.replace(options["retry_budget"])
        child = Client(self._vendor(shard, self._secrets), backoff=dataclasses.replace(self._backoff), **options)
        child.on("*", lambda event: self._engine.inject([event]))
        shard.client, shard.engine = child, child._engine

    @property
    def protocol(self) -> Protocol:
        """The sans-I/O protocol of the first connection."""
        return self._shards[0].protocol

    @property
    def connections(self) -> int:
        """How many connections carry the channels (one per 50, or per 8 KB of URL)."""
        return len(self._shards)

    def _prepare(self, shard: Shard) -> Handshake:
        protocol = shard.protocol
        assert isinstance(protocol, WebSocketStream)
        protocol.refresh_token()
        if shard.state.cursor is None:
            # A WebSocket subscriber without a cursor gets no backlog, so a drop before the
            # first message would lose whatever came meanwhile. One short poll gives a
            # cursor from the server's clock (its Date) before we connect.
            assert shard.engine is not None
            for out in self._short_poll(shard, 15.0, shard.engine.http):
                if isinstance(out, Fail):
                    raise out.error
            if self.checkpoint is not None and shard.state.cursor is not None:
                with self._done_lock:
                    if shard.done is None:
                        # Where this run starts: a replica taking over (or the next run) after a
                        # crash before the first event must start here, not later.
                        shard.done, self._writer.dirty = shard.state.cursor, True
                self.save_checkpoint()
        return protocol.handshake()

    def _resume(self, shard: Shard) -> None:
        """A lease was (re)gained: resume after the newer of the checkpoint (another replica may have
        moved it) and what our own callbacks finished (a save may have failed while Redis was away),
        never from what was only read: events read but not delivered were dropped."""
        with self._done_lock:
            mine = None if shard.done is None else {
                "cursor": shard.done.to_json(),
                "channels": {ch: list(self._done_ids[ch]) for ch in shard.channels if ch in self._done_ids},
            }
        saved = self.checkpoint.load() if self.checkpoint is not None else None
        state = DashlyState(list(shard.channels), gap_grace=self._knobs["gap_grace"])
        ids: Dict[str, Set[int]] = collections.defaultdict(set)
        try:
            for data in (restore_data(saved, shard.channels) if saved else None, mine):
                if data:
                    state.restore(data)
                    for ch, seen in (data.get("channels") or {}).items():
                        ids[ch].update(int(i) for i in seen)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ConfigurationError(
                f"checkpoint {getattr(self.checkpoint, 'path', '')} is not a Dashly cursor; "
                "delete it to start from now") from None
        shard.state = shard.protocol.state = state
        with self._done_lock:
            shard.done, self._writer.dirty = state.cursor, mine is not None
            for ch in shard.channels:
                self._done_ids.pop(ch, None)
            for ch, seen in ids.items():
                self._done_ids[ch].extend(sorted(seen))

    def _classify(self, shard: Shard, error: RtsyncError) -> RtsyncError:
        if (not self.fail_fast or not error.retryable or isinstance(error, RateLimited)
                or any(e.stats().connects for e in self._engines())):
            return error
        final = ConnectionLost(
            f"{error}. The first connection failed, so rtsync stops instead of retrying "
            "(fail_fast=True); check the url, or pass fail_fast=False to keep retrying")
        final.retryable = False
        return final

    # -- the channel list while running ------------------------------------------
    def add_channels(self, channels: Union[str, Sequence[str]]) -> None:
        """Subscribe to more channels, now (a new connection if the others are full).

        A changed connection is replaced from its cursor (WebSocket: the new link opens before the
        old one closes; polling: the next request), so no message is lost or delivered twice.
        """
        self._plan.add(channels)

    def remove_channels(self, channels: Union[str, Sequence[str]]) -> None:
        """Unsubscribe from channels, now; the connections left resume from their cursors."""
        self._plan.remove(channels)

    def __repr__(self) -> str:
        shown = f"{len(self.channels)} channels on {len(self._shards)} connections" if len(self._shards) > 1 \
            else f"channels={self.channels!r}"
        return f"<DashlyClient {self.transport} {shown} {self.state.value}>"

    @property
    def cursor(self) -> Optional[Cursor]:
        """The newest `(time, tag)` read so far on the first connection; reconnects resume from it."""
        return self._shards[0].state.cursor

    # -- checkpoints --------------------------------------------------------
    def _delivered(self, event: Event) -> None:
        # Runs on the dispatcher thread after every event: without a checkpoint, nothing to note.
        if self._record_done(event):
            self._writer.due()

    def save_checkpoint(self) -> None:
        """Write the cursors of the events callbacks have finished with (no-op without a checkpoint)."""
        self._writer.save()

    def _short_poll(self, shard: Shard, timeout: float, http: HttpClient) -> List[Any]:
        """One short-poll request through a cancellable HTTP client; the protocol's outputs."""
        protocol = ShortPollProtocol(_scheme_for(self._url, "shortpoll"), self._token, shard.state)
        protocol.shard = shard.index
        request = protocol.request()
        self.log.debug("GET %s", self._redact(request.url))
        response = http.request("GET", request.url, timeout=timeout, what="poll", check=False)
        return protocol.response(response, time.monotonic())

    # -- cron ---------------------------------------------------------------
    def poll_once(self, timeout: float = 15.0) -> List[Event]:
        """Make one short-poll request per connection, run callbacks for what it returns, save the
        checkpoint, and return the events (gaps included). For cron jobs; do not mix with `start()`.

        The very first call without a saved cursor returns nothing and records the
        server's time, so the next call gets everything published after it.
        """
        if self.running:
            raise RtsyncError("poll_once() cannot run while the client is started; stop() it first")
        self._http.reset()
        events: List[Event] = []
        dispatcher = Dispatcher(self._handlers)
        for shard in self._shards:
            outputs = self._short_poll(shard, timeout, self._http)
            stamp((out for out in outputs if isinstance(out, Event)), datetime.now(timezone.utc))
            outputs.extend(shard.state.due_gaps(time.monotonic(), force=True))
            for out in outputs:
                if isinstance(out, Fail):
                    raise out.error
                if isinstance(out, Event):
                    events.append(out)
                    dispatcher.dispatch(out)
                    self._record_done(out)
            if self.checkpoint is not None:
                cursor = shard.state.cursor
                if cursor is not None and (shard.done is None or cursor > shard.done):
                    # A 304 bootstrap or trailing validators: nothing undelivered lies before it.
                    with self._done_lock:
                        shard.done, self._writer.dirty = cursor, True
        self.save_checkpoint()
        return events

    def _record_done(self, event: Event) -> bool:
        """Note that callbacks finished with `event`; True if a checkpoint should be written."""
        if not isinstance(event, DashlyEvent) or self.checkpoint is None:
            return False
        shard = self._where.get(event.channel or "")
        if shard is None:
            return False
        tag, epoch = event.tag, EPOCHS.get(event.time)
        if type(tag) is not int or tag < 0 or epoch is None:  # not as DashlyState makes them: parse it
            cursor = Cursor.parse(event.time, event.tag)
            epoch, tag = cursor.epoch, cursor.tag
        with self._done_lock:
            done = shard.done
            # A Cursor only for a newer one: within a second's replay tags arrive out of order
            if done is None or epoch > done.epoch or (epoch == done.epoch and tag > done.tag):
                shard.done = Cursor.of(epoch, tag, event.time)
            self._done_ids[event.channel or ""].append(int(event.id or 0))
            self._writer.dirty = True
        return True
