"""Gap fill after a reconnect (or a restart from a checkpoint): missed room messages fetched, the rest reported.

DDP replays nothing. Per subscription, when it is ready again on a new link:

- a room (`stream-room-messages` `<rid>`) is filled with `loadMissedMessages`
  since the newest message delivered (`loadHistory` pages on servers without
  it), and older messages changed meanwhile (edits, reactions, thread
  counts) come from `messages/get(rid, {lastUpdate})` behind them; a room
  subscribed before any message was seen gets a starting point from
  `loadHistory(rid, null, 1)` as soon as it is ready, so a quiet room loses
  nothing either;
- `__my_messages__` (every room of the user) lists the rooms with `rooms/get`
  and fills each the same way, from its newest delivered message, or from the
  newest message or room change known when the subscription started;
- room and subscription changes are recovered by `sync.ChangeLog`;
- `<rid>/deleteMessage` asks `messages/get(rid, {lastUpdate})` for the
  deletions since the newest server time seen, delivered as the stream's own
  `[{"_id"}]` events (repeats dropped); a server without it is a gap;
- typing and user activity are ephemeral (nothing to recover);
- anything else (notifications, presence, ...) cannot be
  fetched again: an `rtsync.gap` event says so.

Live messages of a room being filled wait behind its fill, so delivery stays in
order; repeats are dropped on `_id` + `_updatedAt`. Gap data: `channel`,
`missing` (a count, or None when unknown), `reason`, plus `room` and `since`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

from ...errors import ProtocolError
from ...events import GAP, Event
from ...sansio import BoundedSet, Output, Report, Send
from .ejson import decode_ejson, encode_date
from .failures import call_error, code_of
from .event import QuickMeetEvent

__all__ = ["DELETE_MESSAGE", "GapFill", "MY_MESSAGES", "ROOM_MESSAGES", "message_problem", "ms_of"]

PROVIDER = "quickmeet"
ROOM_MESSAGES = "stream-room-messages"
MY_MESSAGES = "__my_messages__"
#: stream events that only tell the present state (a typing flag): nothing to recover after a drop
EPHEMERAL = ("/typing", "/user-activity")
DELETE_MESSAGE = "/deleteMessage"
NO_EDITS = ("the server has no messages/get, so edits and reactions made while disconnected to messages "
            "older than the newest one seen cannot be fetched")


def gap(channel: str, reason: str, *, missing: Optional[int] = None, **extra: Any) -> Event:
    return QuickMeetEvent.make(GAP, provider=PROVIDER, channel=channel,
                               data={"channel": channel, "missing": missing, "reason": reason, **extra})


class GapFill:
    """The gap-fill half of `QuickMeetProtocol` (a mixin: it shares the protocol's state)."""

    history_page: int
    history_pages: int
    fill_timeout: float
    missed_method: bool
    edits_method: bool
    _last_seen: Dict[str, int]
    _my_since: Optional[int]
    _seen: BoundedSet[Tuple[str, Any]]
    _done_ids: Set[str]
    _deleted: BoundedSet[str]
    _filling: Dict[str, List[Dict[str, Any]]]
    _fill_pages: Dict[str, List[List[Dict[str, Any]]]]
    _fill_channel: Dict[str, str]
    _fill_due: Optional[float]
    _my_held: Optional[List[Dict[str, Any]]]

    if TYPE_CHECKING:  # provided by the class this is mixed into
        def _internal_call(self, purpose: str, context: Any, method: str, params: List[Any]) -> Send:
            raise NotImplementedError  # QuickMeetProtocol's

        def _bad(self, what: str, text: str) -> Report:
            raise NotImplementedError  # QuickMeetProtocol's

        def _room_channels(self) -> Set[str]:
            raise NotImplementedError  # QuickMeetProtocol's: the rooms with a sub of their own

    # -- starting points -----------------------------------------------------
    def _baseline_room(self, rid: str) -> Send:
        return self._internal_call("baseline", rid, "loadHistory", [rid, None, 1])

    def _baselined_room(self, rid: str, result: Any) -> List[Output]:
        messages = result.get("messages") if isinstance(result, dict) else None
        newest = max((ms_of(m.get("ts")) or 0 for m in messages if isinstance(m, dict)), default=0) \
            if isinstance(messages, list) else None
        if newest is not None:
            self._last_seen[rid] = max(self._last_seen.get(rid, 0), newest)
        return []

    def _baselined_mine(self, result: Any) -> List[Output]:
        rooms = result if isinstance(result, list) else []
        stamps = [ms_of(room.get(key)) or 0 for room in rooms if isinstance(room, dict) for key in ("lm", "_updatedAt")]
        known = max([*stamps, *self._last_seen.values()], default=None)
        if known is not None:  # none (no rooms yet): the first message seen becomes the point
            self._my_since = max(self._my_since or 0, known)
        return []

    # -- fills ----------------------------------------------------------------
    def _fill_room(self, rid: str, channel: str, now: float) -> List[Output]:
        if rid in self._filling:
            return []
        self._filling[rid] = []
        self._fill_pages[rid] = []
        self._fill_channel[rid] = channel
        self._fill_due = now + self.fill_timeout
        return [self._missed_call(rid) if self.missed_method else self._history_call(rid, None)]

    def _fill_mine(self, now: float) -> List[Output]:
        self._my_held = []  # live __my_messages__ wait until we know which rooms are being filled
        self._fill_due = now + self.fill_timeout
        return [self._internal_call("my-rooms", now, "rooms/get", [])]

    def _my_rooms(self, result: Any, error: Any, now: float) -> List[Output]:
        held, self._my_held = self._my_held or [], None
        out: List[Output] = []
        if error is not None or not isinstance(result, list):
            why = f"rooms/get failed: {call_error('rooms/get', error)}" if error is not None else \
                "the rooms/get answer is not a list"
            out.append(gap(MY_MESSAGES, f"{why}; messages sent while disconnected may be missing"))
        else:
            own = self._room_channels()
            for room in result:
                rid = room.get("_id") if isinstance(room, dict) else None
                if not isinstance(rid, str) or rid in own:
                    continue  # a room with a sub of its own fills itself
                if rid not in self._last_seen:
                    self._last_seen[rid] = self._my_since or 0
                out += self._fill_room(rid, MY_MESSAGES, now) + self._edits_call(rid, MY_MESSAGES)
            if not self.edits_method:
                out.append(gap(MY_MESSAGES, NO_EDITS))
        for message in held:
            rid = str(message.get("rid"))
            if rid in self._filling:
                self._filling[rid].append(message)
            else:
                out += self._deliver_messages(rid, [message], MY_MESSAGES)
        return out

    def _missed_call(self, rid: str) -> Send:
        # `ts > start` in whole milliseconds: one earlier, so a message sharing the last seen one's
        # millisecond comes too (`_seen` drops the ones we have).
        return self._internal_call("missed", rid, "loadMissedMessages", [rid, encode_date(self._last_seen[rid] - 1)])

    def _history_call(self, rid: str, end: Optional[int]) -> Send:
        return self._internal_call("history", rid, "loadHistory", [
            rid, encode_date(end) if end is not None else None, self.history_page, encode_date(self._last_seen[rid])])

    def _missed_messages(self, rid: str, result: Any, error: Any) -> List[Output]:
        if error is not None and code_of(error) == 404:  # "Method 'loadMissedMessages' not found"
            self.missed_method = False
            return [self._history_call(rid, None)]
        if error is not None:
            return self._end_fill(rid, [], "loadMissedMessages failed: " + str(call_error("loadMissedMessages", error)))
        if not isinstance(result, list):
            return self._end_fill(rid, [], "no access to the room's history")
        # Non-objects among the messages are reported by _deliver_messages, not silently dropped.
        return self._end_fill(rid, [result], None)

    def _missed(self, message: Dict[str, Any], since: int) -> bool:
        # `>=`: messages sharing the last seen millisecond may still be new; `_seen` tells them apart.
        return ((ms_of(message.get("ts")) or 0) >= since and version_of(message) not in self._seen
                and str(message.get("_id")) not in self._done_ids)

    def _history(self, rid: str, result: Any, error: Any) -> List[Output]:
        since = self._last_seen.get(rid, 0)
        pages = self._fill_pages.pop(rid, [])
        if error is not None:
            reason: Optional[str] = "loadHistory failed: " + str(call_error("loadHistory", error))
        elif not isinstance(result, dict):
            reason = "no access to the room's history"
        elif not isinstance(result.get("messages") or [], list):
            reason = "the loadHistory answer's messages are not a list"
        else:
            page = list(result.get("messages") or [])
            pages.append(page)
            good = [m for m in page if message_problem(m) is None]  # _end_fill reports the others
            reason = None
            if good and len(page) >= self.history_page and all(self._missed(m, since) for m in good):
                stamps = [ms_of(m.get("ts")) or 0 for m in good]
                if min(stamps) == max(stamps):
                    reason = f"more than {self.history_page} messages share one millisecond"
                elif len(pages) < self.history_pages:
                    # The server pages by `ts < end` in whole milliseconds, so ending one past this page's
                    # oldest fetches that millisecond again (deduplicated) instead of skipping the rest of it.
                    self._fill_pages[rid] = pages
                    return [self._history_call(rid, min(stamps) + 1)]
                else:
                    reason = f"more than {self.history_page * self.history_pages} messages were missed"
        return self._end_fill(rid, pages, reason)

    def _end_fill(self, rid: str, pages: List[List[Dict[str, Any]]], reason: Optional[str]) -> List[Output]:
        """Deliver what the fill found (pages newest first), then the live messages held meanwhile."""
        since = self._last_seen.get(rid, 0)
        self._fill_pages.pop(rid, None)
        channel = self._fill_channel.pop(rid, rid)
        missed: Dict[Any, Dict[str, Any]] = {}
        bad: List[Any] = []  # left to _deliver_messages to report
        for page in reversed(pages):  # oldest page first; each page is newest first
            for m in reversed(page):
                if message_problem(m) is not None:
                    bad.append(m)
                elif self._missed(m, since):
                    missed.setdefault(version_of(m)[0], m)
        out = self._deliver_messages(rid, [*missed.values(), *bad, *self._filling.pop(rid, [])], channel)
        if reason:
            out.insert(0, gap(channel, reason, room=rid, since=encode_date(since)))
        return out

    def _fill_timed_out(self) -> List[Output]:
        # Held live messages must not wait for ever on an answer that may never come.
        reason = f"the server did not answer the gap fill within {self.fill_timeout:g} s"
        out = [o for rid in list(self._filling) for o in self._end_fill(rid, [], reason)]
        if self._my_held is not None:
            out += self._my_rooms(None, {"error": "timeout", "reason": reason}, 0.0)
        return out

    def _edits_call(self, rid: str, channel: str) -> List[Output]:
        """Edits, reactions and thread counts of older messages changed since the newest seen: `messages/get`."""
        if not self.edits_method:
            return [gap(channel, NO_EDITS, room=rid)] if channel == rid else []  # __my_messages__: said once
        return [self._internal_call("edits", (rid, channel), "messages/get",
                                    [rid, {"lastUpdate": encode_date(self._last_seen[rid] - 1)}])]

    def _edits(self, context: Tuple[str, str], result: Any, error: Any) -> List[Output]:
        rid, channel = context
        updated = result.get("updated") if isinstance(result, dict) else None
        if error is not None and code_of(error) == 404:
            if not self.edits_method and channel != rid:
                return []  # the first room's answer said it for all of __my_messages__
            self.edits_method = False
            return [gap(channel, NO_EDITS, room=rid)]
        if error is not None or not isinstance(updated, list):
            why = f"messages/get failed: {call_error('messages/get', error)}" if error is not None else \
                "the messages/get answer has no list of updated messages"
            return [gap(channel, f"{why}; edits of older messages made while disconnected may be missing",
                        room=rid)]
        # An unedited message an earlier process delivered (a checkpoint's) is no news.
        good = sorted((m for m in updated if message_problem(m) is None
                       and not (str(m.get("_id")) in self._done_ids and not m.get("editedAt"))),
                      key=lambda m: version_of(m)[1] or 0)
        bad = [m for m in updated if message_problem(m) is not None]
        if rid in self._filling:  # after the missed messages, in order (repeats of them are dropped)
            self._filling[rid].extend(good + bad)
            return []
        return self._deliver_messages(rid, [*good, *bad], channel)

    def _deleted_since(self, channel: str, result: Any, error: Any) -> List[Output]:
        """The deletions a `messages/get` fill found, as the `<rid>/deleteMessage` events we missed."""
        deleted = result.get("deleted") if isinstance(result, dict) else None
        if error is not None or not isinstance(deleted, list):
            why = f"messages/get failed: {call_error('messages/get', error)}" if error is not None else \
                "the messages/get answer has no list of deleted messages"
            return [gap(channel, f"{why}; messages deleted while disconnected may be missing",
                        stream="stream-notify-room")]
        out: List[Output] = []
        for item in reversed(deleted):  # newest first on the wire
            ident = item.get("_id") if isinstance(item, dict) else None
            if isinstance(ident, str) and self._deleted.add(ident):
                out.append(QuickMeetEvent.make("stream-notify-room", provider=PROVIDER, channel=channel,
                                               data=[{"_id": ident}]))
        return out

    # -- delivery -------------------------------------------------------------
    def _deliver_messages(self, rid: str, messages: List[Any], channel: str,
                          raw: Optional[str] = None) -> List[Output]:
        """Events for the messages not seen yet; ill-typed ones are skipped (one Report), never their siblings.

        `raw` is the frame of a live message (its event keeps it); a fill's messages came in a
        method's answer, and their events have none."""
        out: List[Output] = []
        bad: List[str] = []
        for message in messages:
            problem = message_problem(message)
            if problem is None:
                try:
                    data = decode_ejson(message)
                except ProtocolError as exc:
                    problem = str(exc)
            if problem is not None:
                bad.append(problem)
                continue
            if not self._seen.add(version_of(message)):
                continue  # the same version of a message again (gap fill overlapping live delivery)
            ts = ms_of(message.get("ts"))
            if ts is not None and ts > self._last_seen.get(rid, 0):
                self._last_seen[rid] = ts
            if ts is not None and channel == MY_MESSAGES and ts > (self._my_since or 0):
                self._my_since = ts
            ident = message.get("_id")
            out.append(QuickMeetEvent.make(
                ROOM_MESSAGES, provider=PROVIDER, channel=channel, data=[data], raw=raw,
                id=ident if isinstance(ident, (str, int)) and not isinstance(ident, bool) else None))
        if bad:
            what = f"{len(bad)} of {len(messages)} messages in {rid!r}" if len(messages) > 1 else "a message"
            if raw is not None:
                out.append(self._bad(f"{what}: {bad[0]}", raw))
            else:
                out.append(Report(ProtocolError(f"skipped {what}: {bad[0]}")))
        return out


def version_of(message: Dict[str, Any]) -> Tuple[str, Any]:
    return str(message.get("_id")), ms_of(message.get("_updatedAt")) or ms_of(message.get("ts"))


def ms_of(value: Any) -> Optional[int]:
    if isinstance(value, dict):
        value = value.get("$date")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return int(value)
    return None


def message_problem(message: Any) -> Optional[str]:
    """Why a room message cannot be used (None if it can): its identity and time must be well typed."""
    if not isinstance(message, dict):
        return f"a message that is a {type(message).__name__}, not an object"
    ident = message.get("_id")
    if ident is not None and not isinstance(ident, (str, int)) or isinstance(ident, bool):
        return f"a message whose _id is a {type(ident).__name__}"
    for key in ("ts", "_updatedAt"):
        value = message.get(key)
        if value is not None and ms_of(value) is None:
            return f"a message whose {key} is not a date"
    return None
