"""What survives Dashly reconnects: the cursor, per-channel dedupe windows, channel resets and gaps (sans-I/O)."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from ...errors import ProtocolError
from ...events import Event
from ...sansio import BoundedSet, Output, Report, json_object
from .cursor import CHANNEL_DELETED, PING, PROVIDER, Cursor, DashlyEvent
from .envelope import (
    EPOCHS as _EPOCHS,
    MAX_COUNTER,
    Poison,
    counter,
    epoch_of,
    format_http_date,
    iter_envelopes,
    message_id,
    read_fields,
    salvage_key,
    shown,
)
from .window import Channel, digest, fits, gap_event

__all__ = ["DashlyState"]

#: False sends every message through `_one` (the general path); tests compare the two
FAST_PATH = True
_new, _set = object.__new__, object.__setattr__

_DELETED_CHANNEL_RE = re.compile(r'"channel"\s*:\s*"([^"]*)"')
#: a poison message's own (time, tag) moves the cursor only this far past the newest good one
_SALVAGE_SLACK = 3600


class DashlyState:
    """What survives reconnects: the cursor, per-channel dedupe windows and pending gaps.

    `accept()` is shared by every transport: it turns one body (one frame or
    one HTTP response) into events, keeping the cursor and dedupe up to date.

    Channel resets. A channel's ids restart at 1 when it is deleted, garbage
    collected (no stored message, no subscriber, 30 s idle) or the server
    restarts; a restart also restarts the per-second tag, so a new message can
    carry the very `(id, time, tag)` of one delivered before. The module hands
    out id and tag together under one lock, so within one life of a channel a
    higher id always has a newer `(time, tag)`, and a repeat is the same stored
    text. Hence a message is a repeat only if its `(channel, id)` was delivered
    with the same time, tag and text; a known id with another time, tag or text,
    or an id below the highest one whose `(time, tag)` is not older than the
    highest one's, proves the channel restarted. Then the ids of the old life
    still missing are reported as `rtsync.gap` at once (they can no longer be
    fetched), and the new life starts from this message, keeping what is
    provably part of it (what came on its link or response, in id and tag order
    with it). A higher id with a newer `(time, tag)` from another link is only
    presumed part of it: after a restart within the same second the old life's
    higher ids look exactly so, and the new life's own message under such an id
    replaces it without being taken for one more restart (which would report
    the new life's ids still in grace, or already delivered, as lost). A repeat
    of a delivered message is remembered as seen on its latest link, so a
    repeat in the same response as the new life's ids stays in that life. A
    restart whose first message is not newer than the
    cursor (the server's tags count from 1 again) pulls the cursor back to its
    second, so the next resume asks for the whole new life; polling also
    asks for its cursor's whole second again after any failure.
    """

    #: ids remembered per channel for dedupe; older repeats are dropped by id alone.
    window = 2048

    def __init__(self, channels: Sequence[str], *, gap_grace: float = 2.0) -> None:
        self.channels = list(channels)
        self.gap_grace = gap_grace
        self._removed: Set[str] = set()  # channels dropped while running: their late messages are not ours
        self._added: Set[str] = set()  # channels added while running, not yet in a request
        self._max: Optional[Tuple[int, int]] = None  # newest (epoch, tag) over ids > 0
        self._max_time = ""
        self._channels: Dict[str, Channel] = {}
        self.generation = 0  # one per link (WebSocket) or response (polling): a life can only end between
        self.resets = 0
        self._poisoned: BoundedSet[int] = BoundedSet(256)  # digests of messages reported as undecodable

    def new_link(self) -> None:
        """A new link or response begins: a channel can only have restarted before it."""
        self.generation += 1

    @property
    def cursor(self) -> Optional[Cursor]:
        return None if self._max is None else Cursor(self._max[0], self._max[1], self._max_time)

    def set_channels(self, channels: Sequence[str]) -> None:
        """Subscribe to `channels` from the next connection on; what a removed channel still
        sends on the old link is dropped, and its dedupe window is forgotten."""
        channels = list(channels)
        gone = set(self.channels) - set(channels)
        self._removed = (self._removed | gone) - set(channels)
        for name in gone:
            self._channels.pop(name, None)
        self.channels = channels

    def lower(self, cursor: Optional[Cursor]) -> None:
        """Move the cursor back to `cursor` if it is older (a channel joined from a connection that was
        behind this one): the next resume re-asks from there and the dedupe drops what was seen."""
        if cursor is not None and self._max is not None and (cursor.epoch, cursor.tag) < self._max:
            self._max, self._max_time = (cursor.epoch, cursor.tag), cursor.time

    def take(self, name: str) -> Optional[object]:
        """Hand over channel `name`'s dedupe state (to move it to another connection's state)."""
        return self._channels.pop(name, None)

    def put(self, name: str, channel: Optional[object]) -> None:
        if isinstance(channel, Channel):
            self._channels[name] = channel
        elif name not in self._channels and self._max is not None:
            self._channel(name).since = self._max
            self._added.add(name)

    def asking(self) -> None:
        """A request (or handshake) carrying the channel list is being made: channels added since
        the last one start from what has been read so far (see `Channel.since`)."""
        if self._added:
            for name in self._added:
                ch = self._channels.get(name)
                if ch is not None and ch.since is not None and self._max is not None:
                    ch.since = max(ch.since, self._max)
            self._added.clear()

    def advance(self, cursor: Optional[Cursor]) -> None:
        if cursor is not None and (self._max is None or (cursor.epoch, cursor.tag) > self._max):
            self._max, self._max_time = (cursor.epoch, cursor.tag), cursor.time

    # -- persistence (FileCheckpoint) -------------------------------------
    def snapshot(self) -> Dict[str, Any]:
        cursor = self.cursor
        return {
            "cursor": cursor.to_json() if cursor else None,
            "channels": {
                name: sorted(ch.seen)[-256:] for name, ch in self._channels.items() if ch.seen
            },
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        if data.get("cursor"):
            self.advance(Cursor.from_json(data["cursor"]))
        for name, ids in (data.get("channels") or {}).items():
            ch = self._channel(name)
            ch.seen.update((int(i), None) for i in ids)
            ch.high = max(ch.seen, default=0)
            ch.floor = min(ch.seen, default=1) - 1
            ch.high_key, ch.high_exact = self._max, False

    def _channel(self, name: str) -> Channel:
        ch = self._channels.get(name)
        if ch is None:
            ch = self._channels[name] = Channel()
        return ch

    # -- decoding ----------------------------------------------------------
    def accept(self, text: str, now: float) -> List[Output]:
        """Events (and Reports) for one frame or body; each message is decoded on its own."""
        envelope = json_object(text)  # a WebSocket frame is exactly one envelope: the fast path
        if type(envelope) is dict:
            if FAST_PATH:
                # The common message, decided here rather than by `_one` (written out: a call
                # costs as much as several of these checks): well-formed fields, the next id
                # of a known channel. What `_one` and `_fresh` do for it reduces to this: only
                # an id below the highest one, or a known one, proves a restart; no id is
                # skipped; a channel's `since` only drops ids below the highest one, or on a
                # channel with none yet; every id remembered is below this one. Anything else,
                # valid or not, goes to `_one`: nothing is changed before the last check.
                msg_id = envelope.get("id")
                if type(msg_id) is str and msg_id.isdigit() and msg_id.isascii() and len(msg_id) < 19:
                    msg_id = int(msg_id)
                channel: Any = envelope.get("channel")
                ch = self._channels.get(channel) if type(channel) is str else None
                time_text = envelope.get("time")
                tag = envelope.get("tag")
                if type(tag) is str and tag.isdigit() and tag.isascii() and len(tag) < 19:
                    tag = int(tag)
                if (
                    ch is not None and type(msg_id) is int and msg_id - 1 == ch.high > 0
                    and msg_id <= MAX_COUNTER and msg_id not in ch.seen
                    and type(tag) is int and 0 <= tag <= MAX_COUNTER
                    and type(time_text) is str and (epoch := _EPOCHS.get(time_text)) is not None
                    and not (self._removed and channel in self._removed)
                ):
                    # digest(), written out; a second's first time text went through epoch_of()
                    text_hash = hash(text) if text[0] == "{" and text[-1] == "}" else hash(text.strip())
                    key = (epoch, tag)
                    ch.high, ch.high_key, ch.high_exact = msg_id, key, True
                    seen = ch.seen
                    seen[msg_id] = (epoch, tag, text_hash, self.generation)
                    if len(seen) > 2 * self.window:
                        self._trim(ch)
                    newest = self._max
                    if newest is None or key > newest:
                        self._max, self._max_time = key, time_text
                    return [_event(envelope, channel, msg_id, text, tag, time_text)]
            out: List[Output] = []
            self._contained(envelope, text, now, out)
            return out
        out = []
        for envelope, raw in iter_envelopes(text):
            if type(envelope) is dict:
                self._contained(envelope, raw, now, out)
            elif envelope is None:
                out.extend(self._unparsed(raw))
            else:
                report = self._poison(raw, f"a JSON {type(envelope).__name__}, not a message object")
                out.extend([report] if report else [])
        return out

    def _contained(self, envelope: Dict[str, Any], raw: str, now: float, out: List[Output]) -> None:
        try:
            self._one(envelope, raw, now, out)
        except Poison as exc:
            report = self._poison(raw, str(exc), envelope)
        except Exception as exc:  # last resort: one message, one report, the rest of the body goes on
            report = self._poison(raw, f"{type(exc).__name__} while decoding", envelope)
        else:
            return
        if report is not None:
            out.append(report)

    def _poison(self, raw: str, why: str, envelope: Optional[Dict[str, Any]] = None) -> Optional[Report]:
        """The one Report for a message we cannot accept; the cursor moves past it if its place is known."""
        key = None
        if envelope is not None and type(envelope.get("time")) is str:
            try:
                epoch = epoch_of(envelope["time"])
                if epoch is not None:
                    key = (epoch, counter(envelope.get("tag"), "tag"), envelope["time"])
            except Poison:
                pass
        if key is None and envelope is None:
            key = salvage_key(raw)
        if key is not None and self._max is not None and 0 < key[0] <= self._max[0] + _SALVAGE_SLACK:
            self.advance(Cursor(*key))
        if not self._poisoned.add(digest(raw)):
            return None  # replayed by a resume or a confirming poll: reported once already
        return Report(ProtocolError(f"skipped a Dashly message ({why}): {shown(raw)}"))

    def _one(self, envelope: Dict[str, Any], raw: str, now: float, out: List[Output]) -> None:
        msg_id = message_id(envelope)
        if msg_id <= 0:
            out.extend(self._reserved(msg_id, envelope, raw))
            return
        msg_id, channel, epoch, tag, time_text = read_fields(envelope, msg_id)
        if self._removed and channel in self._removed:
            return  # unsubscribed meanwhile: the old link's last words
        key = (epoch, tag)
        if not self._fresh(channel, msg_id, key, digest(raw), now, out):
            return
        if self._max is None or key > self._max:
            self._max, self._max_time = key, time_text
        out.append(_event(envelope, channel, msg_id, raw, tag, time_text))

    def _fresh(
        self, name: str, msg_id: int, key: Tuple[int, int], digest: int, now: float, out: List[Output]
    ) -> bool:
        """Dedupe by (channel, id, what was delivered under it) and track gaps; False means drop."""
        ch = self._channels.get(name) or self._channel(name)
        if ch.since is not None and key <= ch.since and (not ch.high or msg_id < ch.high):
            return False  # published before the channel was added (see Channel.since)
        mark = (key[0], key[1], digest, self.generation)
        if msg_id in ch.seen:
            known = ch.seen[msg_id]
            if known is None:
                if ch.high_key is None or key <= ch.high_key:
                    return False  # restored from a checkpoint: a repeat by id
                ch = self._restarted(name, ch, msg_id, key, now, out)
            elif known[:3] == mark[:3]:
                if known[3] != mark[3]:
                    ch.seen[msg_id] = mark  # seen on this link too: it belongs to the life this link sees
                return False  # the same stored message again
            elif msg_id in ch.carried and fits(ch, msg_id, key):
                # The id was only presumed to be this life's (a same-second restart gives the old
                # life's higher ids higher tags too): this is this life's message under it.
                ch.carried.discard(msg_id)
                ch.missing.pop(msg_id, None)
            else:
                ch = self._restarted(name, ch, msg_id, key, now, out)
        elif msg_id < ch.high and ch.high_key is not None and (
            key > ch.high_key or (key == ch.high_key and ch.high_exact)
        ):
            ch = self._restarted(name, ch, msg_id, key, now, out)
        elif msg_id < ch.high:
            if msg_id <= max(ch.floor, ch.high - self.window):
                return False  # older than our window: certainly delivered before
            ch.missing.pop(msg_id, None)  # a late arrival filling a hole
        if msg_id > ch.high:
            if ch.high and msg_id > ch.high + 1:
                for missing in range(ch.high + 1, min(msg_id, ch.high + self.window)):
                    ch.missing[missing] = now
            ch.high, ch.high_key, ch.high_exact = msg_id, key, True
        ch.seen[msg_id] = mark
        if len(ch.seen) > 2 * self.window:
            self._trim(ch)
        return True

    def _trim(self, ch: Channel) -> None:
        """Forget the ids a window below the highest: their repeats are dropped by id alone."""
        floor = ch.high - self.window
        ch.seen = {i: m for i, m in ch.seen.items() if i > floor}
        ch.carried = {i for i in ch.carried if i > floor}

    def _restarted(
        self, name: str, old: Channel, msg_id: int, key: Tuple[int, int], now: float, out: List[Output]
    ) -> Channel:
        """Channel `name` started a new life at `msg_id`: report what the old one still owed, keep
        what provably belongs to the new one (same link and in id/tag order with this message, or
        newer by both), and expect the new life's lower ids."""
        self.resets += 1
        if self._max is not None and key <= self._max:
            # A new life not newer than the cursor: the server restarted within the cursor's
            # second and counts tags from 1 again. Resume from the start of that second.
            self._max, self._max_time = (key[0], 0), format_http_date(key[0])
        if old.missing:
            late = sorted(old.missing)
            out.append(gap_event(name, late, "the channel restarted (server restart, or deleted or expired "
                                             "on the server) before these messages were received"))
        ch = self._channels[name] = Channel()
        # The message this one contradicts is of an older life, and so is everything that came on
        # its link or response (a life can only end between them). What came on this message's
        # own is of the new life; a higher id with a newer (time, tag) from another link is only
        # presumed to be (carried): a restart within the same second makes the old life's look so.
        replaced = old.seen.get(msg_id)
        old_generation = None if replaced is None or msg_id in old.carried else replaced[3]
        for i, m in old.seen.items():
            if m is None or i == msg_id or m[3] == old_generation:
                continue
            mkey = (m[0], m[1])
            if m[3] == self.generation:
                keep = (i < msg_id and mkey < key) or (i > msg_id and mkey > key)
                carried = False
            else:
                keep = i > msg_id and mkey > key
                carried = True
            if keep:
                ch.seen[i] = m
                if carried:
                    ch.carried.add(i)
                if i > ch.high:
                    ch.high, ch.high_key = i, mkey
        for i in range(1, min(max(msg_id, ch.high), self.window)):
            if i not in ch.seen and i != msg_id:
                ch.missing[i] = now
        return ch

    def due_gaps(self, now: float, force: bool = False) -> List[Output]:
        """`rtsync.gap` events for ids still missing `gap_grace` seconds after we noticed them."""
        out: List[Output] = []
        for name, ch in self._channels.items():
            if not ch.missing:
                continue
            late = sorted(i for i, t in ch.missing.items() if force or now - t >= self.gap_grace)
            if not late:
                continue
            for i in late:
                del ch.missing[i]
            out.append(gap_event(name, late, "message ids skipped and not recovered by resume "
                                             "(expired from the server's store, or lost in transit)"))
        return out

    def gap_deadline(self) -> Optional[float]:
        earliest: Optional[float] = None
        for ch in self._channels.values():  # asked before every read: no generator for channels with no gap
            if ch.missing:
                first = min(ch.missing.values())
                if earliest is None or first < earliest:
                    earliest = first
        return None if earliest is None else earliest + self.gap_grace

    def _reserved(self, msg_id: int, envelope: Mapping[str, Any], raw: str) -> List[Output]:
        if msg_id == -2:
            channel = envelope.get("channel", "")
            if type(channel) is not str:
                raise Poison("channel of a channel-deleted message is not a string")
            return self._deleted(channel, envelope.get("message"), raw)
        return []  # -1 ping (streaming only), -3 long-poll timeout, 0: liveness only

    def _unparsed(self, raw: str) -> List[Output]:
        compact = raw.replace(" ", "")
        if compact.startswith('{"id":-2'):
            found = _DELETED_CHANNEL_RE.search(raw)
            return self._deleted(found.group(1) if found else "", None, raw)
        if compact.startswith(('{"id":-1', '{"id":-3', '{"id":"-1"', '{"id":"-3"')):
            return []
        report = self._poison(raw, "not valid JSON, or nested too deep")
        return [report] if report else []

    def _deleted(self, channel: str, message: Any, raw: str) -> List[Output]:
        self._channels.pop(channel, None)  # its ids restart at 1 if it comes back
        return [Event.make(CHANNEL_DELETED, provider=PROVIDER, channel=channel, data=message, raw=raw)]


def _event(envelope: Dict[str, Any], channel: str, msg_id: int, raw: str, tag: int, time_text: str) -> DashlyEvent:
    """The event of an accepted message (both paths build it here; `Event.make`'s work, written out)."""
    event = _new(DashlyEvent)
    _set(event, "__dict__", {
        "name": PING if channel == "ping" else channel, "channel": channel, "data": envelope.get("message"),
        "id": msg_id, "provider": PROVIDER, "received_at": None, "raw": raw, "tag": tag, "time": time_text,
    })
    return event
