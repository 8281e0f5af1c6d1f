"""The local QuickMeet server's test-thread controls: edits, rooms changing, unread counts, presence, rate limits.

A mixin of `QuickMeetServer`: each control runs in the server's loop (`call`)
and pushes what Rocket.Chat would push, on the streams it would use.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any, Callable, Coroutine, TypeVar, Dict, Iterable, List, Set, Tuple

from ._quickmeet_rooms import touched

__all__ = ["Controls"]

T = TypeVar("T")

def _now_ms() -> int:
    return int(time.time() * 1000)


class Controls:
    """`edit()`, `delete()`, `add_room()`, `rename_room()`, `remove_room()`, `mark_unread()`, `notify_user()`,
    `set_status()`, `rate_limit()`, `rate_limit_subscriptions()`, `issue_token()`."""

    users: Dict[str, Tuple[str, str]]
    rooms: Dict[str, Set[str]]
    room_info: Dict[str, Dict[str, Any]]
    messages: Dict[str, List[Dict[str, Any]]]
    message_trash: Dict[str, List[Dict[str, Any]]]
    unread: Dict[Tuple[str, str], int]
    tokens: Dict[str, str]
    token_issued: Dict[str, int]
    trash: List[Tuple[Set[str], Dict[str, Any]]]
    _sub_updated: Dict[Tuple[str, str], int]
    _limits: Dict[str, List[int]]
    _sub_limits: Dict[str, List[int]]
    _sessions: Set[Any]

    if TYPE_CHECKING:  # provided by QuickMeetServer and its other mixins
        def call(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, timeout: float = 30) -> T:
            raise NotImplementedError  # LocalServer's

        async def _emit(self, stream: str, event_name: str, args: List[Any], skip: Any = None) -> int:
            raise NotImplementedError  # QuickMeetServer's

        async def _send(self, session: Any, value: Dict[str, Any]) -> None:
            raise NotImplementedError  # QuickMeetServer's

        async def _notify_members(self, rid: str, what: str, args: List[Any]) -> None:
            raise NotImplementedError  # QuickMeetServer's

        def _subscription(self, username: str, rid: str) -> Dict[str, Any]:
            raise NotImplementedError  # History's

    def edit(self, message_id: str, text: str) -> None:
        """Edit a message: Rocket.Chat re-sends it whole on stream-room-messages, with a new `_updatedAt`."""

        async def go() -> None:
            for rid, stored in self.messages.items():
                for message in stored:
                    if message["_id"] == message_id:
                        message["msg"] = text
                        message["_updatedAt"] = touched(message)
                        await self._emit("stream-room-messages", rid, [message])

        self.call(go)

    def delete(self, message_id: str) -> None:
        """Delete a message (as its author or an admin would): `messages/get` lists it under `deleted`, and
        `<rid>/deleteMessage` subscribers hear `[{"_id"}]`."""

        async def go() -> None:
            for rid, stored in self.messages.items():
                for message in list(stored):
                    if message["_id"] == message_id:
                        stored.remove(message)
                        self.message_trash[rid].append({"_id": message_id, "_deletedAt": {"$date": _now_ms()}})
                        await self._emit("stream-notify-room", f"{rid}/deleteMessage", [{"_id": message_id}])

        self.call(go)

    def rate_limit_subscriptions(self, stream: str, time_to_reset_ms: int = 200, times: int = 1) -> None:
        """The next `times` subs to `stream` get `nosub` with `too-many-requests` and this `timeToReset`."""
        self._sub_limits[stream].extend([time_to_reset_ms] * times)

    def set_status(self, username: str, status: int, text: str = "") -> None:
        """The user's presence changes (0 offline, 1 online, 2 away, 3 busy): `stream-user-presence`
        subscribers following them get `changed` with `id` = the user's id and args `[username, status, text]`."""
        uid = self.users[username][1]

        async def go() -> None:
            frame = {"msg": "changed", "collection": "stream-user-presence", "id": uid,
                     "fields": {"uid": uid, "args": [[username, status, text]], "eventName": uid}}
            for session in list(self._sessions):
                if uid in session.presence and ("stream-user-presence", "") in session.subs.values():
                    await self._send(session, frame)

        self.call(go)

    def rate_limit(self, method: str, time_to_reset_ms: int = 200, times: int = 1) -> None:
        """The next `times` calls of `method` get `too-many-requests` with this `timeToReset`."""
        self._limits[method].extend([time_to_reset_ms] * times)

    def add_room(self, rid: str, members: Iterable[str]) -> None:
        """A new room: its members hear `["inserted", room]` on `<uid>/rooms-changed`."""

        async def go() -> None:
            self.rooms[rid] = set(members)
            self.room_info[rid] = room = {"_id": rid, "name": rid, "t": "p", "_updatedAt": {"$date": _now_ms()}}
            await self._notify_members(rid, "rooms-changed", ["inserted", room])

        self.call(go)

    def rename_room(self, rid: str, name: str) -> None:
        """A room changes: members hear `["updated", room]` on `<uid>/rooms-changed`."""

        async def go() -> None:
            room = self.room_info[rid]
            room.update(name=name, _updatedAt={"$date": _now_ms()})
            await self._notify_members(rid, "rooms-changed", ["updated", room])

        self.call(go)

    def remove_room(self, rid: str) -> None:
        """A room is deleted: members hear `["removed", {"_id"}]`; `rooms/get` lists it under `remove`."""

        async def go() -> None:
            members = self.rooms.pop(rid)
            del self.room_info[rid]
            self.trash.append((members, {"_id": rid, "_deletedAt": {"$date": _now_ms()}}))
            for username in members:
                await self._emit("stream-notify-user", f"{self.users[username][1]}/rooms-changed",
                                 ["removed", {"_id": rid}])

        self.call(go)

    def mark_unread(self, username: str, rid: str, count: int) -> None:
        """The user's subscription to a room changes: `["updated", subscription]` on `<uid>/subscriptions-changed`."""

        async def go() -> None:
            self.unread[(username, rid)] = count
            self._sub_updated[(username, rid)] = _now_ms()
            await self._emit("stream-notify-user", f"{self.users[username][1]}/subscriptions-changed",
                             ["updated", self._subscription(username, rid)])

        self.call(go)

    def issue_token(self, username: str) -> str:
        token = secrets.token_urlsafe(32)
        self.tokens[token] = username
        self.token_issued[token] = _now_ms()
        return token


    def notify_user(self, username: str, notification: Dict[str, Any]) -> None:
        """Push a `<uid>/notification` to the user's subscribers."""
        uid = self.users[username][1]

        async def go() -> None:
            await self._emit("stream-notify-user", f"{uid}/notification", [notification])

        self.call(go)

