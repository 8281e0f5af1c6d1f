"""How a Dashly client splits its channels over connections (50 per URL, and URLs under nginx's 8 KB) and keeps one cursor each.

The server takes at most 50 channels per connection (Dashly's rule) and nginx
answers `414` once the request line passes its 8 KB header buffer, so a long
channel list becomes several connections ("shards"). Each shard has its own
`DashlyState`: the `(time, tag)` cursor is server-wide, but a connection that
was down must not resume from another connection's newer cursor, so each
keeps its own. The checkpoint stores them together (`shards`).
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, TypeVar, Union
from urllib.parse import quote, urlsplit

from ...client import Client
from ...errors import RtsyncError
from ...state import State, Stats

from .cursor import MAX_CHANNELS, Cursor
from .protocol import LongPollProtocol, ShortPollProtocol, WebSocketStream
from .state import DashlyState

if TYPE_CHECKING:  # pragma: no cover
    from ...engine import Engine

__all__ = ["MAX_TARGET", "Shard", "ShardedClient", "fits", "plan", "restore_data", "snapshot"]

C = TypeVar("C", bound="ShardedClient")

#: Longest request target (path and query) we send. nginx's default `large_client_header_buffers 4 8k`
#: holds the whole request line ("GET <target> HTTP/1.1") in 8 KB; past it, `414`.
MAX_TARGET = 8000
# Room kept for what follows the channels: "?auth_token=<token>&tag=<n>&time=<date>" (a callable
# token may grow between connections).
_QUERY_ROOM = 700

Protocol = Union[WebSocketStream, LongPollProtocol, ShortPollProtocol]


class Shard:
    """One connection of a client: its channels, state and protocol, and the engine that runs it."""

    def __init__(self, index: int, state: DashlyState, protocol: Protocol) -> None:
        self.index = index
        self.state = state
        self.protocol = protocol
        protocol.shard = index
        self.engine: Optional["Engine"] = None
        self.client: Optional["Client"] = None  # the hidden client of every shard but the first
        #: the newest cursor of the events callbacks have finished with (what a checkpoint saves)
        self.done: Optional[Cursor] = state.cursor

    @property
    def channels(self) -> List[str]:
        return self.state.channels

    def __repr__(self) -> str:
        return f"<Shard {self.index} {len(self.channels)} channels>"


def _path_length(channels: Sequence[str]) -> int:
    return sum(len(quote(ch, safe="")) + 1 for ch in channels)


def fits(channels: Sequence[str], base_url: str) -> bool:
    """Whether one connection can carry `channels`: at most 50, and a URL nginx accepts."""
    prefix = len(urlsplit(base_url).path.rstrip("/")) + len("/websocket")
    return len(channels) <= MAX_CHANNELS and prefix + _path_length(channels) + _QUERY_ROOM <= MAX_TARGET


def plan(channels: Sequence[str], base_url: str) -> List[List[str]]:
    """Channels in order, cut into as few connections as `fits` allows."""
    groups: List[List[str]] = [[]]
    for ch in channels:
        if groups[-1] and not fits(groups[-1] + [ch], base_url):
            groups.append([])
        groups[-1].append(ch)
    return groups


def snapshot(shards: Sequence[Shard], ids: Mapping[str, Sequence[int]]) -> Dict[str, Any]:
    """The checkpoint of a client: a cursor per connection, and the ids finished per channel.

    `cursor` (the oldest of them) keeps the file readable by a single-connection client.
    """
    cursors = [s.done for s in shards if s.done is not None]
    return {
        "cursor": min(cursors).to_json() if cursors else None,
        "channels": {ch: list(v) for ch, v in ids.items()},
        "shards": [{"channels": list(s.channels), "cursor": s.done.to_json() if s.done else None}
                   for s in shards],
    }


def restore_data(saved: Optional[Mapping[str, Any]], channels: Sequence[str]) -> Dict[str, Any]:
    """What `DashlyState.restore` takes for a connection carrying `channels`, from a checkpoint
    written with any split: the oldest cursor among its channels' connections, and their ids."""
    if not saved:
        return {}
    known: Dict[str, Cursor] = {}
    if saved.get("shards") is not None:
        for entry in saved["shards"]:
            if entry.get("cursor"):
                cursor = Cursor.from_json(entry["cursor"])
                for ch in entry.get("channels") or ():
                    known[str(ch)] = cursor
    elif saved.get("cursor"):  # one connection carried every channel
        cursor = Cursor.from_json(saved["cursor"])
        known = {ch: cursor for ch in channels}
    mine = [known[ch] for ch in channels if ch in known]
    ids = saved.get("channels") or {}
    return {
        "cursor": min(mine).to_json() if mine else None,
        "channels": {ch: ids[ch] for ch in channels if ch in ids},
    }


class ShardedClient(Client):
    """A client whose channels run on several engines: the first is the client's own, whose
    dispatcher runs every callback; each other runs in a hidden client that forwards its
    events to it. Lifecycle, readiness and statistics cover them all."""

    _shards: List[Shard]

    def _engines(self) -> List[Engine]:
        return [s.engine for s in self._shards if s.engine is not None]

    def _children(self) -> List[Client]:
        return [s.client for s in self._shards if s.client is not None]

    @property
    def channels(self) -> List[str]:
        """Every channel subscribed, over all connections."""
        return [ch for shard in self._shards for ch in shard.channels]

    def start(self: C) -> C:
        super().start()
        for child in self._children():
            child.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        for child in self._children():  # first: what they read reaches our callbacks
            child.stop(max(0.0, deadline - time.monotonic()))
        super().stop(max(0.0, deadline - time.monotonic()))

    @property
    def running(self) -> bool:
        return any(e.running for e in self._engines())

    @property
    def state(self) -> State:
        states = [e.state for e in self._engines()]
        for state in (State.FAILED, State.RECONNECTING, State.CONNECTING):
            if state in states:
                return state
        return State.CONNECTED if State.CONNECTED in states else State.STOPPED

    @property
    def connected(self) -> bool:
        return self.state is State.CONNECTED

    def _ended(self) -> Optional[RtsyncError]:
        return self.error or super()._ended()

    @property
    def error(self) -> Optional[RtsyncError]:
        return next((e.fatal for e in self._engines() if e.fatal is not None), None)

    @property
    def stats(self) -> Stats:
        mine = self._engine.stats()
        others = [e.stats() for e in self._engines() if e is not self._engine]
        return dataclasses.replace(
            mine, connects=mine.connects + sum(s.connects for s in others),
            reconnects=mine.reconnects + sum(s.reconnects for s in others),
            errors=mine.errors + sum(s.errors for s in others))

    def wait_connected(self, timeout: Optional[float] = None) -> bool:
        """True once every connection is ready; False on timeout; raises the error that ended one."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            error = self.error
            if error is not None:
                raise error
            waiting = [e for e in self._engines() if e.state is not State.CONNECTED]
            if not waiting:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            # in slices: one connection failing ends the wait while another is still connecting
            if not waiting[0].wait_connected(0.1 if left is None else min(0.1, left)) and not waiting[0].running \
                    and waiting[0].fatal is None:
                return False  # not started, or stopped

    def run_forever(self) -> None:
        if self._engine.in_callback():
            raise RtsyncError("run_forever() was called from a callback, where it would block every "
                              "callback (they run one at a time on one thread); the client is already running")
        self.start()
        try:
            while not self._engine.finished.wait(0.25):
                if any(e.fatal is not None for e in self._engines()):
                    break
        except KeyboardInterrupt:
            self.log.info("interrupted; stopping")
        finally:
            self.stop()
        if self.error is not None:
            raise self.error

