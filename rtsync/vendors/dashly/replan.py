"""Changing a running Dashly client's channel list: which connection takes a channel, and resuming without loss."""

from __future__ import annotations

import collections
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from ...errors import ConfigurationError
from .cursor import validate_channels
from .shards import Protocol, Shard, fits, plan

__all__ = ["ChannelPlan"]

# Removed channels whose dedupe state is kept, in case they are added back.
_PARKED = 1024


class ChannelPlan:
    """The client's part that adds and removes channels while it runs (one per `DashlyClient`).

    It shares the client's list of connections and its channel-to-connection map
    (the same objects, so the client's per-event lookups pay nothing for it).
    """

    def __init__(
        self,
        shards: List[Shard],
        where: Dict[str, Shard],
        base: str,
        *,
        new_shard: Callable[[List[str]], Shard],
        spawn: Callable[[Shard], None],
        running: Callable[[], bool],
        done_lock: threading.Lock,
        leased: bool,
    ) -> None:
        self._shards = shards
        self._where = where
        self._base = base
        self._new_shard = new_shard
        self._spawn = spawn
        self._running = running
        self._done_lock = done_lock
        self._leased = leased
        self._lock = threading.RLock()
        self._parked: "collections.OrderedDict[str, object]" = collections.OrderedDict()

    def add(self, channels: Union[str, Sequence[str]]) -> None:
        """Subscribe to more channels, filling the last connection first, then new ones."""
        new = [ch for ch in validate_channels(channels, limit=None) if ch not in self._where]
        with self._lock:
            last = self._shards[-1]
            joining = list(last.channels)
            while new and fits(joining + new[:1], self._base):
                joining.append(new.pop(0))
            if len(joining) > len(last.channels):
                for ch in joining[len(last.channels):]:
                    self._where[ch] = last
                self._apply(last, joining)
            if new and self._leased:
                raise ConfigurationError(
                    "these channels need another connection, which lease= does not cover; "
                    "add them to another leased client")
            for group in plan(new, self._base) if new else []:
                fresh = self._new_shard(group)
                for ch in group:
                    fresh.state.put(ch, self._parked.pop(ch, None))
                fresh.state.advance(self._shards[0].state.cursor)  # what is published from now on
                fresh.done = fresh.state.cursor
                self._shards.append(fresh)
                self._spawn(fresh)
                if self._running():
                    assert fresh.client is not None
                    fresh.client.start()

    def remove(self, channels: Union[str, Sequence[str]]) -> None:
        """Unsubscribe from channels; the connections left resume from their cursors."""
        gone = [channels] if isinstance(channels, str) else list(channels)
        with self._lock:
            if not set(self._where) - set(gone):
                raise ConfigurationError("cannot remove every channel; stop() the client instead")
            for ch in gone:
                shard = self._where.pop(ch, None)
                if shard is None:
                    continue
                left = [c for c in shard.channels if c != ch]
                if left:
                    self._apply(shard, left)
                elif shard is self._shards[0]:
                    self._take_over(shard)
                else:
                    self._shards.remove(shard)
                    assert shard.client is not None
                    shard.client.stop()
                    self._park(ch, shard.state.take(ch))

    def _apply(self, shard: Shard, channels: List[str]) -> None:
        def change(protocol: Protocol) -> List[Any]:
            state = protocol.state
            for ch in set(state.channels) - set(channels):
                self._park(ch, state.take(ch))
            for ch in set(channels) - set(state.channels):
                state.put(ch, self._parked.pop(ch, None))
            return protocol.set_channels(channels)

        if shard.engine is not None:
            shard.engine.exchange(change)
        else:
            change(shard.protocol)

    def _park(self, channel: str, state: Optional[object]) -> None:
        """Keep a removed channel's dedupe state: added back, it does not repeat what was delivered."""
        if state is not None:
            self._parked[channel] = state
            while len(self._parked) > _PARKED:
                self._parked.popitem(last=False)

    def _take_over(self, first: Shard) -> None:
        """The first connection lost its last channel: it takes over every channel of the last
        connection, resuming from that connection's cursor, with its dedupe state (nothing skipped,
        nothing twice); the last connection ends."""
        donor = self._shards.pop()
        assert donor.client is not None and first.engine is not None
        donor.client.stop()  # what it read reaches our callbacks first
        moved = {ch: donor.state.take(ch) for ch in donor.channels}
        cursor = donor.state.cursor

        def take(protocol: Protocol) -> List[Any]:
            for ch, state in moved.items():
                protocol.state.put(ch, state)
            protocol.state.lower(cursor)
            protocol.state.advance(cursor)
            return protocol.set_channels(list(moved))

        first.engine.exchange(take)
        with self._done_lock:
            if donor.done is not None and (first.done is None or donor.done < first.done):
                first.done = donor.done
        for ch in moved:
            self._where[ch] = first
