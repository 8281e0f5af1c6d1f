"""Pydantic views of Voxsig (Chatwoot) event payloads; unknown fields are kept, nothing is required."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from pydantic import BaseModel, ConfigDict

from ...events import register_view

__all__ = [
    "Contact", "Conversation", "Message", "Notification", "NotificationPayload", "Presence", "Typing", "User",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class User(_Model):
    id: Optional[int] = None
    name: Optional[str] = None
    available_name: Optional[str] = None
    avatar_url: Optional[str] = None
    type: Optional[str] = None
    availability_status: Optional[str] = None


class Contact(_Model):
    id: Optional[int] = None
    name: Optional[str] = None
    email: Optional[str] = None
    phone_number: Optional[str] = None
    identifier: Optional[str] = None
    account_id: Optional[int] = None
    additional_attributes: Dict[str, Any] = {}
    custom_attributes: Dict[str, Any] = {}


class Message(_Model):
    id: Optional[int] = None
    content: Optional[str] = None
    account_id: Optional[int] = None
    inbox_id: Optional[int] = None
    conversation_id: Optional[int] = None
    message_type: Optional[int] = None
    created_at: Optional[int] = None
    private: Optional[bool] = None
    sender: Optional[Dict[str, Any]] = None
    attachments: List[Dict[str, Any]] = []


class Conversation(_Model):
    id: Optional[int] = None
    account_id: Optional[int] = None
    inbox_id: Optional[int] = None
    status: Optional[str] = None
    unread_count: Optional[int] = None
    messages: List[Message] = []
    meta: Dict[str, Any] = {}


class Typing(_Model):
    conversation: Optional[Conversation] = None
    user: Optional[Dict[str, Any]] = None
    is_private: Optional[bool] = None
    account_id: Optional[int] = None


class Notification(_Model):
    id: Optional[int] = None
    notification_type: Optional[str] = None
    primary_actor_type: Optional[str] = None
    primary_actor_id: Optional[int] = None
    read_at: Optional[Any] = None
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


for _pattern, _model in (
    ("message.*", Message), ("first.reply.created", Message),
    ("conversation.typing_*", Typing),
    ("conversation.*", Conversation), ("assignee.changed", Conversation), ("team.changed", Conversation),
    ("contact.*", Contact), ("notification.*", NotificationPayload), ("presence.update", Presence),
):
    register_view("voxsig", _pattern, _model)
