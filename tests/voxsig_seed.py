"""The objects and the 14 events of Voxsig's doc (seeds/001), copied as the doc prints them (type names as
values), and `materialize()`, which puts a value of each named type in its place."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

# "Objects" section, verbatim but for the comments, which become these references.
CONTACT: Dict[str, Any] = {
    "additional_attributes": "object", "custom_attributes": "object", "email": "string", "id": "integer",
    "identifier": "string or null", "name": "string", "phone_number": "string or null", "thumbnail": "string",
}
USER: Dict[str, Any] = {
    "id": "integer", "name": "string", "available_name": "string", "avatar_url": "string",
    "availability_status": "string", "thumbnail": "string",
}
MESSAGE: Dict[str, Any] = {
    "id": "integer", "content": "string", "account_id": "integer", "inbox_id": "integer", "message_type": "integer",
    "created_at": "unix-timestamp", "updated_at": "datetime", "private": "boolean", "status": "string",
    "source_id": "string / null", "content_type": "string", "content_attributes": "object",
    "sender_type": "string", "sender_id": "integer", "external_source_ids": "object",
    "sender": {"type": "string - contact/user", **USER},
}
CONVERSATION: Dict[str, Any] = {
    "additional_attributes": {
        "browser": {"device_name": "string", "browser_name": "string", "platform_name": "string",
                    "browser_version": "string", "platform_version": "string"},
        "referer": "string", "initiated_at": {"timestamp": "iso-datetime"},
    },
    "can_reply": "boolean", "channel": "string", "id": "integer", "inbox_id": "integer",
    "contact_inbox": {"id": "integer", "contact_id": "integer", "inbox_id": "integer", "source_id": "string",
                      "created_at": "datetime", "updated_at": "datetime", "hmac_verified": "boolean"},
    "messages": [MESSAGE],
    "meta": {"sender": CONTACT, "assignee": USER},
    "status": "string", "unread_count": "integer", "agent_last_seen_at": "unix-timestamp",
    "contact_last_seen_at": "unix-timestamp", "timestamp": "unix-timestamp", "account_id": "integer",
}
NOTIFICATION: Dict[str, Any] = {
    "id": "integer", "notification_type": "string", "primary_actor_type": "string", "primary_actor_id": "integer",
    "primary_actor": {
        "can_reply": "boolean", "channel": "string", "id": "integer", "inbox_id": "integer",
        "meta": {"assignee": {"id": "integer", "name": "string", "available_name": "string", "avatar_url": "string",
                              "type": "user", "availability_status": "string", "thumbnail": "string"},
                 "hmac_verified": "boolean"},
        "agent_last_seen_at": "unix-timestamp", "contact_last_seen_at": "unix-timestamp",
        "timestamp": "unix-timestamp",
    },
    "read_at": "unix-timestamp", "secondary_actor": "object/null", "created_at": "unix-timestamp",
    "account_id": "integer", "push_message_title": "string",
}

# "Events" section: the 14 names in the doc's order, each with its `data` as the doc describes it.
EVENTS: List[Tuple[str, Dict[str, Any]]] = [
    ("conversation.created", CONVERSATION),
    ("conversation.read", CONVERSATION),
    ("message.created", MESSAGE),
    ("message.updated", MESSAGE),
    ("conversation.status_changed", CONVERSATION),
    ("conversation.typing_on", {"conversation": CONVERSATION, "user": USER, "is_private": "boolean",
                                "account_id": "integer"}),
    ("conversation.typing_off", {"conversation": CONVERSATION, "user": CONTACT, "account_id": "integer"}),
    ("assignee.changed", CONVERSATION),
    ("team.changed", CONVERSATION),
    ("conversation.contact_changed", CONVERSATION),
    ("contact.created", CONTACT),
    ("contact.updated", CONTACT),
    ("presence.update", {"account_id": "integer", "users": {"user-id": "string"},
                         "contacts": {"contact-id": "string"}}),
    ("notification_created", {"notification": NOTIFICATION, "unread_count": "integer", "count": "integer"}),
]

_VALUES = {
    "integer": 42, "string": "text", "boolean": True, "unix-timestamp": 1700000000,
    "datetime": "2024-05-01T10:00:00.000Z", "iso-datetime": "2024-05-01T10:00:00.000Z", "object": {"k": "v"},
    "string or null": None, "string / null": None, "object/null": None, "string - contact/user": "user",
    "user": "user",
}


def materialize(value: Any) -> Any:
    """The doc's example with a value of each named type in place of the type's name."""
    if isinstance(value, dict):
        return {k: materialize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [materialize(v) for v in value]
    if value in _VALUES:
        return _VALUES[value]
    raise AssertionError(f"no value for the doc's type {value!r}")
