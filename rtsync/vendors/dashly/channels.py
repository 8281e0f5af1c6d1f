"""Names of the 17 channel kinds Dashly documents, built from typed ids: `conversation_reply(100, user_id=7)`."""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional

from ...errors import ConfigurationError

__all__ = [
    "KINDS",
    "Channel",
    "conversation",
    "conversation_assigned",
    "conversation_closed",
    "conversation_read",
    "conversation_reply",
    "conversation_started_user",
    "conversation_tag_added",
    "conversation_tag_deleted",
    "conversation_typing",
    "event",
    "parse",
    "ping",
    "user_presence_changed",
    "user_props_changed",
]

#: kind -> which ids its name takes: "" (none), "app", "app+user?" (user optional) or "app+user"
KINDS: Dict[str, str] = {
    "ping": "",
    "user_presence_changed": "app",
    "conversation": "app+user?",
    "conversation_started_user": "app",
    "conversation_reply": "app+user?",
    "conversation_typing": "app+user?",
    "conversation_read": "app+user?",
    "conversation_assigned": "app",
    "conversation_closed": "app",
    "conversation_tag_added": "app",
    "conversation_tag_deleted": "app",
    "user_props_changed": "app+user",
    "event": "app+user",
}


class Channel(NamedTuple):
    """A documented channel name taken apart: its kind and ids (None where the name has none)."""

    kind: str
    app_id: Optional[int] = None
    user_id: Optional[int] = None


def _id(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{name} must be a non-negative integer (Dashly ids are numeric), got {value!r}")
    return value


def _name(kind: str, app_id: int, user_id: Optional[int] = None) -> str:
    name = f"{kind}.{_id('app_id', app_id)}"
    return name if user_id is None else f"{name}.{_id('user_id', user_id)}"


def ping() -> str:
    """`ping`: for connection integrity monitoring (its messages arrive as `dashly.ping` events)."""
    return "ping"


def user_presence_changed(app_id: int) -> str:
    """A user's status changed."""
    return _name("user_presence_changed", app_id)


def conversation(app_id: int, user_id: Optional[int] = None) -> str:
    """A new conversation started (with user `user_id` only, if given)."""
    return _name("conversation", app_id, user_id)


def conversation_started_user(app_id: int) -> str:
    """A user started a new conversation."""
    return _name("conversation_started_user", app_id)


def conversation_reply(app_id: int, user_id: Optional[int] = None) -> str:
    """A new message in a conversation (with user `user_id` only, if given)."""
    return _name("conversation_reply", app_id, user_id)


def conversation_typing(app_id: int, user_id: Optional[int] = None) -> str:
    """Someone is typing (in the conversation with user `user_id` only, if given)."""
    return _name("conversation_typing", app_id, user_id)


def conversation_read(app_id: int, user_id: Optional[int] = None) -> str:
    """A conversation was read (by user `user_id` only, if given)."""
    return _name("conversation_read", app_id, user_id)


def conversation_assigned(app_id: int) -> str:
    """A conversation was assigned."""
    return _name("conversation_assigned", app_id)


def conversation_closed(app_id: int) -> str:
    """A conversation was closed."""
    return _name("conversation_closed", app_id)


def conversation_tag_added(app_id: int) -> str:
    """A tag was added to a conversation."""
    return _name("conversation_tag_added", app_id)


def conversation_tag_deleted(app_id: int) -> str:
    """A tag was removed from a conversation."""
    return _name("conversation_tag_deleted", app_id)


def user_props_changed(app_id: int, user_id: int) -> str:
    """User `user_id`'s properties changed."""
    return _name("user_props_changed", app_id, _id("user_id", user_id))


def event(app_id: int, user_id: int) -> str:
    """User `user_id` performed an event."""
    return _name("event", app_id, _id("user_id", user_id))


def parse(channel: str) -> Optional[Channel]:
    """`Channel(kind, app_id, user_id)` for a documented channel name, None for any other name."""
    kind, _, rest = channel.partition(".")
    shape = KINDS.get(kind)
    if shape is None:
        return None
    if shape == "":
        return Channel(kind) if not rest else None
    parts = rest.split(".") if rest else []
    if not parts or len(parts) > 2 or not all(p.isdigit() and p.isascii() for p in parts):
        return None
    if (len(parts) == 2) != (shape == "app+user") and shape != "app+user?":
        return None
    return Channel(kind, int(parts[0]), int(parts[1]) if len(parts) == 2 else None)
