"""The blocking Rocket.Chat methods a bot needs (join, send, edit, react, read, typing ...), as QuickMeetClient methods.

Each is one DDP method call under the name Rocket.Chat gives it; like
`call()`, it waits for the client to be ready (logged in) within its
`timeout`, and raises `CallError` with the server's `error` and `reason`
(`error-not-allowed`, `error-action-not-allowed`, ...), `RateLimited`,
`ConnectionLost` or `CallTimeout`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from ...errors import ConfigurationError

if TYPE_CHECKING:  # pydantic loads at the first call that returns a view, not with the client
    from .models import Message, Room, UserRef

__all__ = ["BotMethods"]


class BotMethods:
    """Mixed into `QuickMeetClient`, whose `call()`, `login_name` and `wait_connected()` they use."""

    if TYPE_CHECKING:  # provided by the class this is mixed into
        @property
        def login_name(self) -> Optional[str]:
            raise NotImplementedError  # QuickMeetClient's

        def call(self, method: str, *params: Any, timeout: float = 30.0) -> Any:
            raise NotImplementedError  # QuickMeetClient's

        def wait_connected(self, timeout: Optional[float] = None) -> bool:
            raise NotImplementedError  # Client's

    # -- rooms ----------------------------------------------------------------
    def join_room(self, rid: str, *, code: Optional[str] = None, timeout: float = 30.0) -> None:
        """Join a public room (`joinRoom`); `code` is the join code of a room that has one."""
        self.call("joinRoom", rid, *([code] if code is not None else []), timeout=timeout)

    def leave_room(self, rid: str, *, timeout: float = 30.0) -> None:
        """Leave a room (`leaveRoom`); the last owner cannot (`error-you-are-last-owner`)."""
        self.call("leaveRoom", rid, timeout=timeout)

    def create_direct_message(self, *usernames: str, timeout: float = 30.0) -> str:
        """Open (or find) the direct-message room with these users (`createDirectMessage`); its room id."""
        result = self.call("createDirectMessage", *usernames, timeout=timeout)
        return str(result.get("rid") or result.get("_id")) if isinstance(result, dict) else str(result)

    def get_room_info(self, rid: str, *, timeout: float = 30.0) -> Room:
        """The room (`getRoomById`): name, type, ... (unknown fields kept)."""
        from .models import Room

        return Room.model_validate(self.call("getRoomById", rid, timeout=timeout))

    def get_room_members(self, rid: str, *, online_only: bool = False, limit: int = 50, skip: int = 0,
                         filter: str = "", timeout: float = 30.0) -> List[UserRef]:
        """One page of a room's members (`getUsersOfRoom`); `online_only` leaves out offline users."""
        result = self.call("getUsersOfRoom", rid, not online_only, {"limit": limit, "skip": skip}, filter,
                           timeout=timeout)
        records = result.get("records") if isinstance(result, dict) else None
        from .models import UserRef

        return [UserRef.model_validate(r) for r in records or [] if isinstance(r, dict)]

    # -- messages -------------------------------------------------------------
    def send_message(self, rid: str, text: str = "", *, tmid: Optional[str] = None,
                     attachments: Optional[Sequence[Dict[str, Any]]] = None, alias: Optional[str] = None,
                     emoji: Optional[str] = None, avatar: Optional[str] = None, message_id: Optional[str] = None,
                     timeout: float = 30.0) -> Message:
        """Send a message (`sendMessage`) and return it as stored.

        `tmid` replies in that message's thread; `attachments` are Rocket.Chat attachment objects;
        `alias`, `emoji` and `avatar` change how the sender is shown (the bot needs the
        permission). `message_id` sets the `_id`, so a retry after ConnectionLost cannot post twice."""
        body: Dict[str, Any] = {"rid": rid, "msg": text}
        for key, value in (("tmid", tmid), ("alias", alias), ("emoji", emoji), ("avatar", avatar),
                           ("_id", message_id)):
            if value is not None:
                body[key] = value
        if attachments is not None:
            body["attachments"] = list(attachments)
        from .models import Message

        return Message.model_validate(self.call("sendMessage", body, timeout=timeout))

    def update_message(self, rid: str, message_id: str, text: str, *, timeout: float = 30.0) -> None:
        """Edit a message's text (`updateMessage`); subscribers see it again with a new `_updatedAt`."""
        self.call("updateMessage", {"_id": message_id, "rid": rid, "msg": text}, timeout=timeout)

    def delete_message(self, message_id: str, *, timeout: float = 30.0) -> None:
        """Delete a message (`deleteMessage`); `<rid>/deleteMessage` subscribers hear of it."""
        self.call("deleteMessage", {"_id": message_id}, timeout=timeout)

    def react(self, message_id: str, emoji: str, *, add: Optional[bool] = None, timeout: float = 30.0) -> None:
        """React to a message with `:emoji:` (`setReaction`): toggles, unless `add` says which way."""
        name = emoji if emoji.startswith(":") else f":{emoji}:"
        self.call("setReaction", name, message_id, *([add] if add is not None else []), timeout=timeout)

    def mark_read(self, rid: str, *, timeout: float = 30.0) -> None:
        """Mark every message of a room read for this user (`readMessages`)."""
        self.call("readMessages", rid, timeout=timeout)

    # -- presence in a room -----------------------------------------------------
    def send_user_activity(self, rid: str, activities: Sequence[str] = ("user-typing",), *,
                           tmid: Optional[str] = None, timeout: float = 30.0) -> None:
        """Say what this user is doing in a room (`<rid>/user-activity`): `("user-typing",)`, `()` to stop.

        The server relays it to the room's other subscribers, never back to this connection."""
        extra: Dict[str, Any] = {"tmid": tmid} if tmid else {}
        self.call("stream-notify-room", f"{rid}/user-activity", self._own_name(timeout), list(activities), extra,
                  timeout=timeout)

    def send_typing(self, rid: str, typing: bool = True, *, legacy: bool = False, timeout: float = 30.0) -> None:
        """Start or stop typing in a room (`user-activity`); `legacy=True` also sends the old
        `<rid>/typing` flag that clients and servers before `user-activity` read."""
        self.send_user_activity(rid, ("user-typing",) if typing else (), timeout=timeout)
        if legacy:
            self.call("stream-notify-room", f"{rid}/typing", self._own_name(timeout), typing, timeout=timeout)

    def _own_name(self, timeout: float) -> str:
        """The username the server checks activity against (it drops others' in silence)."""
        if self.login_name is None:
            self.wait_connected(timeout)  # the server names the user at login
        if self.login_name is None:
            raise ConfigurationError("the server did not say this user's username: give username= to the client")
        return self.login_name
