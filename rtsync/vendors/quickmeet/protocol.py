"""QuickMeet.Chat (Rocket.Chat over Meteor DDP), sans-I/O: handshake, login, methods, streams, gap fill.

Rules from protocols/quickmeet-ddp.md that this module enforces:

- `connect` is the first frame on every link (even before answering a ping);
  frames without `msg` and unknown `msg` values are ignored;
- every server `ping` gets a `pong` echoing its id; our own liveness: after
  `ping_after` s of inbound silence we ping, `dead_after` s more is stale;
- DDP has no session resumption: each link logs in again (resume token first,
  the password digest if the token is refused and a password is known),
  resubscribes every stream with its old id, then fills the gap per room with
  `loadMissedMessages` since the newest message seen (`loadHistory` pages on
  servers without it; no answer within `fill_timeout` is a gap), delivering
  missed and buffered live messages in order and without duplicates (`_id` +
  `_updatedAt`), and recovers missed room and subscription changes
  (`sync.ChangeLog`);
- calls made before the login completes wait in a queue; their `Reply`
  comes from `result`; errors keep the server's `error`/`reason`/`details`;
  `too-many-requests` waits `timeToReset`;
- stream events are `changed` frames routed on (collection, eventName);
- decoding is contained per frame, and per message within a frame: a frame
  that is not JSON or whose fields have the wrong type (an EJSON `$date`
  that is not a finite number of milliseconds in range, `fields`/`args`/
  `subs` of the wrong kind, ...) is one `Report` (the frame cut short, tokens
  masked); a bad message never costs its siblings in the same answer; a call
  whose result cannot be decoded gets its `Reply` with the error; no
  exception but an `RtsyncError` leaves `received`.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Tuple

from ...errors import (
    AuthenticationError,
    CallError,
    ConnectionLost,
    ProtocolError,
    RateLimited,
    RtsyncError,
    SubscriptionError,
)
from ...events import GAP, Event
from ...policy import close_error
from ...sansio import (
    BoundedSet,
    Connected,
    Fail,
    Handshake,
    Liveness,
    Output,
    Reply,
    Report,
    Send,
    WebSocketProtocol,
    contained,
    json_object,
    quoted,
)
from .sync import ChangeLog, kind_of

__all__ = ["QuickMeetProtocol", "call_error", "decode_ejson", "encode_date"]

PROVIDER = "quickmeet"
ROOM_MESSAGES = "stream-room-messages"
_CODE_SUFFIX = re.compile(r"\[([^\[\]]+)\]\s*$")
# `"token": "..."` and the like in a frame quoted by a report (also when the cut ends inside the value)
_SECRET_VALUE = re.compile(r'("(?:token|resume|digest|password|authToken|secret)"\s*:\s*)"(?:[^"\\]|\\.)*"?')


def decode_ejson(value: Any) -> Any:
    """EJSON to Python: `{"$date": ms}` becomes an aware UTC datetime (only objects with exactly that key).

    Raises `ProtocolError` for a `$date` that is not a finite number of milliseconds within
    `datetime`'s range (a string, a list, NaN, 1e20 ...) and for values nested too deeply.
    """
    try:
        return _decode_ejson(value)
    except RecursionError:
        raise ProtocolError("an EJSON value nested too deeply to decode") from None


def _decode_ejson(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            if "$date" in value:
                return _date(value["$date"])
            if "$escape" in value and isinstance(value["$escape"], dict):
                return {k: _decode_ejson(v) for k, v in value["$escape"].items()}
        return {k: _decode_ejson(v) if isinstance(v, (dict, list)) else v for k, v in value.items()}
    if isinstance(value, list):  # scalars are copied as they are, without a call each (the hot path)
        return [_decode_ejson(v) if isinstance(v, (dict, list)) else v for v in value]
    return value


def _date(ms: Any) -> datetime:
    if isinstance(ms, (int, float)) and not isinstance(ms, bool) and math.isfinite(ms):
        try:
            return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            pass
    shown = repr(ms)
    raise ProtocolError(f"an EJSON date is not a number of milliseconds in range: "
                        f"{{'$date': {shown[:40] + '...' if len(shown) > 40 else shown}}}")


def encode_date(ms: int) -> Dict[str, int]:
    return {"$date": ms}


def _number(text: str) -> Any:
    """`text` as an int when it is a plain decimal number (`"²"` is a digit, not a number), else itself."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else text


def _code(error: Any) -> Any:
    """The error code, tolerant of broker-mangled shapes: `"User not found [403]"` means 403.

    Always a str, a number, a bool or None: anything else a server sends is shown, cut short."""
    code = error.get("error") if isinstance(error, dict) else error
    if isinstance(code, str):
        found = _CODE_SUFFIX.search(code)
        if found:
            return _number(found.group(1))
        return _number(code[:200])
    if code is None or isinstance(code, (int, float, bool)):
        return code
    return _short(code)


def _short(value: Any, limit: int = 80) -> str:
    """A server-sent value for a message: strings as they are, anything else as its repr; cut short."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _seconds(value: Any) -> Optional[float]:
    """A wait the server asked for, in seconds, if it is a sane one."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(min(value, 24 * 3600.0))
    return None


def call_error(method: str, error: Any) -> RtsyncError:
    """A DDP `result.error` as the rtsync error to raise: rate limits wait, the rest is a CallError."""
    if not isinstance(error, dict):
        return CallError(f"{method} failed: {_short(error)}", error=_code(error))
    code = _code(error)
    reason = error.get("reason") or error.get("message") or ""
    reason = _short(reason, 160)
    raw_details = error.get("details")
    details: Dict[str, Any] = raw_details if isinstance(raw_details, dict) else {}
    if code in ("too-many-requests", "error-too-many-requests"):
        wait = _seconds(details.get("timeToReset"))
        seconds = wait / 1000 if wait is not None else _seconds(details.get("seconds"))
        return RateLimited(f"{method} was rate limited: {reason}", retry_after=seconds)
    return CallError(f"{method} failed: {reason} [{code}]", error=code, reason=reason, details=details)


class _Sub:
    __slots__ = ("id", "stream", "event_name", "ready")

    def __init__(self, sub_id: str, stream: str, event_name: str) -> None:
        self.id, self.stream, self.event_name, self.ready = sub_id, stream, event_name, False

    def frame(self) -> str:
        return _dumps({"msg": "sub", "id": self.id, "name": self.stream,
                       "params": [self.event_name, {"useCollection": False, "args": []}]})


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class QuickMeetProtocol(WebSocketProtocol):
    """One DDP session per link; subscriptions, the login token and gap-fill marks survive links."""

    def __init__(
        self,
        url: str,
        login: Dict[str, Any],
        *,
        resume_token: Optional[str] = None,
        ping_after: float = 25.0,
        dead_after: float = 15.0,
        handshake_timeout: float = 15.0,
        history_page: int = 50,
        history_pages: int = 5,
        fill_timeout: float = 30.0,
    ) -> None:
        self.url = url
        self._password_login = login  # {"user": {...}, "password": {"digest", "algorithm"}} or {}
        self.resume_token = resume_token
        self.user_id: Optional[str] = None
        self.token_expires: Optional[datetime] = None
        # DDP's own ping after `ping_after` s of inbound silence; `dead_after` s more is stale.
        self.liveness = Liveness("QuickMeet", interval=ping_after, timeout=dead_after, probe=self._ping,
                                 stale="no frame from {vendor} for {seconds:.0f} s, not even a pong")
        # Pongs prove the socket, not the session: connect + login must finish in this time.
        self.handshake_timeout = handshake_timeout
        self.history_page, self.history_pages = history_page, history_pages
        self.fill_timeout = fill_timeout
        # loadMissedMessages answers a whole gap in one call; servers without it get loadHistory pages.
        self.missed_method = True
        self.subs: Dict[str, _Sub] = {}
        self._next_id = 0
        self._opened_before = False  # DDP never resumes: a later link fills gaps and resyncs changes
        self._relinked = False  # this link is not the first
        self._last_seen: Dict[str, int] = {}  # rid -> newest message ts (ms) delivered
        self._seen: BoundedSet[Tuple[str, Any]] = BoundedSet(20000)  # message versions delivered
        self._changes: Dict[str, ChangeLog] = {}  # "rooms-changed" / "subscriptions-changed"
        self._reset(0.0)

    def _reset(self, now: float) -> None:
        self.state = "connecting"  # -> logging-in -> ready
        self._opened_at = now
        self.liveness.opened(now)
        self._queue: List[str] = []  # frames waiting for the login
        self._internal: Dict[str, Tuple[str, Any]] = {}  # method id -> (purpose, context)
        self._filling: Dict[str, List[Dict[str, Any]]] = {}  # rid -> live messages held during its fill
        self._fill_pages: Dict[str, List[List[Dict[str, Any]]]] = {}  # rid -> history pages so far, newest first
        self._fill_due: Optional[float] = None  # fills not answered by then end with a gap
        self._tried_password = False
        self._announced = False  # Connected sent for this link

    def _new_id(self, prefix: str) -> str:
        self._next_id += 1
        return f"{prefix}{self._next_id}"

    def _ping(self) -> Send:
        return Send(_dumps({"msg": "ping", "id": self._new_id("p")}))

    @property
    def ping_after(self) -> float:
        return self.liveness.interval

    @ping_after.setter
    def ping_after(self, seconds: float) -> None:
        self.liveness.interval = seconds

    @property
    def dead_after(self) -> float:
        return self.liveness.timeout

    @dead_after.setter
    def dead_after(self, seconds: float) -> None:
        self.liveness.timeout = seconds

    # -- user intents (called under the engine's lock) ----------------------
    def call(self, method: str, params: List[Any]) -> Tuple[str, List[Output]]:
        """A method call; its id is the key of the `Reply`. Queued until the login completes."""
        call_id = self._new_id("m")
        self._internal[call_id] = ("call", method)
        return call_id, self._send_when_ready(_dumps({"msg": "method", "id": call_id, "method": method,
                                                      "params": params}))

    def subscribe(self, stream: str, event_name: str) -> Tuple[str, List[Output]]:
        """A stream subscription, kept for every later link; `Reply(id)` when ready or refused."""
        if not event_name:
            raise SubscriptionError("event_name must not be empty (the server answers invalid-event-name)")
        for sub in self.subs.values():
            if (sub.stream, sub.event_name) == (stream, event_name):
                return sub.id, ([Reply(sub.id, sub.id)] if sub.ready else [])
        sub = _Sub(self._new_id("s"), stream, event_name)
        self.subs[sub.id] = sub
        # Before the login, nothing is sent: the login sends every registered sub anyway.
        return sub.id, ([Send(sub.frame())] if self.state == "ready" else [])

    def unsubscribe(self, sub_id: str) -> List[Output]:
        if self.subs.pop(sub_id, None) is None or self.state != "ready":
            return []
        return [Send(_dumps({"msg": "unsub", "id": sub_id}))]

    def _send_when_ready(self, frame: str) -> List[Output]:
        if self.state == "ready":
            return [Send(frame)]
        self._queue.append(frame)
        return []

    # -- the link --------------------------------------------------------
    def handshake(self) -> Handshake:
        return Handshake(self.url)

    def opened(self, now: float) -> List[Output]:
        self._relinked, self._opened_before = self._opened_before, True
        self._reset(now)
        # connect comes first, always: anything else first closes the socket on the ddp-streamer.
        return [Send(_dumps({"msg": "connect", "version": "1", "support": ["1"]}))]

    def heard(self, now: float) -> None:
        self.liveness.heard(now)

    def received(self, text: str, now: float) -> List[Output]:
        self.liveness.heard(now)
        return contained(lambda: self._received(text, now), text, lambda t: quoted(self._masked(t)))

    def _masked(self, text: str) -> str:
        """The frame with login tokens and credentials masked (reports quote it)."""
        text = _SECRET_VALUE.sub(r"\1***", text)
        password = self._password_login.get("password")
        digest = password.get("digest") if isinstance(password, dict) else None
        for secret in (self.resume_token, digest):
            if isinstance(secret, str) and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    def _bad(self, what: str, text: str) -> Report:
        return Report(ProtocolError(f"skipped {what}: {quoted(self._masked(text))}"))

    def _received(self, text: str, now: float) -> List[Output]:
        frame = json_object(text)
        if isinstance(frame, Report):
            masked = json_object(text, shown=self._masked(text))  # the same verdict, credentials masked
            return [masked] if isinstance(masked, Report) else [frame]
        kind = frame.get("msg")
        if kind is not None and not isinstance(kind, str):
            return [self._bad(f"a frame whose msg is a {type(kind).__name__}, not a string", text)]
        if kind == "ping":
            pong: Dict[str, Any] = {"msg": "pong"}
            if "id" in frame:
                pong["id"] = frame["id"]
            return [Send(json.dumps(pong, separators=(",", ":")))]  # ASCII: an echoed lone surrogate stays escaped
        if kind == "connected":
            return self._login(self.resume_token is not None)
        if kind == "failed":
            return [Fail(ProtocolError(
                f"the server does not speak DDP version 1 (it offered {_short(frame.get('version'))!r})"))]
        if kind == "result":
            return self._result(frame, now, text)
        if kind == "changed":
            return self._changed(frame, text)
        if kind == "ready":
            subs = frame.get("subs") or []
            if not isinstance(subs, list):
                return [self._bad(f"a ready frame whose subs is a {type(subs).__name__}, not a list", text)]
            return self._ready(subs)
        if kind == "nosub":
            return self._nosub(frame)
        if kind == "error":
            return [Report(ProtocolError(f"the server refused a frame: {_short(frame.get('reason'))}"))]
        return []  # pong, updated, added, removed, server_id, ...: nothing to do

    # -- login -------------------------------------------------------------
    def _login(self, with_token: bool) -> List[Output]:
        if with_token:
            params: Dict[str, Any] = {"resume": self.resume_token}
        elif self._password_login:
            self._tried_password = True
            params = self._password_login
        else:
            return [Fail(AuthenticationError("no credentials: give username and password, or resume_token"))]
        self.state = "logging-in"
        login_id = self._new_id("login")
        self._internal[login_id] = ("login", with_token)
        return [Send(_dumps({"msg": "method", "id": login_id, "method": "login", "params": [params]}))]

    def _logged_in(self, result: Any, now: float) -> List[Output]:
        # The login worked (no error): ill-typed details of the answer are reported and ignored.
        out: List[Output] = []
        wrong: List[str] = []
        if result is None:
            result = {}
        elif not isinstance(result, dict):
            wrong.append(f"the result is a {type(result).__name__}")
            result = {}
        token, user_id, expires = result.get("token"), result.get("id"), result.get("tokenExpires")
        if token is not None and not isinstance(token, str):
            wrong.append(f"token is a {type(token).__name__}")
        if user_id is not None and not isinstance(user_id, str):
            wrong.append(f"id is a {type(user_id).__name__}")
        try:
            expires = decode_ejson(expires)
        except ProtocolError:
            wrong.append("tokenExpires is not a date")
            expires = None
        if wrong:
            out.append(Report(ProtocolError(
                f"the login answer is ill-typed ({', '.join(wrong)}); those parts were ignored")))
        self.resume_token = (token if isinstance(token, str) else None) or self.resume_token
        self.user_id = (user_id if isinstance(user_id, str) else None) or self.user_id
        self.token_expires = expires if isinstance(expires, datetime) else None
        self.state = "ready"
        out += [Send(sub.frame()) for sub in self.subs.values()]
        for sub in self.subs.values():
            sub.ready = False
        out += [Send(frame) for frame in self._queue]
        self._queue = []
        if self._relinked:
            out += self._start_gap_fill(now)
            for kind, log in self._changes.items():
                log.pending = False  # whatever was out went down with the old link
                if log.baselined:
                    out.append(self._sync_call(kind))
        if not self.subs:
            out += self._announce()
        return out

    def _announce(self) -> List[Output]:
        if self._announced:
            return []
        self._announced = True
        # `resumed`: a later link whose gap fill ran (DDP itself never resumes a session).
        return [Connected(resumed=self._relinked, detail={"user_id": self.user_id})]

    # -- results -----------------------------------------------------------
    def _result(self, frame: Dict[str, Any], now: float, raw: str) -> List[Output]:
        call_id = frame.get("id")
        if not isinstance(call_id, str):  # ours are all strings; a wrong type could only collide by accident
            return [self._bad(f"a result whose id is a {type(call_id).__name__}, not a string", raw)]
        purpose, context = self._internal.pop(call_id, ("unknown", None))
        error = frame.get("error")
        if purpose == "login":
            if error is None:
                return self._logged_in(frame.get("result"), now)
            failure = call_error("login", error)
            if isinstance(failure, RateLimited):
                return [Fail(failure)]
            if context and self._password_login and not self._tried_password and _code(error) == 403:
                return self._login(False)  # the resume token was refused: the password still works
            if _code(error) == "totp-required":
                return [Fail(AuthenticationError(
                    "QuickMeet wants a second factor (TOTP) for this account, which an unattended client "
                    "cannot give: log in with a personal access token (resume_token=...) instead. "
                    "rtsync will not retry."))]
            return [Fail(AuthenticationError(
                f"QuickMeet refused the login: {failure.reason if isinstance(failure, CallError) else failure} "
                f"[{_code(error)}]. Check the credentials; rtsync will not retry."))]
        if purpose == "history":
            return self._history(context, frame.get("result"), error)
        if purpose == "missed":
            return self._missed_messages(context, frame.get("result"), error)
        if purpose == "sync":
            return self._synced(context, frame.get("result"), error)
        if purpose == "call":
            if error is not None:
                return [Reply(call_id, error=call_error(str(context), error))]
            try:
                return [Reply(call_id, result=decode_ejson(frame.get("result")))]
            except ProtocolError as exc:  # the caller hears why, now, instead of waiting for its timeout
                return [Reply(call_id, error=ProtocolError(f"{context}: the result could not be decoded ({exc})"))]
        return []

    # -- subscriptions -------------------------------------------------------
    def _ready(self, ids: List[Any]) -> List[Output]:
        out: List[Output] = []
        for sub_id in ids:
            sub = self.subs.get(str(sub_id))
            if sub is not None and not sub.ready:
                sub.ready = True
                out.append(Reply(sub.id, sub.id))
                kind = kind_of(sub.stream, sub.event_name)
                if kind is not None:
                    log = self._changes.setdefault(kind, ChangeLog(kind))
                    if not log.baselined and not log.pending:
                        out.append(self._sync_call(kind))
        if self.state == "ready" and all(s.ready for s in self.subs.values()):
            out += self._announce()
        return out

    def _nosub(self, frame: Dict[str, Any]) -> List[Output]:
        sub = self.subs.pop(str(frame.get("id")), None)
        if sub is None:
            return []
        error = frame.get("error") or {}
        code = _code(error)
        reason = _short(error.get("reason") or "", 160) if isinstance(error, dict) else ""
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
            message = args[0]
            rid = message.get("rid")
            rid = rid if isinstance(rid, str) and rid else event_name
            if rid in self._filling:
                problem = _message_problem(message)
                if problem:
                    return [self._bad(problem, raw)]
                self._filling[rid].append(message)  # delivered in order once its gap is filled
                return []
            return self._deliver_messages(rid, [message], event_name, raw)
        try:
            data = decode_ejson(args)
        except ProtocolError as exc:
            return [self._bad(f"a {stream} event: {exc}", raw)]
        kind = kind_of(stream, event_name)
        # Recorded only once decoded: a change we could not deliver must not count as held.
        if kind is not None and not self._changes.setdefault(kind, ChangeLog(kind)).live(args):
            return []  # a change we already delivered from a sync answer
        return [Event.make(stream, provider=PROVIDER, channel=event_name, data=data, raw=raw)]

    def _deliver_messages(self, rid: str, messages: List[Dict[str, Any]], event_name: str,
                          raw: Optional[str] = None) -> List[Output]:
        """Events for the messages not seen yet; ill-typed ones are skipped (one Report), never their siblings."""
        out: List[Output] = []
        bad: List[str] = []
        for message in messages:
            problem = _message_problem(message)
            if problem is None:
                try:
                    data = decode_ejson(message)
                except ProtocolError as exc:
                    problem = str(exc)
            if problem is not None:
                bad.append(problem)
                continue
            if not self._seen.add(_version(message)):
                continue  # the same version of a message again (gap fill overlapping live delivery)
            ts = _ms(message.get("ts"))
            if ts is not None and ts > self._last_seen.get(rid, 0):
                self._last_seen[rid] = ts
            ident = message.get("_id")
            out.append(Event.make(ROOM_MESSAGES, provider=PROVIDER, channel=event_name, data=[data],
                                  id=ident if isinstance(ident, (str, int)) and not isinstance(ident, bool) else None))
        if bad:
            what = f"{len(bad)} of {len(messages)} messages in {rid!r}" if len(messages) > 1 else "a message"
            if raw is not None:
                out.append(self._bad(f"{what}: {bad[0]}", raw))
            else:
                out.append(Report(ProtocolError(f"skipped {what}: {bad[0]}")))
        return out

    # -- gap fill ----------------------------------------------------------
    def _room_subs(self) -> List[str]:
        return [s.event_name for s in self.subs.values()
                if s.stream == ROOM_MESSAGES and not s.event_name.startswith("__")]

    def _start_gap_fill(self, now: float) -> List[Output]:
        out: List[Output] = []
        for rid in self._room_subs():
            if rid not in self._last_seen:
                continue  # nothing seen yet in that room: no known point to fill from
            self._filling[rid] = []
            self._fill_pages[rid] = []
            out.append(self._missed_call(rid) if self.missed_method else self._history_call(rid, None))
        if out:
            self._fill_due = now + self.fill_timeout
        return out

    def _internal_call(self, purpose: str, context: str, method: str, params: List[Any]) -> Send:
        """A method call of our own (gap fill, sync); its result comes back to `_result` with `purpose`."""
        call_id = self._new_id("i")
        self._internal[call_id] = (purpose, context)
        return Send(_dumps({"msg": "method", "id": call_id, "method": method, "params": params}))

    def _missed_call(self, rid: str) -> Send:
        # `ts > start` in whole milliseconds: one earlier, so a message sharing the last seen one's
        # millisecond comes too (`_seen` drops the ones we have).
        return self._internal_call("missed", rid, "loadMissedMessages", [rid, encode_date(self._last_seen[rid] - 1)])

    def _history_call(self, rid: str, end: Optional[int]) -> Send:
        return self._internal_call("history", rid, "loadHistory", [
            rid, encode_date(end) if end is not None else None, self.history_page, encode_date(self._last_seen[rid])])

    def _missed_messages(self, rid: str, result: Any, error: Any) -> List[Output]:
        if error is not None and _code(error) == 404:  # "Method 'loadMissedMessages' not found"
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
        return (_ms(message.get("ts")) or 0) >= since and _version(message) not in self._seen

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
            good = [m for m in page if _message_problem(m) is None]  # _end_fill reports the others
            reason = None
            if good and len(page) >= self.history_page and all(self._missed(m, since) for m in good):
                stamps = [_ms(m.get("ts")) or 0 for m in good]
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
        missed: Dict[Any, Dict[str, Any]] = {}
        bad: List[Any] = []  # left to _deliver_messages to report
        for page in reversed(pages):  # oldest page first; each page is newest first
            for m in reversed(page):
                if _message_problem(m) is not None:
                    bad.append(m)
                elif self._missed(m, since):
                    missed.setdefault(_version(m)[0], m)
        out = self._deliver_messages(rid, [*missed.values(), *bad, *self._filling.pop(rid, [])], rid)
        if reason:
            out.insert(0, Event.make(GAP, provider=PROVIDER, channel=rid,
                                     data={"room": rid, "since": encode_date(since), "reason": reason}))
        return out

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
            return [Event.make(GAP, provider=PROVIDER, channel=channel, data={
                "reason": f"{log.method} failed, changes made while disconnected may be missing: "
                          f"{call_error(log.method, error)}"})]
        out: List[Output] = []
        bad: List[str] = []
        for change in log.answer(result):
            try:
                out.append(Event.make("stream-notify-user", provider=PROVIDER, channel=channel,
                                      data=decode_ejson(change)))
            except ProtocolError as exc:
                bad.append(str(exc))
        if bad:  # its siblings are delivered all the same
            out.append(Report(ProtocolError(f"skipped {len(bad)} change(s) in the {log.method} answer: {bad[0]}")))
        return out

    # -- the link ends / timers ---------------------------------------------
    def closed(self, code: Optional[int], reason: str) -> RtsyncError:
        return close_error("quickmeet", code, reason)

    def lost(self) -> List[Output]:
        # Live messages held for a fill were delivered by nobody: the next link's fill fetches them again.
        self._filling.clear()
        self.state = "connecting"
        return []

    def deadline(self) -> Optional[float]:
        due = self.liveness.deadline()
        if self.state != "ready":
            due = min(due, self._opened_at + self.handshake_timeout)
        if self._filling and self._fill_due is not None:
            due = min(due, self._fill_due)
        return due

    def tick(self, now: float) -> List[Output]:
        if self._filling and self._fill_due is not None and now >= self._fill_due:
            # Held live messages must not wait for ever on an answer that may never come.
            reason = f"the server did not answer the gap fill within {self.fill_timeout:g} s"
            return [out for rid in list(self._filling) for out in self._end_fill(rid, [], reason)]
        if self.state != "ready" and now - self._opened_at >= self.handshake_timeout:
            return [Fail(ConnectionLost(
                f"the server did not complete connect and login within {self.handshake_timeout:g} s"))]
        return self.liveness.tick(now)


def _version(message: Dict[str, Any]) -> Tuple[str, Any]:
    return str(message.get("_id")), _ms(message.get("_updatedAt")) or _ms(message.get("ts"))


def _ms(value: Any) -> Optional[int]:
    if isinstance(value, dict):
        value = value.get("$date")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return int(value)
    return None


def _message_problem(message: Any) -> Optional[str]:
    """Why a room message cannot be used (None if it can): its identity and time must be well typed."""
    if not isinstance(message, dict):
        return f"a message that is a {type(message).__name__}, not an object"
    ident = message.get("_id")
    if ident is not None and not isinstance(ident, (str, int)) or isinstance(ident, bool):
        return f"a message whose _id is a {type(ident).__name__}"
    for key in ("ts", "_updatedAt"):
        value = message.get(key)
        if value is not None and _ms(value) is None:
            return f"a message whose {key} is not a date"
    return None
