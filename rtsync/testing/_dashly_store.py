"""The Dashly local server's in-memory channel store: per-channel ids, the global tag, cursors, fan-out and channel GC.

It models the Nginx Push Stream Module's shared memory: the message template
filled in by plain substitution, a tag that counts publishes within each
second, `(time, tag)` cursors, the backlog a subscriber gets, the reserved id
-2 a DELETE sends, and the module's channel garbage collection. It runs on
the server's event loop only; `DashlyServer` reads its knobs (clock, TTLs,
sizes, `reorder`) at each use, so tests may change them at run time.
"""

from __future__ import annotations

import asyncio
import collections
import struct
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from typing import Callable, Deque, Dict, List, Optional, Protocol, Set, Tuple
from urllib.parse import unquote

__all__ = ["ChannelStore", "Message", "Subscriber", "frame", "http_date", "parse_cursor"]

#: A `(time, tag)` cursor: messages strictly after it are newer.
Cursor = Tuple[int, int]


@dataclass
class Message:
    id: int
    channel: str
    tag: int
    epoch: int
    stored_at: float
    text: str  # the rendered envelope

    def after(self, cursor: Optional[Cursor]) -> bool:
        return cursor is None or (self.epoch, self.tag) > cursor


def http_date(epoch: float) -> str:
    return formatdate(epoch, usegmt=True)


def _render(msg_id: int, channel: str, body: str, tag: int, epoch: int) -> str:
    # Plain text substitution, no escaping, exactly like push_stream_message_template.
    return (
        f'{{"id":{msg_id},"channel":"{channel}","message":{body},'
        f'"tag":"{tag}","time":"{http_date(epoch)}"}}'
    )


def frame(text: str) -> bytes:
    """One unmasked FIN text frame, pre-encoded (so the benchmark measures the client, not us)."""
    payload = text.encode("utf-8")
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x81, 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 127, n)
    return head + payload


def parse_cursor(query: Dict[str, str]) -> Optional[Cursor]:
    """The module's rule: `time` URI-unescaped (no `+` decoding) then parsed; tag `W/` stripped, abs()."""
    text = unquote(query.get("time", ""))
    if not text:
        return None
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if "+" in text or parsed is None:
        return None
    tag_text = unquote(query.get("tag", ""))
    if not tag_text:
        return (int(parsed.timestamp()), 1 << 62)  # time without tag skips that whole second
    tag_text = tag_text[2:] if tag_text.startswith("W/") else tag_text
    try:
        tag = abs(int(tag_text))
    except ValueError:
        tag = 0
    return (int(parsed.timestamp()), tag)


class Subscriber:
    """One WebSocket or waiting long poll: the channels it wants and how to hand it a message."""

    def __init__(self, channels: List[str], deliver: Callable[[Message], None]) -> None:
        self.channels = set(channels)
        self.deliver = deliver


class StoreSettings(Protocol):
    """The server's knobs the store reads at each use (tests change them at run time)."""

    clock: Callable[[], float]
    store_size: int
    message_ttl: float
    channel_gc_after: float
    reorder: bool
    collected: List[str]


class ChannelStore:
    """Every channel's stored messages and ids, the global tag, and the current subscribers."""

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        self.reset()

    def reset(self) -> None:
        """Forget everything, as nginx does on restart (its shared memory is gone: ids start at 1)."""
        self.messages: Dict[str, Deque[Message]] = {}
        self.ids: Dict[str, int] = {}
        self._active: Dict[str, float] = {}  # channel -> clock() of its last publish or subscribe
        self._tag_second = -1
        self._tag = 0
        self.subscribers: Set[Subscriber] = set()
        self._held: Optional[Message] = None

    def subscriber_count(self, channel: str) -> int:
        return sum(1 for sub in self.subscribers if channel in sub.channels)

    def _next_tag(self, epoch: int) -> int:
        if epoch != self._tag_second:
            self._tag_second, self._tag = epoch, 0
        self._tag += 1
        return self._tag

    def collect(self, channel: str, now: float) -> bool:
        """Forget `channel` if the module's cleanup would: True if it did."""
        if channel not in self.ids:
            return False
        store = self.messages.get(channel)
        if store:
            cutoff = now - self.settings.message_ttl
            while store and store[0].stored_at < cutoff:
                store.popleft()  # expired: the module's buffer cleanup frees them the same way
            if store:
                return False
        if now - self._active.get(channel, now) < self.settings.channel_gc_after:
            return False
        if any(channel in sub.channels for sub in self.subscribers):
            return False
        self.messages.pop(channel, None)
        self.ids.pop(channel, None)
        self._active.pop(channel, None)
        self.settings.collected.append(channel)
        return True

    def subscribe(self, sub: Subscriber) -> None:
        """Register a WebSocket or waiting long poll; subscribing is activity for its channels."""
        now = self.settings.clock()
        for channel in sub.channels:
            self.collect(channel, now)
            self._active[channel] = now
        self.subscribers.add(sub)

    def store_message(self, channel: str, body: str) -> Message:
        now = self.settings.clock()
        self.collect(channel, now)
        self._active[channel] = now
        epoch = int(now)
        msg_id = self.ids.get(channel, 0) + 1
        self.ids[channel] = msg_id
        tag = self._next_tag(epoch)
        msg = Message(msg_id, channel, tag, epoch, now, _render(msg_id, channel, body, tag, epoch))
        store = self.messages.setdefault(channel, collections.deque())
        store.append(msg)
        while len(store) > self.settings.store_size:
            store.popleft()
        return msg

    def publish(self, channel: str, body: str) -> Message:
        msg = self.store_message(channel, body)
        if self.settings.reorder:
            held, self._held = self._held, None
            if held is None:
                self._held = msg
                loop = asyncio.get_running_loop()
                loop.call_later(0.05, self._release, msg)
                return msg
            self._fanout(msg)
            self._fanout(held)
            return msg
        self._fanout(msg)
        return msg

    def _release(self, msg: Message) -> None:
        if self._held is msg:
            self._held = None
            self._fanout(msg)

    def _fanout(self, msg: Message) -> None:
        for sub in list(self.subscribers):
            if msg.channel in sub.channels:
                sub.deliver(msg)

    def blast(self, channel: str, count: int, body: str) -> None:
        """Store `count` messages and write them to each WebSocket subscriber as one write of pre-encoded frames."""
        frames: Dict[Subscriber, List[bytes]] = collections.defaultdict(list)
        for _ in range(count):
            msg = self.store_message(channel, body)
            data = frame(msg.text)
            for sub in self.subscribers:
                if channel in sub.channels and hasattr(sub.deliver, "raw"):
                    frames[sub].append(data)
        for sub, chunks in frames.items():
            sub.deliver.raw(b"".join(chunks))  # type: ignore[attr-defined]

    def delete(self, channel: str, body: Optional[str]) -> bool:
        self.collect(channel, self.settings.clock())  # a collected channel is not there to delete (404)
        if channel not in self.ids:
            return False
        text = body if body else "Channel deleted"
        deleted = (
            f'{{"id":-2,"channel":"{channel}","message":{text},"tag":"0",'
            f'"time":"Thu, 01 Jan 1970 00:00:00 GMT"}}'
        )
        self.messages.pop(channel, None)
        self.ids.pop(channel, None)
        self._active.pop(channel, None)
        for sub in list(self.subscribers):
            if channel in sub.channels:
                sub.deliver(Message(-2, channel, 0, 0, 0.0, deleted))
                sub.channels.discard(channel)
        return True

    def backlog(self, channels: List[Tuple[str, Optional[int]]], cursor: Optional[Cursor]) -> List[Message]:
        """Stored messages newer than the cursor, grouped per channel in URL order (`.bN` wins)."""
        cutoff = self.settings.clock() - self.settings.message_ttl
        out: List[Message] = []
        for name, backtrack in channels:
            stored = [m for m in self.messages.get(name, ()) if m.stored_at >= cutoff]
            if backtrack is not None:
                out.extend(stored[-backtrack:] if backtrack else [])
            elif cursor is not None:
                out.extend(m for m in stored if m.after(cursor))
        return out
