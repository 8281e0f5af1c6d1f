"""QuickMeet's streams, sans-I/O: subscriptions with their own parameters, `ready`/`nosub`, and `changed` events.

A mixin of `QuickMeetProtocol` (it shares the protocol's state). Subscriptions
survive links and are sent again, with the same ids and parameters, after every
login; a `nosub` rate limit (`too-many-requests`) sends the sub again after the
server's `timeToReset` instead of ending it. Events are routed on (collection,
eventName): all subs of one stream share the collection and id.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

from ...errors import ProtocolError, RateLimited, SubscriptionError
from ...sansio import Output, Reply, Report, Send
from .ejson import decode_ejson, encode_date, encode_ejson
from .failures import RATE_LIMITED, call_error, code_of, rate_limit_wait, short
from .fill import DELETE_MESSAGE, EPHEMERAL, MY_MESSAGES, PROVIDER, ROOM_MESSAGES, GapFill, gap, message_problem
from .event import QuickMeetEvent
from .fastpath import plain_message, plain_result
from .sync import ChangeLog, kind_of

__all__ = ["ENCODER", "StreamSub", "Streams", "dumps"]


_new, _set = object.__new__, object.__setattr__


# What `json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)` does, without
# building an encoder per frame (it keeps no state between calls, so threads may share it).
ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(value: Any) -> str:
    """A frame as compact JSON, Python values encoded as EJSON."""
    return ENCODER.encode(encode_ejson(value))


class StreamSub:
    __slots__ = ("id", "stream", "event_name", "args", "ready", "retry_at", "live_before")

    def __init__(self, sub_id: str, stream: str, event_name: str, args: List[Any]) -> None:
        self.id, self.stream, self.event_name, self.args = sub_id, stream, event_name, args
        self.ready = False
        self.live_before = False  # ready on an earlier link: it may have missed events since
        self.retry_at: Optional[float] = None  # rate limited: sent again then

    def frame(self) -> str:
        return dumps({"msg": "sub", "id": self.id, "name": self.stream,
                      "params": [self.event_name, {"useCollection": False, "args": self.args}]})


class Streams(GapFill):
    """Subscriptions and stream events of `QuickMeetProtocol`."""

    state: str
    subs: Dict[str, StreamSub]
    user_id: Optional[str]
    _relinked: bool
    _lossy: bool
    _changes: Dict[str, ChangeLog]
    #: stream events whose frame proves the EJSON walk needless skip it (`fastpath`); False: the walk for all
    fast_path = True

    if TYPE_CHECKING:  # provided by the class this is mixed into
        def _new_id(self, prefix: str) -> str:
            raise NotImplementedError  # QuickMeetProtocol's

        def _announce(self) -> List[Output]:
            raise NotImplementedError  # QuickMeetProtocol's

    def subscribe(self, stream: str, event_name: str, args: Optional[List[Any]] = None) -> Tuple[str, List[Output]]:
        """A stream subscription, kept for every later link; `Reply(id)` when ready or refused.

        `args` are the stream's own parameters (`{"token": visitorToken}` for livechat streams,
        `{"added": [uids]}` for `stream-user-presence`, whose event name is empty)."""
        if not event_name and stream != "stream-user-presence":
            raise SubscriptionError("event_name must not be empty (the server answers invalid-event-name)")
        args = list(args or [])
        dumps(args)  # TypeError now, in the caller, for what EJSON cannot carry
        for sub in self.subs.values():
            if (sub.stream, sub.event_name, sub.args) == (stream, event_name, args):
                return sub.id, ([Reply(sub.id, sub.id)] if sub.ready else [])
        sub = StreamSub(self._new_id("s"), stream, event_name, args)
        self.subs[sub.id] = sub
        # Before the login, nothing is sent: the login sends every registered sub anyway.
        return sub.id, ([Send(sub.frame())] if self.state == "ready" else [])

    def unsubscribe(self, sub_id: str) -> List[Output]:
        if self.subs.pop(sub_id, None) is None or self.state != "ready":
            return []
        return [Send(dumps({"msg": "unsub", "id": sub_id}))]

    # -- subscriptions -------------------------------------------------------
    def _room_channels(self) -> Set[str]:
        return {s.event_name for s in self.subs.values()
                if s.stream == ROOM_MESSAGES and not s.event_name.startswith("__")}

    def _ready(self, ids: List[Any], now: float) -> List[Output]:
        out: List[Output] = []
        for sub_id in ids:
            sub = self.subs.get(str(sub_id))
            if sub is not None and not sub.ready:
                sub.ready = True
                out.append(Reply(sub.id, sub.id))
                out += self._recover(sub, now)
                sub.live_before = True
        if self.state == "ready" and all(s.ready for s in self.subs.values()):
            out += self._announce()
        return out

    def _recover(self, sub: StreamSub, now: float) -> List[Output]:
        """What a sub ready (again) needs: a starting point, a fill, a sync, or a gap report."""
        relinked = self._relinked
        kind = kind_of(sub.stream, sub.event_name)
        if kind is not None:
            log = self._changes.setdefault(kind, ChangeLog(kind))
            return [self._sync_call(kind)] if not log.baselined and not log.pending else []
        if sub.stream == ROOM_MESSAGES and sub.event_name == MY_MESSAGES:
            if relinked and self._my_since is not None:
                return self._fill_mine(now)
            out: List[Output] = [self._internal_call("my-baseline", None, "rooms/get", [])]
            if sub.live_before:
                self._lossy = True
                out.insert(0, gap(MY_MESSAGES, "no message or room change was known before the link dropped, "
                                               "so there is no point to fill from"))
            return out
        if sub.stream == ROOM_MESSAGES and not sub.event_name.startswith("__"):
            rid = sub.event_name
            if rid in self._last_seen:
                return self._fill_room(rid, rid, now) + self._edits_call(rid, rid) if relinked else []
            out = [self._baseline_room(rid)]
            if sub.live_before:
                self._lossy = True
                out.insert(0, gap(rid, "no starting point was known for this room before the link dropped",
                                  room=rid))
            return out
        if not sub.live_before or sub.event_name.endswith(EPHEMERAL):
            return []
        known = max([*self._last_seen.values(), self._my_since or 0], default=0)  # newest server time seen
        if sub.stream == "stream-notify-room" and sub.event_name.endswith(DELETE_MESSAGE) and known:
            # Deletions since then (the ones before the drop come again and are dropped as repeats).
            rid = sub.event_name[:-len(DELETE_MESSAGE)]
            return [self._internal_call("deleted", sub.event_name, "messages/get",
                                        [rid, {"lastUpdate": encode_date(known - 1)}])]
        self._lossy = True
        return [gap(sub.event_name, f"{sub.stream} events are not replayed: those sent while the link was "
                                    "down are lost", stream=sub.stream)]

    def _nosub(self, frame: Dict[str, Any], now: float) -> List[Output]:
        sub_id = str(frame.get("id"))
        sub = self.subs.get(sub_id)
        if sub is None:
            return []
        error = frame.get("error") or {}
        code = code_of(error)
        if code in RATE_LIMITED:
            wait = rate_limit_wait(error)
            wait = wait if wait is not None else 10.0  # Meteor's default rule window
            sub.retry_at = now + wait
            return [Report(RateLimited(f"the server rate limited the subscription to {sub.stream} "
                                       f"{sub.event_name!r}: subscribing again in {wait:.1f} s",
                                       retry_after=wait))]
        del self.subs[sub_id]
        reason = short(error.get("reason") or "", 160) if isinstance(error, dict) else ""
        failure = SubscriptionError(
            f"the server refused or ended the subscription to {sub.stream} {sub.event_name!r}: "
            f"{reason + ' ' if reason else ''}[{code}]")
        # A waiting subscribe() gets the error; otherwise (ended later, or registered
        # without waiting) callbacks hear of it.
        out: List[Output] = [Reply(sub.id, error=failure), Report(failure)]
        if self.state == "ready" and all(s.ready for s in self.subs.values()):
            out += self._announce()  # the refused one was the last we were waiting for
        return out

    # -- stream events -------------------------------------------------------
    def _changed(self, frame: Dict[str, Any], raw: str) -> List[Output]:
        if self.fast_path and frame.get("collection") == ROOM_MESSAGES:
            fields = frame.get("fields")
            if type(fields) is dict:
                event_name, args = fields.get("eventName"), fields.get("args")
                if type(event_name) is str and type(args) is list and args and type(args[0]) is dict:
                    live = self._live_message(args, event_name, raw)
                    if live is not None:
                        return live
        stream = frame.get("collection")
        if not isinstance(stream, str) or not stream.startswith("stream-"):
            return []
        fields = frame.get("fields") or {}
        if not isinstance(fields, dict):
            return [self._bad(f"a changed frame whose fields is a {type(fields).__name__}, not an object", raw)]
        event_name = fields.get("eventName")
        if not isinstance(event_name, str):
            return [self._bad(f"a changed frame whose eventName is a {type(event_name).__name__}, "
                              "not a string", raw)]
        args = fields.get("args") or []
        if not isinstance(args, list):
            return [self._bad(f"a changed frame whose args is a {type(args).__name__}, not a list", raw)]
        if stream == ROOM_MESSAGES and args and isinstance(args[0], dict):
            return self._room_message(args, event_name, raw)
        try:
            data = plain_result(args, raw) if self.fast_path else decode_ejson(args)
        except ProtocolError as exc:
            return [self._bad(f"a {stream} event: {exc}", raw)]
        if stream == "stream-notify-room" and event_name.endswith(DELETE_MESSAGE) and args and \
                isinstance(args[0], dict) and isinstance(args[0].get("_id"), str) and not self._deleted.add(args[0]["_id"]):
            return []  # a deletion a fill already delivered
        kind = kind_of(stream, event_name)
        # Recorded only once decoded: a change we could not deliver must not count as held.
        if kind is not None and not self._changes.setdefault(kind, ChangeLog(kind)).live(args):
            return []  # a change we already delivered from a sync answer
        return [QuickMeetEvent.make(stream, provider=PROVIDER, channel=event_name, data=data, raw=raw)]

    def _room_message(self, args: List[Any], event_name: str, raw: str) -> List[Output]:
        message = args[0]
        rid = message.get("rid")
        rid = rid if isinstance(rid, str) and rid else event_name
        if event_name == MY_MESSAGES and self._my_held is not None or rid in self._filling:
            problem = message_problem(message)
            if problem:
                return [self._bad(problem, raw)]
            # delivered in order once its gap is filled
            if rid in self._filling:
                self._filling[rid].append(message)
            elif self._my_held is not None:
                self._my_held.append(message)
            return []
        out = self._deliver_messages(rid, [message], event_name, raw)
        if len(args) > 1 and out and isinstance(out[0], QuickMeetEvent):  # __my_messages__' room details
            try:
                extra = decode_ejson(args[1:])
            except ProtocolError:
                extra = []
            event = out[0]
            out[0] = QuickMeetEvent.make(event.name, provider=PROVIDER, channel=event.channel,
                                         data=[*event.data, *extra], id=event.id, raw=raw)
        return out

    def _live_message(self, args: List[Any], channel: str, raw: str) -> Optional[List[Output]]:
        """What `_room_message` gives for a live message `plain_message` can decode, or None: not that case."""
        message = args[0]
        rid = message.get("rid")
        rid = rid if type(rid) is str and rid else channel
        if rid in self._filling or channel == MY_MESSAGES and self._my_held is not None:
            return None  # held behind a fill
        plain = plain_message(args, raw)
        if plain is None:
            return None
        data, ident, ts, version = plain
        if not self._seen.add((ident, version)):
            return []  # the same version of a message again (gap fill overlapping live delivery)
        if ts > self._last_seen.get(rid, 0):
            self._last_seen[rid] = ts
        if channel == MY_MESSAGES and ts > (self._my_since or 0):
            self._my_since = ts
        # Event.make's work, written out (every field in its order). __my_messages__' room details
        # follow the message (no `$` in them: plain_message made sure).
        event = _new(QuickMeetEvent)
        _set(event, "__dict__", {"name": ROOM_MESSAGES, "channel": channel,
                                 "data": [data, *args[1:]] if len(args) > 1 else [data],
                                 "id": ident, "provider": PROVIDER, "received_at": None, "raw": raw})
        return [event]

    # -- room and subscription changes ---------------------------------------
    def _sync_call(self, kind: str) -> Send:
        log = self._changes[kind]
        log.pending = True
        return self._internal_call("sync", kind, log.method, log.params())

    def _synced(self, kind: str, result: Any, error: Any) -> List[Output]:
        log = self._changes[kind]
        channel = next((s.event_name for s in self.subs.values() if kind_of(s.stream, s.event_name) == kind), kind)
        if error is not None:
            log.pending = False
            return [gap(channel, f"{log.method} failed, changes made while disconnected may be missing: "
                                 f"{call_error(log.method, error)}")]
        out: List[Output] = []
        bad: List[str] = []
        for change in log.answer(result):
            try:
                out.append(QuickMeetEvent.make("stream-notify-user", provider=PROVIDER, channel=channel,
                                               data=decode_ejson(change)))
            except ProtocolError as exc:
                bad.append(str(exc))
        if bad:  # its siblings are delivered all the same
            out.append(Report(ProtocolError(f"skipped {len(bad)} change(s) in the {log.method} answer: {bad[0]}")))
        return out

