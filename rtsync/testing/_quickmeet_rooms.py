"""The local QuickMeet server's room and message methods a bot uses: join, leave, DMs, edits, deletes, reactions, reads.

A mixin of `QuickMeetServer`; each handler follows the Rocket.Chat method of
the same name (arguments, the `error-*` codes, what it pushes on which stream,
`undefined` results sent without `result`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

__all__ = ["History", "MeteorError", "RoomMethods", "meteor_error", "touched"]


def meteor_error(error: Any, reason: Optional[str] = None, details: Any = None) -> Dict[str, Any]:
    body: Dict[str, Any] = {"isClientSafe": True, "error": error}
    if reason is not None:
        body["reason"] = reason
    if details is not None:
        body["details"] = details
    body["message"] = f"{reason} [{error}]" if reason else f"[{error}]"
    body["errorType"] = "Meteor.Error"
    return body


class MeteorError(Exception):
    def __init__(self, body: Dict[str, Any]) -> None:
        super().__init__(body.get("message"))
        self.body = body


def _now_ms() -> int:
    return int(time.time() * 1000)


def touched(message: Dict[str, Any]) -> Dict[str, int]:
    """A new `_updatedAt` for a changed message: now, but always after the last one (two changes in one
    millisecond would read as one version to a client that dedupes on `_id` + `_updatedAt`)."""
    return {"$date": max(_now_ms(), message.get("_updatedAt", {}).get("$date", 0) + 1)}


class RoomMethods:
    """Handlers `(session, params) -> result` for the server's method table."""

    users: Dict[str, Tuple[str, str]]
    rooms: Dict[str, Set[str]]
    room_info: Dict[str, Dict[str, Any]]
    messages: Dict[str, List[Dict[str, Any]]]
    unread: Dict[Tuple[str, str], int]
    message_trash: Dict[str, List[Dict[str, Any]]]
    _sub_updated: Dict[Tuple[str, str], int]

    if TYPE_CHECKING:  # provided by QuickMeetServer and its other mixins
        async def _emit(self, stream: str, event_name: str, args: List[Any], skip: Any = None) -> int:
            raise NotImplementedError  # QuickMeetServer's

        def _subscription(self, username: str, rid: str) -> Dict[str, Any]:
            raise NotImplementedError  # QuickMeetServer's

    def _room(self, session: Any, rid: Any, *, member: bool = True) -> Dict[str, Any]:
        if not isinstance(rid, str) or rid not in self.rooms:
            raise MeteorError(meteor_error("error-invalid-room", "Invalid room", {"method": "room"}))
        if member and session.user not in self.rooms[rid]:
            raise MeteorError(meteor_error("error-not-allowed", "Not allowed"))
        return self.room_info[rid]

    def _message(self, session: Any, message_id: Any) -> Tuple[str, Dict[str, Any]]:
        for rid, stored in self.messages.items():
            for message in stored:
                if message["_id"] == message_id and session.user in self.rooms.get(rid, set()):
                    return rid, message
        raise MeteorError(meteor_error("error-invalid-message", "Invalid message"))

    async def _joined(self, username: str, rid: str) -> None:
        self.rooms[rid].add(username)
        self._sub_updated[(username, rid)] = _now_ms()
        uid = self.users[username][1]
        await self._emit("stream-notify-user", f"{uid}/rooms-changed", ["inserted", self.room_info[rid]])
        await self._emit("stream-notify-user", f"{uid}/subscriptions-changed",
                         ["inserted", self._subscription(username, rid)])

    async def _join_room(self, session: Any, params: List[Any]) -> Any:
        room = self._room(session, params[0] if params else None, member=False)
        if room["t"] != "c":
            raise MeteorError(meteor_error("error-not-allowed", "Not allowed", {"method": "joinRoom"}))
        if room.get("joinCode") and (params[1:2] or [None])[0] != room["joinCode"]:
            raise MeteorError(meteor_error("error-code-invalid", "Invalid Room Password", {"method": "joinRoom"}))
        if session.user not in self.rooms[room["_id"]]:
            await self._joined(session.user, room["_id"])
        return True

    async def _leave_room(self, session: Any, params: List[Any]) -> Any:
        rid = self._room(session, params[0] if params else None, member=False)["_id"]
        if session.user not in self.rooms[rid]:
            raise MeteorError(meteor_error("error-user-not-in-room", "You are not in this room",
                                           {"method": "leaveRoom"}))
        self.rooms[rid].discard(session.user)
        await self._emit("stream-notify-user", f"{self.users[session.user][1]}/subscriptions-changed",
                         ["removed", {"_id": f"{rid}-{session.user}", "rid": rid}])
        return True

    async def _create_direct_message(self, session: Any, params: List[Any]) -> Any:
        names = sorted({session.user, *[p for p in params if isinstance(p, str)]})
        unknown = [n for n in names if n not in self.users]
        if unknown or len(names) < 2:
            raise MeteorError(meteor_error("error-invalid-user", "Invalid user", {"method": "createDirectMessage"}))
        rid = "".join(self.users[n][1] for n in names)
        if rid not in self.rooms:
            self.rooms[rid] = set()
            self.room_info[rid] = {"_id": rid, "name": ",".join(names), "t": "d", "usernames": names, "_updatedAt": {"$date": _now_ms()}}
            for name in names:
                await self._joined(name, rid)
        return {"rid": rid, "_id": rid, "t": "d", "usernames": names}

    async def _get_room_by_id(self, session: Any, params: List[Any]) -> Any:
        room = self._room(session, params[0] if params else None, member=False)
        if room["t"] != "c" and session.user not in self.rooms[room["_id"]]:
            raise MeteorError(meteor_error("error-not-allowed", "Not allowed", {"method": "getRoomById"}))
        return room

    async def _update_message(self, session: Any, params: List[Any]) -> Any:
        body = params[0] if params and isinstance(params[0], dict) else {}
        rid, message = self._message(session, body.get("_id"))
        if message["u"]["username"] != session.user or body.get("rid") not in (None, rid):
            raise MeteorError(meteor_error("error-action-not-allowed", "Message editing not allowed",
                                           {"method": "updateMessage", "action": "Message_editing"}))
        now = touched(message)
        message.update(msg=str(body.get("msg") or ""), editedAt=now, _updatedAt=now,
                       editedBy={"_id": self.users[session.user][1], "username": session.user})
        await self._emit("stream-room-messages", rid, [message])
        return None

    async def _delete_message(self, session: Any, params: List[Any]) -> Any:
        body = params[0] if params and isinstance(params[0], dict) else {}
        rid, message = self._message(session, body.get("_id"))
        if message["u"]["username"] != session.user:
            raise MeteorError(meteor_error("error-action-not-allowed", "Not allowed",
                                           {"method": "deleteMessage", "action": "Delete_message"}))
        self.messages[rid].remove(message)
        self.message_trash[rid].append({"_id": message["_id"], "_deletedAt": {"$date": _now_ms()}})
        await self._emit("stream-notify-room", f"{rid}/deleteMessage", [{"_id": message["_id"]}])
        return None

    async def _set_reaction(self, session: Any, params: List[Any]) -> Any:
        reaction = params[0] if params else None
        if not isinstance(reaction, str) or not (reaction.startswith(":") and reaction.endswith(":")):
            raise MeteorError(meteor_error("error-not-allowed", "Invalid emoji provided.", {"method": "setReaction"}))
        rid, message = self._message(session, params[1] if len(params) > 1 else None)
        users = message.setdefault("reactions", {}).setdefault(reaction, {"usernames": []})["usernames"]
        wanted = params[2] if len(params) > 2 and isinstance(params[2], bool) else session.user not in users
        if wanted and session.user not in users:
            users.append(session.user)
        elif not wanted and session.user in users:
            users.remove(session.user)
        if not users:
            del message["reactions"][reaction]
        message["_updatedAt"] = touched(message)
        await self._emit("stream-room-messages", rid, [message])
        return None

    async def _read_messages(self, session: Any, params: List[Any]) -> Any:
        rid = self._room(session, params[0] if params else None)["_id"]
        self.unread[(session.user, rid)] = 0
        self._sub_updated[(session.user, rid)] = _now_ms()
        await self._emit("stream-notify-user", f"{self.users[session.user][1]}/subscriptions-changed",
                         ["updated", self._subscription(session.user, rid)])
        return None


class History:
    """Handlers for reading: `loadHistory`, `loadMissedMessages`, `rooms/get`, `subscriptions/get`, `getUsersOfRoom`,
    `messages/get`."""

    users: Dict[str, Tuple[str, str]]
    rooms: Dict[str, Set[str]]
    room_info: Dict[str, Dict[str, Any]]
    messages: Dict[str, List[Dict[str, Any]]]
    unread: Dict[Tuple[str, str], int]
    trash: List[Tuple[Set[str], Dict[str, Any]]]
    message_trash: Dict[str, List[Dict[str, Any]]]
    _sub_updated: Dict[Tuple[str, str], int]

    if TYPE_CHECKING:  # provided by QuickMeetServer and its other mixins
        def _member(self, session: Any, rid: str) -> bool:
            raise NotImplementedError  # QuickMeetServer's

    async def _load_history(self, session: Any, params: List[Any]) -> Any:
        rid = params[0] if params else None
        if not isinstance(rid, str) or not self._member(session, rid):
            return False
        end = params[1] if len(params) > 1 else None
        limit = params[2] if len(params) > 2 and isinstance(params[2], int) else 20
        stored = self.messages.get(rid, [])
        if isinstance(end, dict) and "$date" in end:
            stored = [m for m in stored if m["ts"]["$date"] < end["$date"]]
        newest_first = list(reversed(stored))[:limit]
        return {"messages": newest_first, "unreadNotLoaded": 0}

    @staticmethod
    def _since(params: List[Any]) -> Optional[int]:
        """A `{"$date"}` first param asks for what changed after it; anything else (even 0) for all."""
        first = params[0] if params else None
        return int(first["$date"]) if isinstance(first, dict) and "$date" in first else None

    def _changed_since(self, session: Any, items: List[Dict[str, Any]], since: Optional[int],
                       suffix: str = "") -> Any:
        if since is None:
            return items
        return {"update": [i for i in items if i["_updatedAt"]["$date"] > since],
                "remove": [{**gone, "_id": gone["_id"] + suffix} for members, gone in self.trash
                           if session.user in members and gone["_deletedAt"]["$date"] > since]}

    async def _load_missed(self, session: Any, params: List[Any]) -> Any:
        rid = params[0] if params else None
        start = params[1] if len(params) > 1 else None
        if not isinstance(rid, str) or not (isinstance(start, dict) and "$date" in start):
            raise MeteorError(meteor_error(400, "Match failed"))  # check(rid, String); check(start, Date)
        if not self._member(session, rid):
            return False
        newer = [m for m in self.messages.get(rid, []) if m["ts"]["$date"] > start["$date"]]
        return list(reversed(newer))  # every message after `start`, newest first, no limit

    async def _rooms_get(self, session: Any, params: List[Any]) -> Any:
        rooms = [self.room_info[rid] for rid in self.rooms if self._member(session, rid)]
        return self._changed_since(session, rooms, self._since(params))

    def _subscription(self, username: str, rid: str) -> Dict[str, Any]:
        room, unread = self.room_info[rid], self.unread.get((username, rid), 0)
        updated = max(room["_updatedAt"]["$date"], self._sub_updated.get((username, rid), 0))
        return {"_id": f"{rid}-{username}", "rid": rid, "name": room["name"], "fname": room["name"], "t": room["t"],
                "u": {"_id": self.users[username][1], "username": username}, "open": True, "alert": unread > 0,
                "unread": unread, "userMentions": 0, "groupMentions": 0, "_updatedAt": {"$date": updated}}

    async def _subscriptions_get(self, session: Any, params: List[Any]) -> Any:
        username = session.user or ""
        subs = [self._subscription(username, rid) for rid in self.rooms if self._member(session, rid)]
        return self._changed_since(session, subs, self._since(params), suffix=f"-{username}")

    async def _users_of_room(self, session: Any, params: List[Any]) -> Any:
        rid = params[0] if params else None
        if not isinstance(rid, str) or rid not in self.rooms:
            raise MeteorError(meteor_error("error-invalid-room", "Invalid room"))
        if not self._member(session, rid):
            raise MeteorError(meteor_error("error-not-allowed", "Not allowed"))
        records = [{"_id": self.users[u][1], "username": u, "name": u} for u in sorted(self.rooms[rid])]
        return {"total": len(records), "records": records}

    async def _messages_get(self, session: Any, params: List[Any]) -> Any:
        """`messages/get(rid, {lastUpdate})`: what changed in a room since then, deletions included."""
        rid = params[0] if params else None
        options = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
        if not isinstance(rid, str) or not rid:
            raise MeteorError(meteor_error("error-invalid-room", "Invalid room", {"method": "messages/get"}))
        if not self._member(session, rid):
            raise MeteorError(meteor_error("error-not-allowed", "Not allowed", {"method": "messages/get"}))
        since = options.get("lastUpdate")
        if isinstance(since, dict) and isinstance(since.get("$date"), (int, float)):
            after = since["$date"]
            return {"updated": [m for m in reversed(self.messages.get(rid, [])) if m["_updatedAt"]["$date"] > after],
                    "deleted": [d for d in reversed(self.message_trash.get(rid, [])) if d["_deletedAt"]["$date"] > after]}
        count = options.get("count") if isinstance(options.get("count"), int) else 20
        return {"messages": list(reversed(self.messages.get(rid, [])))[:count]}
