"""QuickMeet.Chat (Rocket.Chat over Meteor DDP), sans-I/O: handshake, login, methods, streams (gap fill in fill.py).

Rules from protocols/quickmeet-ddp.md that this module enforces:

- `connect` is the first frame on every link (even before answering a ping);
  frames without `msg` and unknown `msg` values are ignored; `failed` (no
  common DDP version) is final;
- every server `ping` gets a `pong` echoing its id; our own liveness: after
  `ping_after` s of inbound silence we ping, `dead_after` s more is stale;
- DDP has no session resumption: each link logs in again (resume token first,
  the password digest if the token is refused and a password is known),
  resubscribes every stream with its old id and parameters, then fills what
  it can (`fill.GapFill`, `sync.ChangeLog`) and reports the rest as gaps;
- a password login is repeated on the live link before its token lapses
  (`refresh_before` s ahead of `tokenExpires`, read with the injected wall clock);
- calls made before the login completes wait in a queue; their `Reply`
  comes from `result`; errors keep the server's `error`/`reason`/`details`;
  `too-many-requests` waits `timeToReset`, for methods and subscriptions alike;
- stream events are `changed` frames routed on (collection, eventName);
- decoding is contained per frame, and per message within a frame: a frame
  that is not JSON or whose fields have the wrong type is one `Report` (the
  frame cut short, tokens masked); a bad message never costs its siblings; a
  call whose result cannot be decoded gets its `Reply` with the error.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from ...errors import AuthenticationError, ConnectionLost, ProtocolError, RtsyncError
from ...policy import close_error
from ...sansio import BoundedSet, Connected, Fail, Handshake, Liveness, Output, Reply, Report, Send, \
    WebSocketProtocol, contained, json_object, quoted
from .ejson import decode_ejson, encode_date, encode_ejson
from .fastpath import plain_result
from .failures import VersionMismatch, call_error, short
from .fill import MY_MESSAGES, ROOM_MESSAGES
from .login import Login
from .streams import ENCODER, Streams, StreamSub, dumps
from .sync import ChangeLog

__all__ = ["MY_MESSAGES", "ROOM_MESSAGES", "QuickMeetProtocol", "call_error", "decode_ejson", "encode_date"]

# `"token": "..."` and the like in a frame quoted by a report (also when the cut ends inside the value)
_SECRET_VALUE = re.compile(r'("(?:token|resume|digest|password|authToken|secret)"\s*:\s*)"(?:[^"\\]|\\.)*"?')


class QuickMeetProtocol(Login, Streams, WebSocketProtocol):
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
        wall_clock: Optional[Callable[[], float]] = None,
        refresh_before: float = 24 * 3600.0,
    ) -> None:
        self.url = url
        self._password_login = login  # {"user": {...}, "password": {"digest", "algorithm"}} or {}
        self.resume_token = resume_token
        self.user_id: Optional[str] = None
        self.username: Optional[str] = None  # from the `users` record the server adds after a login
        self._added_users: Dict[str, str] = {}  # id -> username of the `users` records added
        self.token_expires: Optional[datetime] = None
        # DDP's own ping after `ping_after` s of inbound silence; `dead_after` s more is stale.
        self.liveness = Liveness("QuickMeet", interval=ping_after, timeout=dead_after, probe=self._ping,
                                 stale="no frame from {vendor} for {seconds:.0f} s, not even a pong")
        # Pongs prove the socket, not the session: connect + login must finish in this time.
        self.handshake_timeout = handshake_timeout
        self.history_page, self.history_pages = history_page, history_pages
        self.fill_timeout = fill_timeout
        # tokenExpires is wall-clock time; the client injects the clock (None: no refresh)
        self.wall_clock, self.refresh_before = wall_clock, refresh_before
        self.refresh_floor = 60.0  # seconds after a login before the next renewal, at the soonest
        # loadMissedMessages answers a whole gap in one call; servers without it get loadHistory pages.
        self.missed_method = True
        self.edits_method = True  # messages/get: False once a server answered 404
        self.subs: Dict[str, StreamSub] = {}
        self._next_id = 0
        self._opened_before = False  # DDP never resumes: a later link fills gaps and resyncs changes
        self._relinked = False  # this link is not the first (or the first after a checkpoint)
        self._last_seen: Dict[str, int] = {}  # rid -> newest message ts (ms) delivered
        self._my_since: Optional[int] = None  # __my_messages__: newest ts known when it was last live
        self._seen: BoundedSet[Tuple[str, Any]] = BoundedSet(20000)  # message versions delivered
        self._done_ids: Set[str] = set()  # delivered by an earlier process (a checkpoint)
        self._deleted: BoundedSet[str] = BoundedSet(5000)  # ids of deletions delivered
        self._warned_expiry = False  # told once that a token without a password cannot be renewed
        self._changes: Dict[str, ChangeLog] = {}  # "rooms-changed" / "subscriptions-changed"
        self._reset(0.0)

    def restore(self, rooms: Dict[str, int], mine: Optional[int], done: Set[str]) -> None:
        """Start from a checkpoint: the first link fills the rooms' gaps as a reconnect would.

        `done`: ids of the messages delivered at each room's newest millisecond (not again)."""
        self._last_seen.update(rooms)
        self._done_ids = set(done)
        self._my_since = mine
        self._opened_before = True

    def _reset(self, now: float) -> None:
        self.state = "connecting"  # -> logging-in -> ready
        self._opened_at = now
        self.liveness.opened(now)
        self._queue: List[str] = []  # frames waiting for the login
        self._internal: Dict[str, Tuple[str, Any]] = {}  # method id -> (purpose, context)
        self._filling: Dict[str, List[Dict[str, Any]]] = {}  # rid -> live messages held during its fill
        self._fill_pages: Dict[str, List[List[Dict[str, Any]]]] = {}  # rid -> history pages so far, newest first
        self._fill_channel: Dict[str, str] = {}  # rid -> the channel its filled messages go out on
        self._fill_due: Optional[float] = None  # fills not answered by then end with a gap
        self._my_held: Optional[List[Dict[str, Any]]] = None  # __my_messages__ held while rooms/get is out
        self._tried_password = False
        self._announced = False  # Connected sent for this link
        self._lossy = False  # this link reported a gap it could not fill
        self._refresh_due: Optional[float] = None

    def _new_id(self, prefix: str) -> str:
        self._next_id += 1
        return f"{prefix}{self._next_id}"

    def _ping(self) -> Send:
        return Send(dumps({"msg": "ping", "id": self._new_id("p")}))

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

    def credentials(self, login: Dict[str, Any], resume_token: Optional[str]) -> None:
        """New credentials for the next login (a callable credential resolved before a connection)."""
        self._password_login = login
        if resume_token is not None:
            self.resume_token = resume_token

    # -- user intents (called under the engine's lock) ----------------------
    def call(self, method: str, params: List[Any]) -> Tuple[str, List[Output]]:
        """A method call; its id is the key of the `Reply`. Queued until the login completes.

        Raises TypeError (before anything is sent) for params EJSON cannot carry."""
        call_id = self._new_id("m")
        # `dumps` of the whole frame, without walking the envelope we build ourselves.
        frame = ENCODER.encode({"msg": "method", "id": call_id, "method": encode_ejson(method),
                                 "params": encode_ejson(params)})
        self._internal[call_id] = ("call", method)
        return call_id, self._send_when_ready(frame)

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
        return [Send(dumps({"msg": "connect", "version": "1", "support": ["1"]}))]

    def heard(self, now: float) -> None:
        self.liveness.heard(now)

    def received(self, text: str, now: float) -> List[Output]:
        self.liveness.heard(now)
        return contained(self._received, text, now, self._quoted)

    def _masked(self, text: str) -> str:
        """The frame with login tokens and credentials masked (reports quote it)."""
        text = _SECRET_VALUE.sub(r"\1***", text)
        password = self._password_login.get("password")
        digest = password.get("digest") if isinstance(password, dict) else None
        for secret in (self.resume_token, digest):
            if isinstance(secret, str) and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    def _quoted(self, text: str) -> str:
        return quoted(self._masked(text))

    def _bad(self, what: str, text: str) -> Report:
        return Report(ProtocolError(f"skipped {what}: {self._quoted(text)}"))

    def _received(self, text: str, now: float) -> List[Output]:
        frame = json_object(text, quote=self._quoted)  # credentials masked, and only in a report
        if isinstance(frame, Report):
            return [frame]
        kind = frame.get("msg")
        if kind is not None and not isinstance(kind, str):
            return [self._bad(f"a frame whose msg is a {type(kind).__name__}, not a string", text)]
        if kind == "changed":  # the frequent kinds first
            return self._changed(frame, text)
        if kind == "result":
            return self._result(frame, now, text)
        if kind == "ping":
            pong: Dict[str, Any] = {"msg": "pong"}
            if "id" in frame:
                pong["id"] = frame["id"]
            return [Send(json.dumps(pong, separators=(",", ":")))]  # ASCII: an echoed lone surrogate stays escaped
        if kind == "connected":
            return self._login(self.resume_token is not None)
        if kind == "failed":
            return [Fail(VersionMismatch(
                f"the server does not speak DDP version 1 (it offered {short(frame.get('version'))!r}): "
                "url must point at a Rocket.Chat / QuickMeet.Chat `/websocket` endpoint (a Meteor server "
                "speaking DDP 1). rtsync will not retry."))]
        if kind == "ready":
            subs = frame.get("subs") or []
            if not isinstance(subs, list):
                return [self._bad(f"a ready frame whose subs is a {type(subs).__name__}, not a list", text)]
            return self._ready(subs, now)
        if kind == "nosub":
            return self._nosub(frame, now)
        if kind == "added" and frame.get("collection") == "users":
            # Sent just before the login's result: kept until that result names our id.
            fields = frame.get("fields")
            name = fields.get("username") if isinstance(fields, dict) else None
            if isinstance(name, str) and isinstance(frame.get("id"), str):
                self._added_users[frame["id"]] = name
                self.username = self._added_users.get(self.user_id or "", self.username)
            return []
        if kind == "error":
            return [Report(ProtocolError(f"the server refused a frame: {short(frame.get('reason'))}"))]
        return []  # pong, updated, added, removed, server_id, ...: nothing to do

    def _announce(self) -> List[Output]:
        if self._announced:
            return []
        self._announced = True
        # `resumed`: a later link whose gaps were all fillable (DDP itself never resumes a session).
        return [Connected(resumed=self._relinked and not self._lossy, detail={"user_id": self.user_id})]

    # -- results -----------------------------------------------------------
    def _result(self, frame: Dict[str, Any], now: float, raw: str) -> List[Output]:
        call_id = frame.get("id")
        if not isinstance(call_id, str):  # ours are all strings; a wrong type could only collide by accident
            return [self._bad(f"a result whose id is a {type(call_id).__name__}, not a string", raw)]
        purpose, context = self._internal.pop(call_id, ("unknown", None))
        error, result = frame.get("error"), frame.get("result")
        if purpose == "call":  # the frequent one first
            if error is not None:
                return [Reply(call_id, error=call_error(str(context), error))]
            try:
                return [Reply(call_id, result=plain_result(result, raw))]
            except ProtocolError as exc:  # the caller hears why, now, instead of waiting for its timeout
                return [Reply(call_id, error=ProtocolError(f"{context}: the result could not be decoded ({exc})"))]
        if purpose == "login":
            return self._login_failed(error, context) if error is not None else self._logged_in(result, now)
        if purpose == "refresh":
            if error is None:
                return self._logged_in(result, now, refresh=True)
            return [Report(AuthenticationError(f"renewing the login token failed: {call_error('login', error)}; "
                                               "the current token is used until it lapses"))]
        if purpose == "history":
            return self._history(context, result, error)
        if purpose == "missed":
            return self._missed_messages(context, result, error)
        if purpose == "baseline":
            return self._baselined_room(context, result) if error is None else []
        if purpose == "my-baseline":
            return self._baselined_mine(result) if error is None else []
        if purpose == "edits":
            return self._edits(context, result, error)
        if purpose == "deleted":
            return self._deleted_since(context, result, error)
        if purpose == "my-rooms":
            return self._my_rooms(result, error, now)
        if purpose == "sync":
            return self._synced(context, result, error)
        return []

    def _internal_call(self, purpose: str, context: Any, method: str, params: List[Any]) -> Send:
        """A method call of our own (gap fill, sync); its result comes back to `_result` with `purpose`."""
        call_id = self._new_id("i")
        self._internal[call_id] = (purpose, context)
        return Send(dumps({"msg": "method", "id": call_id, "method": method, "params": params}))

    # -- the link ends / timers ---------------------------------------------
    def closed(self, code: Optional[int], reason: str) -> RtsyncError:
        return close_error("quickmeet", code, reason)

    def lost(self) -> List[Output]:
        # Live messages held for a fill were delivered by nobody: the next link's fill fetches them again.
        self._filling.clear()
        self._my_held = None
        self.state = "connecting"
        return []

    def deadline(self) -> Optional[float]:
        due = self.liveness.deadline()
        if self.state != "ready":
            due = min(due, self._opened_at + self.handshake_timeout)
        if (self._filling or self._my_held is not None) and self._fill_due is not None:
            due = min(due, self._fill_due)
        if self.state == "ready" and self._refresh_due is not None:
            due = min(due, self._refresh_due)
        if self.state != "ready":
            return due  # rate-limited subs go out again with the next login anyway
        for sub in self.subs.values():  # asked several times per call and per read: no generator
            if sub.retry_at is not None and sub.retry_at < due:
                due = sub.retry_at
        return due

    def tick(self, now: float) -> List[Output]:
        if (self._filling or self._my_held is not None) and self._fill_due is not None and now >= self._fill_due:
            return self._fill_timed_out()
        if self.state != "ready" and now - self._opened_at >= self.handshake_timeout:
            return [Fail(ConnectionLost(
                f"the server did not complete connect and login within {self.handshake_timeout:g} s"))]
        out: List[Output] = []
        if self.state == "ready":
            for sub in self.subs.values():
                if sub.retry_at is not None and now >= sub.retry_at:
                    sub.retry_at = None
                    out.append(Send(sub.frame()))
            if self._refresh_due is not None and now >= self._refresh_due:
                out += self._refresh(now)
        return out + self.liveness.tick(now)
