"""The local QuickMeet server's message methods and stream fan-out: `sendMessage`, `stream-notify-room`, `changed`.

A mixin of `QuickMeetServer`: `sendMessage` checks membership and hands the
message to the server's store (which pushes it on `stream-room-messages` and
`__my_messages__`); `stream-notify-room` carries typing and user activity to
the room's other subscribers; `_emit` sends one `changed` frame to each
session subscribed to a (stream, eventName).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

from ._quickmeet_rooms import MeteorError, meteor_error

__all__ = ["Messages"]


class Messages:
    """The `sendMessage` and `stream-notify-room` handlers, and stream fan-out."""

    users: Dict[str, Tuple[str, str]]
    rooms: Dict[str, Set[str]]
    _sessions: Set[Any]

    if TYPE_CHECKING:  # QuickMeetServer's
        async def _send(self, session: Any, value: Dict[str, Any]) -> None: ...

        async def _store(self, rid: str, text: str, username: str, message_id: Optional[str] = None,
                         extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]: ...

    def _member(self, session: Any, rid: str) -> bool:
        return session.user in self.rooms.get(rid, set())

    async def _send_message(self, session: Any, params: List[Any]) -> Dict[str, Any]:
        body = params[0] if params and isinstance(params[0], dict) else {}
        rid, text = body.get("rid"), body.get("msg")
        if not isinstance(rid, str) or not self._member(session, rid):
            raise MeteorError(meteor_error("error-not-allowed", "Not allowed"))
        extra = {k: body[k] for k in ("tmid", "attachments", "alias", "emoji", "avatar") if k in body}
        return await self._store(rid, str(text or ""), session.user or "", body.get("_id"), extra)

    async def _notify_members(self, rid: str, what: str, args: List[Any]) -> None:
        for username in self.rooms.get(rid, set()):
            await self._emit("stream-notify-user", f"{self.users[username][1]}/{what}", args)

    async def _notify_room(self, session: Any, params: List[Any]) -> None:
        if len(params) >= 3 and isinstance(params[0], str) and params[1] == session.user:
            await self._emit("stream-notify-room", params[0], params[1:], skip=session)
        return None

    async def _emit(self, stream: str, event_name: str, args: List[Any], skip: Any = None) -> int:
        frame = {"msg": "changed", "collection": stream, "id": "id", "fields": {"eventName": event_name, "args": args}}
        sent = 0
        for session in list(self._sessions):
            if session is not skip and (stream, event_name) in session.subs.values():
                await self._send(session, frame)
                sent += 1
        return sent
