"""Pydantic views of Dashly messages, one per documented channel kind; `event.typed` returns them.

Dashly documents each channel's meaning but not its message's fields, so every
view keeps all fields as they came (`extra="allow"`: `typed.<field>` works and
`typed.model_dump()` returns them) and adds only what the channel name tells:
the kind, so a callback subscribed to many channels can tell them apart.
"""

from __future__ import annotations

from typing import ClassVar, Dict, Type

from pydantic import BaseModel, ConfigDict

from ...events import register_view

__all__ = [
    "ConversationAssigned", "ConversationClosed", "ConversationRead", "ConversationReply",
    "ConversationStarted", "ConversationStartedUser", "ConversationTagAdded", "ConversationTagDeleted",
    "ConversationTyping", "DashlyMessage", "Ping", "UserEvent", "UserPresenceChanged", "UserPropsChanged",
    "VIEWS",
]


class DashlyMessage(BaseModel):
    """The `message` of a Dashly event, every field kept."""

    model_config = ConfigDict(extra="allow")
    kind: ClassVar[str] = ""


class Ping(DashlyMessage):
    """A message of the `ping` channel (connection integrity monitoring)."""

    kind = "ping"


class UserPresenceChanged(DashlyMessage):
    kind = "user_presence_changed"


class ConversationStarted(DashlyMessage):
    """`conversation.{app_id}` and `conversation.{app_id}.{user_id}`: a new conversation."""

    kind = "conversation"


class ConversationStartedUser(DashlyMessage):
    kind = "conversation_started_user"


class ConversationReply(DashlyMessage):
    kind = "conversation_reply"


class ConversationTyping(DashlyMessage):
    kind = "conversation_typing"


class ConversationRead(DashlyMessage):
    kind = "conversation_read"


class ConversationAssigned(DashlyMessage):
    kind = "conversation_assigned"


class ConversationClosed(DashlyMessage):
    kind = "conversation_closed"


class ConversationTagAdded(DashlyMessage):
    kind = "conversation_tag_added"


class ConversationTagDeleted(DashlyMessage):
    kind = "conversation_tag_deleted"


class UserPropsChanged(DashlyMessage):
    kind = "user_props_changed"


class UserEvent(DashlyMessage):
    """`event.{app_id}.{user_id}`: the user performed an event."""

    kind = "event"


#: channel kind -> its view
VIEWS: Dict[str, Type[DashlyMessage]] = {
    model.kind: model for model in (
        Ping, UserPresenceChanged, ConversationStarted, ConversationStartedUser, ConversationReply,
        ConversationTyping, ConversationRead, ConversationAssigned, ConversationClosed, ConversationTagAdded,
        ConversationTagDeleted, UserPropsChanged, UserEvent,
    )
}

register_view("dashly", "dashly.ping", Ping)
for _kind, _model in VIEWS.items():
    if _kind != "ping":
        register_view("dashly", f"{_kind}.*", _model)
