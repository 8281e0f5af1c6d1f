"""Every event and object of Voxsig's doc (seeds/001), decoded from frames carrying the doc's payloads."""

from __future__ import annotations

import json
from typing import Any, Dict

import pytest

from rtsync.events import Event
from rtsync.vendors.voxsig import models
from rtsync.vendors.voxsig.protocol import VoxsigProtocol
from tests.voxsig_seed import (
    CONTACT,
    CONVERSATION,
    EVENTS,
    MESSAGE,
    NOTIFICATION,
    USER,
    materialize,
)

PARAMS = {"pubsub_token": "seed-user-token", "account_id": 1, "user_id": 2}
ID = json.dumps({"channel": "RoomChannel", **PARAMS}, separators=(",", ":"))

VIEWS = {
    "conversation.created": models.Conversation, "conversation.read": models.Conversation,
    "message.created": models.Message, "message.updated": models.Message,
    "conversation.status_changed": models.Conversation, "conversation.typing_on": models.Typing,
    "conversation.typing_off": models.Typing, "assignee.changed": models.AssigneeChange,
    "team.changed": models.Conversation, "conversation.contact_changed": models.Conversation,
    "contact.created": models.Contact, "contact.updated": models.Contact, "presence.update": models.Presence,
    "notification_created": models.NotificationPayload,
}


def subscribed() -> VoxsigProtocol:
    p = VoxsigProtocol("wss://app.voxsig.com/cable", "https://app.voxsig.com", PARAMS, presence_interval=15.0)
    p.opened(0)
    p.received('{"type":"welcome"}', 0)
    p.received(json.dumps({"identifier": ID, "type": "confirm_subscription"}), 0)
    return p


def test_the_doc_lists_fourteen_events() -> None:
    assert len(EVENTS) == 14 and len({name for name, _ in EVENTS}) == 14 and set(VIEWS) == {n for n, _ in EVENTS}


@pytest.mark.parametrize("name, schema", EVENTS, ids=[name for name, _ in EVENTS])
def test_each_event_of_the_doc_decodes_with_its_typed_view(name: str, schema: Dict[str, Any]) -> None:
    data = materialize(schema)
    frame = json.dumps({"identifier": ID, "message": {"event": name, "data": data}})
    (event,) = subscribed().received(frame, 1.0)
    assert isinstance(event, Event)
    # The doc's `notification_created` is the wire's `notification.created`: one name for both.
    assert event.name == ("notification.created" if name == "notification_created" else name)
    assert event.data == data and event.channel == "RoomChannel" and "seed-user-token" not in event.raw
    typed = event.typed
    assert type(typed) is VIEWS[name]
    assert typed.model_dump(exclude_unset=True) == data  # every field the doc shows is kept, none invented


def test_conversation_view_types_the_nested_objects() -> None:
    c = models.Conversation.model_validate(materialize(CONVERSATION))
    assert c.id == 42 and c.can_reply is True and c.timestamp == 1700000000
    assert isinstance(c.meta.sender, models.Contact) and isinstance(c.meta.assignee, models.User)
    assert isinstance(c.contact_inbox, models.ContactInbox) and c.contact_inbox.hmac_verified is True
    assert isinstance(c.messages[0], models.Message) and c.messages[0].sender.type == "user"
    assert c.additional_attributes["browser"]["browser_name"] == "text"


def test_contact_user_message_and_notification_views() -> None:
    contact = models.Contact.model_validate(materialize(CONTACT))
    assert (contact.id, contact.identifier, contact.phone_number, contact.thumbnail) == (42, None, None, "text")
    user = models.User.model_validate(materialize(USER))
    assert user.available_name == "text" and user.availability_status == "text"
    message = models.Message.model_validate(materialize(MESSAGE))
    assert message.updated_at == "2024-05-01T10:00:00.000Z" and message.created_at == 1700000000
    assert message.content_attributes == {"k": "v"} and message.source_id is None
    assert isinstance(message.sender, models.Sender) and message.sender.available_name == "text"
    note = models.Notification.model_validate(materialize(NOTIFICATION))
    assert isinstance(note.primary_actor, models.Conversation) and note.primary_actor.meta.assignee.type == "user"
    assert note.primary_actor.meta.hmac_verified is True and note.secondary_actor is None
    assert note.push_message_title == "text" and note.read_at == 1700000000


def test_typing_off_without_is_private_and_a_contact_as_the_typist() -> None:
    (_, schema), = [e for e in EVENTS if e[0] == "conversation.typing_off"]
    typing = models.Typing.model_validate(materialize(schema))
    assert typing.is_private is None and typing.user.email == "text"


def test_a_payload_of_the_wrong_shape_is_a_validation_error_not_a_crash() -> None:
    event = Event.make("message.created", provider="voxsig", data={"id": "not a number"})
    with pytest.raises(ValueError):
        _ = event.typed
    assert Event.make("conversation.updated", provider="voxsig", data={"id": 1}).typed.id == 1  # not in the doc
