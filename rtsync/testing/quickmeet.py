"""A local QuickMeet.Chat: Rocket.Chat's realtime API over DDP, as the Meteor monolith or the ddp-streamer serves it.

It reproduces the vendor's reference behaviour. In the Meteor mode (default):
`/websocket` with an optional leading `server_id` frame; `connect` first
(else `error "Must connect first"`), version negotiation (`failed` + close);
a fresh `session` every time and no replay; pings after `ping_interval`
seconds of inbound silence and a close `ping_timeout` later, pongs echoing
ids; `login` by SHA-256 digest or resume token with the real 403 shapes and
a 5-per-10-s throttle for unauthenticated logins; methods (`sendMessage`,
`loadHistory` newest first or `false` without access, `loadMissedMessages`
(everything after a Date; `missed_messages_method=False` makes it unknown, as
on servers that dropped it), `rooms/get` and
`subscriptions/get` (an array, or `{update, remove}` since a `$date`),
`getUsersOfRoom`, `stream-notify-room` typing and user activity, `logout`
(the token revoked), login by `{"email"}`, and the bot's methods in
`_quickmeet_rooms` (`joinRoom`, `leaveRoom`, `createDirectMessage`,
`getRoomById`, `updateMessage`, `deleteMessage`, `setReaction`,
`readMessages`, `messages/get` with its deletions); unknown = 404 then `updated`, no `result` for undefined);
streams with `ready`/`nosub` (`not-allowed`, 404, `invalid-event-name`,
`too-many-requests`) and `changed` events on (collection, eventName),
`__my_messages__` with its room details, `stream-user-presence` with its own
parameters (`id` = the user's id); EJSON dates; rate limits with
`too-many-requests` shapes; `ddp_versions` (without "1": `failed`).

`mode="streamer"` plays Rocket.Chat's ddp-streamer instead: a ping about
30 ms after open, before any `connect`; no version check; anything but
`connect` first, or a malformed method or sub, closes with 1002, invalid JSON
with 1007, no pong in time with 4000 "TIMEOUT"; unknown `msg` ignored; falsy
results omitted; a duplicate sub id re-runs; `unsub` of an unknown id is
silent; the newer `{"msg":"server_id"}` frame.

The shared shape: `url` (the WebSocket URL, `ws://host:port/websocket`),
`publish()` (another user's room message, or any stream event), `drop()`,
and `restart()` (the process restarting: every session gone; users, rooms,
messages and resume tokens are in the database and stay). `websocket_url`
and `post()` are deprecated aliases of `url` and `publish()`.

    with QuickMeetServer() as server:
        client = rtsync.QuickMeetClient(url=server.url, username="alice", password="alice-password")
        server.publish("GENERAL", "hello")                       # bob writes in GENERAL
        server.publish("alice-id/notification", [{"title": "hi"}], stream="stream-notify-user")

Other controls (in `_quickmeet_controls`): `edit()`, `add_room()`, `rename_room()`,
`remove_room()`, `mark_unread()` (each pushed on the members'
`<uid>/rooms-changed` or `/subscriptions-changed`), `notify_user()`,
`set_status()`, `totp` (users whose login needs a second factor),
`rate_limit()`, `rate_limit_subscriptions()`,
`hold_results`, `mangle_errors` (errors as the broker passes them on:
`"error": "User not found [403]"`), `close_all(code)`, `silence()`.

Users: `alice` / `alice-password` (id `alice-id`, email `alice@example.com`) and `bob` / `bob-password`;
rooms `GENERAL` (everyone) and `private-room` (bob only).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, List, Optional, Set, Tuple, Union, overload

from aiohttp import WSMsgType, web

from ._quickmeet_controls import Controls
from ._quickmeet_messages import Messages
from ._quickmeet_rooms import History, MeteorError, RoomMethods, meteor_error
from ._quickmeet_sessions import NINETY_DAYS_MS, Sessions
from ._server import LocalServer, deprecated

__all__ = ["NINETY_DAYS_MS", "QuickMeetServer", "meteor_error"]

def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(eq=False)
class _Session:
    ws: web.WebSocketResponse
    connected: bool = False
    user: Optional[str] = None
    subs: Dict[str, Tuple[str, str]] = field(default_factory=dict)  # id -> (stream, eventName)
    logins: Deque[float] = field(default_factory=deque)
    last_in: float = field(default_factory=time.monotonic)
    token: Optional[str] = None  # the login token this session used or got (logout revokes it)
    presence: Set[str] = field(default_factory=set)  # uids its stream-user-presence sub follows


class QuickMeetServer(Sessions, Controls, History, RoomMethods, Messages, LocalServer):
    """The local DDP server. Knobs are attributes tests may change at run time.

    mode: "meteor" (the monolith) or "streamer" (the ddp-streamer).
    ping_interval / ping_timeout: the heartbeat (15 s and 15 s in Meteor, 30 s and 30 s in the streamer).
    send_server_id: start each socket with a `server_id` frame (the legacy form in Meteor mode).
    hold_results: stop answering methods (their results never come), for in-flight failure tests.
    mangle_errors: send method errors the way the streamer's broker mangles them.
    """

    early_ping_after = 0.03  # the streamer pings this soon after the socket opens

    def __init__(
        self,
        *,
        users: Optional[Dict[str, Tuple[str, str]]] = None,
        mode: str = "meteor",
        ping_interval: float = 15.0,
        ping_timeout: float = 15.0,
        send_server_id: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        if mode not in ("meteor", "streamer"):
            raise ValueError(f"mode must be 'meteor' or 'streamer', not {mode!r}")
        self.mode = mode
        self.users = users or {"alice": ("alice-password", "alice-id"), "bob": ("bob-password", "bob-id")}
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.send_server_id = send_server_id
        self.hold_results = False
        self.mangle_errors = False
        self.missed_messages_method = True  # False: a server without loadMissedMessages (404, as for any unknown)
        self.missing_methods: Set[str] = set()  # methods this server version lacks: 404 as for any unknown
        self.ddp_versions = ["1", "pre2", "pre1"]  # what Meteor speaks; without "1": `failed` to every connect
        self.emails = {f"{name}@example.com": name for name in self.users}
        self.livechat: Dict[str, str] = {}  # livechat room id -> its visitor's token
        self._sub_limits: Dict[str, List[int]] = defaultdict(list)  # stream -> timeToReset values for nosub
        self.closes: List[Tuple[int, str]] = []  # (code, reason) of every close the server decided on
        self.revoked: Set[str] = set()
        self.tokens: Dict[str, str] = {}  # resume token -> username
        self.token_issued: Dict[str, int] = {}  # resume token -> when it was issued (ms)
        self.token_lifetime = NINETY_DAYS_MS / 1000  # seconds a login token lives (`loginExpirationInDays`)
        self.rooms: Dict[str, Set[str]] = {"GENERAL": set(self.users), "private-room": {"bob"}}
        start = _now_ms()
        self.room_info: Dict[str, Dict[str, Any]] = {
            rid: {"_id": rid, "name": rid, "t": "c" if rid == "GENERAL" else "p", "_updatedAt": {"$date": start}}
            for rid in self.rooms}
        self.unread: Dict[Tuple[str, str], int] = {}  # (username, rid) -> unread count
        self._sub_updated: Dict[Tuple[str, str], int] = {}  # (username, rid) -> ms
        self.trash: List[Tuple[Set[str], Dict[str, Any]]] = []  # removed rooms: (members, {"_id", "_deletedAt"})
        self.totp: Dict[str, str] = {}  # username -> the code its second factor wants
        self.messages: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
        self.message_trash: Dict[str, List[Dict[str, Any]]] = defaultdict(list)  # rid -> [{_id, _deletedAt}]
        self.frames_in: List[Dict[str, Any]] = []
        self.frames_out: List[Dict[str, Any]] = []  # every frame sent, for asserting peers' runs
        self._limits: Dict[str, List[int]] = defaultdict(list)  # method -> timeToReset values to answer with
        self._sessions: Set[_Session] = set()
        self._ids = itertools.count(1)

    @property
    def url(self) -> str:
        """What `QuickMeetClient(url=...)` takes: the WebSocket URL, `ws://host:port/websocket`."""
        return f"{self.ws_url}/websocket"

    @property
    def websocket_url(self) -> str:
        """Deprecated alias of `url`."""
        deprecated(".websocket_url", ".url")
        return self.url

    @property
    def streamer(self) -> bool:
        return self.mode == "streamer"

    # -- test-thread API ---------------------------------------------------
    @overload
    def publish(self, target: str, body: str, user: str = "bob") -> Dict[str, Any]: ...

    @overload
    def publish(self, target: str, body: List[Any], *, stream: str) -> int: ...

    def publish(self, target: str, body: Union[str, List[Any]], user: str = "bob", *,
                stream: Optional[str] = None) -> Union[Dict[str, Any], int]:
        """Send one event, in either of the two forms Rocket.Chat's realtime API has.

        `publish(rid, text, user="bob")`: `user` writes `text` in room `rid`; the message is stored (so
        `loadHistory` and `loadMissedMessages` find it) and pushed on `stream-room-messages`. Returns
        the message.

        `publish(event_name, args, stream=name)`: a `changed` frame with `args` on `(stream,
        event_name)`, e.g. `stream="stream-notify-user"` with `"<uid>/notification"`; nothing is
        stored. Returns to how many subscribed sessions it went."""
        if stream is None:
            if not isinstance(body, str):
                raise TypeError("publish(rid, text): text is a str (pass stream= to send a stream event's args)")
            text = body

            async def message() -> Dict[str, Any]:
                return await self._store(target, text, user)

            return self.call(message)
        if not isinstance(body, list):
            raise TypeError("publish(event_name, args, stream=...): args is a list")
        args = body

        async def event() -> int:
            return await self._emit(str(stream), target, args)

        return self.call(event)

    def post(self, rid: str, text: str, user: str = "bob") -> Dict[str, Any]:
        """Deprecated alias of `publish(rid, text, user)`."""
        deprecated(".post()", ".publish()")
        return self.publish(rid, text, user)

    async def on_restart(self) -> None:
        self._sessions.clear()  # sessions live in the process; users, rooms, messages and tokens in MongoDB

    # -- the server --------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.router.add_get("/websocket", self._socket)
        app.router.add_get("/websocket/", self._socket)

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, compress=False, max_msg_size=0)
        await ws.prepare(request)
        self.track(ws)
        session = _Session(ws)
        self._sessions.add(session)
        heart = asyncio.ensure_future(self._heartbeat(session))
        try:
            if self.send_server_id:
                await ws.send_str('{"msg":"server_id","server_id":"0"}' if self.streamer else '{"server_id":"0"}')
            async for msg in ws:
                session.last_in = time.monotonic()  # any inbound frame counts as a pong
                if msg.type == WSMsgType.TEXT:
                    await self._frame(session, msg.data)
        finally:
            heart.cancel()
            self._sessions.discard(session)
            self.untrack(ws)
        return ws

    async def _send(self, session: _Session, value: Dict[str, Any]) -> None:
        if not self.silent and not session.ws.closed:
            self.frames_out.append(value)
            await session.ws.send_str(json.dumps(value, separators=(",", ":")))

    async def _close(self, session: _Session, code: int, reason: str = "") -> None:
        self.closes.append((code, reason))
        await session.ws.close(code=code, message=reason.encode())

    async def _heartbeat(self, session: _Session) -> None:
        pinged_at: Optional[float] = None
        if self.streamer:  # before any connect: a client that answers it first gets 1002
            await asyncio.sleep(self.early_ping_after)
            pinged_at = time.monotonic()
            await self._send(session, {"msg": "ping"})
        while not session.ws.closed:
            await asyncio.sleep(self.ping_interval / 3)
            if self.silent:
                continue  # a silent server is a dead end of a half-open link: it neither pings nor closes
            now = time.monotonic()
            if pinged_at is not None and session.last_in < pinged_at and now - pinged_at >= self.ping_timeout:
                await self._close(session, *((4000, "TIMEOUT") if self.streamer else (1000, "")))
                return
            if now - session.last_in >= self.ping_interval and (pinged_at is None or session.last_in >= pinged_at):
                pinged_at = now
                await self._send(session, {"msg": "ping"})

    async def _frame(self, session: _Session, text: str) -> None:
        try:
            frame = json.loads(text)
            if not isinstance(frame, dict):
                raise ValueError
        except ValueError:
            if self.streamer:
                await self._close(session, 1007, "UNSUPPORTED_DATA")
            else:
                await self._send(session, {"msg": "error", "reason": "Bad request"})
            return
        self.frames_in.append(frame)
        kind = frame.get("msg")
        if not session.connected:
            if kind != "connect":
                if self.streamer:
                    await self._close(session, 1002, "CLOSE_PROTOCOL_ERROR")
                else:
                    await self._send(session, {"msg": "error", "reason": "Must connect first",
                                               "offendingMessage": frame})
                return
            support = frame.get("support")
            best = next((v for v in support if v in self.ddp_versions), "1") if isinstance(support, list) else "1"
            if not self.streamer and (not isinstance(support, list) or frame.get("version") not in support
                                      or best not in self.ddp_versions or frame.get("version") != best):
                await self._send(session, {"msg": "failed", "version": self.ddp_versions[0]})
                await session.ws.close()
                return
            session.connected = True
            await self._send(session, {"msg": "connected", "session": secrets.token_hex(8)})
            return
        if kind == "connect":
            await self._send(session, {"msg": "error", "reason": "Already connected", "offendingMessage": frame})
        elif kind == "ping":
            await self._send(session, {"msg": "pong", **({"id": frame["id"]} if "id" in frame else {})})
        elif kind == "pong":
            pass
        elif kind == "method":
            await self._method(session, frame)
        elif kind == "sub":
            await self._sub(session, frame)
        elif kind == "unsub":
            known = session.subs.pop(str(frame.get("id")), None)
            if known or not self.streamer:  # Meteor answers even unknown ids; the streamer stays silent
                await self._send(session, {"msg": "nosub", "id": frame.get("id")})
        elif not self.streamer:  # the streamer ignores what it does not know
            await self._send(session, {"msg": "error", "reason": "Bad request", "offendingMessage": frame})

    # -- methods -----------------------------------------------------------
    async def _method(self, session: _Session, frame: Dict[str, Any]) -> None:
        call_id, method, params = frame.get("id"), frame.get("method"), frame.get("params", [])
        if not isinstance(call_id, str) or not isinstance(method, str) or not isinstance(params, list):
            if self.streamer:
                await self._close(session, 1002, "CLOSE_PROTOCOL_ERROR")
            else:
                await self._send(session, {"msg": "error", "reason": "Malformed method invocation",
                                           "offendingMessage": frame})
            return
        if self.hold_results:
            return
        if self._limits.get(method):
            wait = self._limits[method].pop(0)
            seconds = -(-wait // 1000)
            reason = f"Error, too many requests. Please slow down. You must wait {seconds} seconds before trying again."
            await self._result(session, call_id, error=meteor_error("too-many-requests", reason,
                                                                    {"timeToReset": wait}))
            return
        handler = {
            "login": self._login, "sendMessage": self._send_message, "loadHistory": self._load_history,
            "loadMissedMessages": self._load_missed if self.missed_messages_method else None,
            "rooms/get": self._rooms_get, "subscriptions/get": self._subscriptions_get,
            "getUsersOfRoom": self._users_of_room, "stream-notify-room": self._notify_room,
            "logout": self._logout, "joinRoom": self._join_room, "leaveRoom": self._leave_room,
            "createDirectMessage": self._create_direct_message, "getRoomById": self._get_room_by_id,
            "updateMessage": self._update_message, "deleteMessage": self._delete_message,
            "setReaction": self._set_reaction, "readMessages": self._read_messages,
            "messages/get": self._messages_get,
        }.get(method) if method not in self.missing_methods else None
        if handler is None:
            reason = f"Method '{method}' not found"
            await self._result(session, call_id, error=meteor_error(404, reason))
            return
        if method != "login" and session.user is None:
            await self._result(session, call_id, error=meteor_error("error-not-allowed", "Not allowed"))
            return
        try:
            result = await handler(session, params)
        except MeteorError as exc:
            await self._result(session, call_id, error=exc.body)
            return
        await self._result(session, call_id, result=result)

    async def _result(self, session: _Session, call_id: str, result: Any = None, error: Any = None) -> None:
        frame: Dict[str, Any] = {"msg": "result", "id": call_id}
        if error is not None:
            if self.mangle_errors:  # the broker keeps only the message, as the code
                error = {"error": error.get("message") or str(error.get("error"))}
            frame["error"] = error
        elif result is not None and not (self.streamer and _js_falsy(result)):
            # Meteor omits `result` for undefined only; the streamer (`...(result && {result})`) for any falsy value
            frame["result"] = result
        await self._send(session, frame)
        await self._send(session, {"msg": "updated", "methods": [call_id]})

    async def _store(self, rid: str, text: str, username: str, message_id: Optional[str] = None,
                     extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        now = _now_ms()
        message = {
            "_id": message_id or f"msg{next(self._ids)}", "rid": rid, "msg": text, "ts": {"$date": now},
            "u": {"_id": self.users.get(username, ("", username))[1], "username": username, "name": username},
            "mentions": [], "channels": [], "_updatedAt": {"$date": now}, **(extra or {}),
        }
        self.messages[rid].append(message)
        if rid in self.room_info:
            self.room_info[rid]["lm"] = {"$date": now}  # the room's last message time (no rooms-changed push)
        await self._emit("stream-room-messages", rid, [message])
        for session in list(self._sessions):  # __my_messages__: every room of the user, one literal name
            if session.user in self.rooms.get(rid, set()) and \
                    ("stream-room-messages", "__my_messages__") in session.subs.values():
                room = self.room_info.get(rid, {})
                await self._send(session, {"msg": "changed", "collection": "stream-room-messages", "id": "id",
                                           "fields": {"eventName": "__my_messages__", "args": [message, {
                                               "roomParticipant": True, "roomType": room.get("t"),
                                               "roomName": room.get("name")}]}})
        return message


def _js_falsy(value: Any) -> bool:
    return value is None or value is False or value == 0 or value == ""  # [] and {} are truthy in JS
