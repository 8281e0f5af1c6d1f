"""Pydantic views of Voxsig (Chatwoot) payloads, one per object the vendor doc lists; unknown fields kept."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from ...events import register_view

__all__ = [
    "AssigneeChange", "Contact", "ContactInbox", "Conversation", "ConversationMeta", "Message", "Notification",
    "NotificationPayload", "Presence", "Sender", "Typing", "User",
]

# The doc says "unix-timestamp" for most times but "datetime" (ISO text) for some, and Chatwoot
# sends either depending on the field and version: keep whichever came.
Time = Optional[Union[int, float, str]]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class User(_Model):
    """An agent or admin."""

    id: Optional[int] = None
    name: Optional[str] = None
    available_name: Optional[str] = None
    avatar_url: Optional[str] = None
    type: Optional[str] = None
    availability_status: Optional[str] = None
    thumbnail: Optional[str] = None


class Contact(_Model):
    """A contact; on `contact.merged` to a contact token, `pubsub_token` is the token that replaces it
    (masked in events: read `VoxsigClient.pubsub_token`)."""

    id: Optional[int] = None
    name: Optional[str] = None
    email: Optional[str] = None
    phone_number: Optional[str] = None
    identifier: Optional[str] = None
    thumbnail: Optional[str] = None
    account_id: Optional[int] = None
    pubsub_token: Optional[str] = None
    additional_attributes: Dict[str, Any] = {}
    custom_attributes: Dict[str, Any] = {}


class Sender(Contact, User):
    """A message's sender: a contact or a user, told apart by `type` ("contact" / "user")."""


class Message(_Model):
    id: Optional[int] = None
    content: Optional[str] = None
    account_id: Optional[int] = None
    inbox_id: Optional[int] = None
    conversation_id: Optional[int] = None
    message_type: Optional[int] = None
    created_at: Time = None
    updated_at: Time = None
    private: Optional[bool] = None
    status: Optional[str] = None
    source_id: Optional[str] = None
    content_type: Optional[str] = None
    content_attributes: Dict[str, Any] = {}
    sender_type: Optional[str] = None
    sender_id: Optional[int] = None
    external_source_ids: Dict[str, Any] = {}
    sender: Optional[Sender] = None
    attachments: List[Dict[str, Any]] = []


class ContactInbox(_Model):
    id: Optional[int] = None
    contact_id: Optional[int] = None
    inbox_id: Optional[int] = None
    source_id: Optional[str] = None
    created_at: Time = None
    updated_at: Time = None
    hmac_verified: Optional[bool] = None


class ConversationMeta(_Model):
    sender: Optional[Contact] = None
    assignee: Optional[User] = None
    hmac_verified: Optional[bool] = None


class Conversation(_Model):
    id: Optional[int] = None
    account_id: Optional[int] = None
    inbox_id: Optional[int] = None
    channel: Optional[str] = None
    can_reply: Optional[bool] = None
    status: Optional[str] = None
    unread_count: Optional[int] = None
    additional_attributes: Dict[str, Any] = {}
    contact_inbox: Optional[ContactInbox] = None
    messages: List[Message] = []
    meta: ConversationMeta = Field(default_factory=ConversationMeta)
    agent_last_seen_at: Time = None
    contact_last_seen_at: Time = None
    timestamp: Time = None


class AssigneeChange(Conversation):
    """`assignee.changed`: the conversation, and how it was assigned (Chatwoot adds these two)."""

    automatic_assignment: Optional[bool] = None
    assignment: Optional[Dict[str, Any]] = None


class Typing(_Model):
    """`conversation.typing_on` / `_off`; `is_private` may be absent on `_off` (the doc omits it)."""

    conversation: Optional[Conversation] = None
    user: Optional[Sender] = None
    is_private: Optional[bool] = None
    account_id: Optional[int] = None


class Notification(_Model):
    id: Optional[int] = None
    notification_type: Optional[str] = None
    primary_actor_type: Optional[str] = None
    primary_actor_id: Optional[int] = None
    primary_actor: Optional[Conversation] = None
    secondary_actor: Optional[Dict[str, Any]] = None
    read_at: Time = None
    created_at: Time = None
    push_message_title: Optional[str] = None
    user_id: Optional[int] = None
    account_id: Optional[int] = None


class NotificationPayload(_Model):
    notification: Optional[Notification] = None
    unread_count: Optional[int] = None
    count: Optional[int] = None
    account_id: Optional[int] = None


class Presence(_Model):
    account_id: Optional[int] = None
    users: Dict[str, str] = {}
    contacts: Dict[str, str] = {}


# First match wins: the specific names before the globs.
for _pattern, _model in (
    ("message.*", Message), ("first.reply.created", Message),
    ("conversation.typing_*", Typing), ("assignee.changed", AssigneeChange),
    ("conversation.*", Conversation), ("team.changed", Conversation),
    ("contact.*", Contact), ("notification.*", NotificationPayload), ("notification_*", NotificationPayload),
    ("presence.update", Presence),
):
    register_view("voxsig", _pattern, _model)
