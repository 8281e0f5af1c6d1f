"""The local QuickMeet server's sessions: `login` (digest, email, resume token, TOTP, throttle), `logout`, and `sub`.

A mixin of `QuickMeetServer`, following Meteor accounts and Rocket.Chat's
stream publications (reference sections 9.2 to 9.4): the 403 shapes, 5
unauthenticated logins per 10 s, `nosub` with `invalid-event-name`,
`not-allowed`, 404 or `too-many-requests`, `stream-user-presence` with its
own parameters, and a livechat room's messages for whoever sends its visitor
token as the sub's `args[0]` (`{"token": ...}`), member or not.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any, Dict, List, Set, Tuple

from ._quickmeet_rooms import MeteorError, meteor_error

__all__ = ["Sessions"]

NINETY_DAYS_MS = 90 * 24 * 3600 * 1000


def _now_ms() -> int:
    return int(time.time() * 1000)


class Sessions:
    """Handlers for `login` and `logout`, and the `sub` frame."""

    users: Dict[str, Tuple[str, str]]
    emails: Dict[str, str]
    tokens: Dict[str, str]
    revoked: Set[str]
    token_issued: Dict[str, int]
    token_lifetime: float
    totp: Dict[str, str]
    mode: str
    livechat: Dict[str, str]
    _sub_limits: Dict[str, List[int]]

    if TYPE_CHECKING:  # provided by QuickMeetServer and its other mixins
        @property
        def streamer(self) -> bool: ...

        async def _send(self, session: Any, value: Dict[str, Any]) -> None: ...

        async def _close(self, session: Any, code: int, reason: str = "") -> None: ...

        def _member(self, session: Any, rid: str) -> bool: ...

        def issue_token(self, username: str) -> str: ...

    async def _login(self, session: Any, params: List[Any]) -> Dict[str, Any]:
        now = time.monotonic()
        while session.logins and now - session.logins[0] > 10:
            session.logins.popleft()
        if session.user is None and len(session.logins) >= 5:
            raise MeteorError(meteor_error(
                "too-many-requests", "Error, too many requests. Please slow down. You must wait 10 seconds "
                "before trying again.", {"timeToReset": 10000}))
        session.logins.append(now)
        request = params[0] if params and isinstance(params[0], dict) else {}
        if "resume" in request:
            token = request["resume"]
            username = self.tokens.get(token) if token not in self.revoked else None
            if username is None:
                raise MeteorError(meteor_error(403, "You've been logged out by the server. Please log in again."))
            if self._expires(token) <= _now_ms():
                raise MeteorError(meteor_error(403, "Your session has expired. Please log in again."))
            kind = "resume"
        else:
            code = None
            if isinstance(request.get("totp"), dict):  # the second try: {"totp": {"login": {...}, "code"}}
                code = request["totp"].get("code")
                request = request["totp"].get("login") or {}
            user = request.get("user") or {}
            username = user.get("username") if "username" in user else self.emails.get(str(user.get("email")))
            digest = (request.get("password") or {}).get("digest")
            if username not in self.users:
                raise MeteorError(meteor_error(403, "User not found"))
            if digest != hashlib.sha256(self.users[username][0].encode()).hexdigest():
                raise MeteorError({"error": 403, "reason": "Incorrect password",
                                    "message": "Incorrect password [403]", "errorType": "Meteor.Error"})
            if username in self.totp and code is None:
                raise MeteorError(meteor_error("totp-required", "TOTP Required", {
                    "method": "email", "codeGenerated": True, "availableMethods": ["email"]}))
            if username in self.totp and code != self.totp[username]:
                raise MeteorError(meteor_error("totp-invalid", "TOTP Invalid", {"method": "email"}))
            token = self.issue_token(username)
            kind = "password"
        session.user, session.token = username, token
        uid = self.users[username][1]
        await self._send(session, {"msg": "added", "collection": "users", "id": uid,
                                   "fields": {"username": username}})
        # A resume keeps the token's own expiry (Meteor counts from when it was issued).
        return {"id": uid, "token": token, "tokenExpires": {"$date": self._expires(token)}, "type": kind}

    def _expires(self, token: str) -> int:
        return self.token_issued.get(token, _now_ms()) + int(self.token_lifetime * 1000)

    async def _logout(self, session: Any, params: List[Any]) -> None:
        if session.token is not None:
            self.tokens.pop(session.token, None)
        session.user = session.token = None
        return None

    async def _sub(self, session: Any, frame: Dict[str, Any]) -> None:
        sub_id, name, params = frame.get("id"), frame.get("name"), frame.get("params", [])
        if not isinstance(sub_id, str) or not isinstance(name, str):
            if self.streamer:
                await self._close(session, 1002, "CLOSE_PROTOCOL_ERROR")
            else:
                await self._send(session, {"msg": "error", "reason": "Malformed subscription",
                                           "offendingMessage": frame})
            return
        if sub_id in session.subs and not self.streamer:
            return  # Meteor ignores a duplicate active id; the streamer runs it again
        if self._sub_limits.get(name):
            wait = self._sub_limits[name].pop(0)
            reason = (f"Error, too many requests. Please slow down. You must wait {-(-wait // 1000)} seconds "
                      "before trying again.")
            await self._send(session, {"msg": "nosub", "id": sub_id, "error": meteor_error(
                "too-many-requests", reason, {"timeToReset": wait})})
            return
        if name == "stream-user-presence" and session.user is not None:
            options = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
            extra = options.get("args") if isinstance(options.get("args"), list) else []
            change = extra[0] if extra and isinstance(extra[0], dict) else {}
            session.presence |= {u for u in change.get("added") or [] if isinstance(u, str)}
            session.presence -= {u for u in change.get("removed") or [] if isinstance(u, str)}
            session.subs[sub_id] = (name, "")
            await self._send(session, {"msg": "ready", "subs": [sub_id]})
            return
        if name not in ("stream-room-messages", "stream-notify-room", "stream-notify-user"):
            await self._send(session, {"msg": "nosub", "id": sub_id,
                                       "error": meteor_error(404, f"Subscription '{name}' not found")})
            return
        event_name = params[0] if params and isinstance(params[0], str) else ""
        if not event_name:
            await self._send(session, {"msg": "nosub", "id": sub_id, "error": meteor_error("invalid-event-name")})
            return
        options = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
        extra = options.get("args") if isinstance(options.get("args"), list) else []
        visitor = extra[0].get("token") if extra and isinstance(extra[0], dict) else None
        if not (self._may_read(session, name, event_name) or
                name == "stream-room-messages" and visitor is not None and self.livechat.get(event_name) == visitor):
            await self._send(session, {"msg": "nosub", "id": sub_id, "error": meteor_error("not-allowed")})
            return
        session.subs[sub_id] = (name, event_name)
        await self._send(session, {"msg": "ready", "subs": [sub_id]})

    def _may_read(self, session: Any, stream: str, event_name: str) -> bool:
        if session.user is None:
            return False
        if stream == "stream-room-messages" and event_name == "__my_messages__":
            return True
        if stream == "stream-room-messages":
            return self._member(session, event_name)
        if stream == "stream-notify-room":
            return self._member(session, event_name.split("/", 1)[0])
        return event_name.split("/", 1)[0] == self.users[session.user][1]

