"""Voxsig's ActionCable protocol on recorded frames (protocols/voxsig-actioncable.md section 3)."""

from __future__ import annotations

import json
from typing import List

import pytest

from rtsync.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionLost,
    ProtocolError,
    RequestRejected,
    StaleConnection,
)
from rtsync.events import Event
from rtsync.sansio import Connected, Fail, Report, Send
from rtsync.vendors.voxsig.models import Message, Presence, Typing
from rtsync.vendors.voxsig.protocol import (
    SubscriptionTimeout,
    VoxsigProtocol,
    build_identifier,
)

ID = '{"channel":"RoomChannel","pubsub_token":"t","account_id":1,"user_id":2}'
WELCOME = '{"type":"welcome"}'
PING = '{"type":"ping","message":1795404060}'
CONFIRM = json.dumps({"identifier": ID, "type": "confirm_subscription"})
REJECT = json.dumps({"identifier": ID, "type": "reject_subscription"})
CREATED = json.dumps({"identifier": ID, "message": {"event": "message.created",
                                                  "data": {"id": 42, "content": "hi", "account_id": 1}}})
UNAUTHORIZED = '{"type":"disconnect","reason":"unauthorized","reconnect":false}'
RESTART = '{"type":"disconnect","reason":"server_restart","reconnect":true}'


def proto(**kw) -> VoxsigProtocol:
    kw.setdefault("presence_interval", 15.0)
    return VoxsigProtocol("wss://app.voxsig.com/cable", "https://app.voxsig.com",
                          {"pubsub_token": "t", "account_id": 1, "user_id": 2}, **kw)


def subscribed(p: VoxsigProtocol, now: float = 0.0) -> list:
    p.opened(now)
    p.received(WELCOME, now)
    return p.received(CONFIRM, now)


def test_identifier_is_json_stringify_byte_for_byte() -> None:
    assert build_identifier({"channel": "RoomChannel", "pubsub_token": "t", "account_id": 1, "user_id": 2}) == ID
    assert build_identifier({"channel": "RoomChannel", "pubsub_token": "ü"}) == '{"channel":"RoomChannel","pubsub_token":"ü"}'
    assert proto().identifier == ID


def test_handshake_offers_both_subprotocols_and_an_origin() -> None:
    hs = proto().handshake()
    assert list(hs.subprotocols) == ["actioncable-v1-json", "actioncable-unsupported"]
    assert hs.origin == "https://app.voxsig.com" and 404 in hs.status_hints


def test_subscribe_on_welcome_with_the_exact_identifier() -> None:
    p = proto()
    p.opened(0)
    (send,) = p.received(WELCOME, 0)
    assert json.loads(send.text) == {"command": "subscribe", "identifier": ID}
    assert ID in send.text.replace('\\"', '"')


def test_confirm_connects_and_sends_presence_at_once_then_on_cadence() -> None:
    p = proto(presence_interval=15.0)
    out = subscribed(p, now=1.0)
    assert isinstance(out[0], Connected)
    presence = json.loads(out[1].text)
    assert presence == {"command": "message", "identifier": ID, "data": '{"action":"update_presence"}'}
    assert isinstance(presence["data"], str)  # ActionCable needs data as a JSON string
    p.received(PING, 15.5)
    assert p.deadline() == 16.0
    (again,) = p.tick(16.0)
    assert again == out[1]


def test_data_frames_become_named_events_with_the_token_masked_in_raw() -> None:
    p = proto()
    subscribed(p)
    (e,) = p.received(CREATED, 0)
    assert isinstance(e, Event) and (e.name, e.channel, e.provider) == ("message.created", "RoomChannel", "voxsig")
    assert e.data == {"id": 42, "content": "hi", "account_id": 1}
    assert '"pubsub_token' not in e.raw and "***" in e.raw
    assert isinstance(e.typed, Message) and e.typed.content == "hi"


def test_raw_string_message_and_foreign_identifier() -> None:
    p = proto()
    subscribed(p)
    (e,) = p.received(json.dumps({"identifier": ID, "message": "just a string"}), 0)
    assert (e.name, e.data) == ("message", "just a string")
    other = json.dumps({"identifier": ID.replace('"user_id":2', '"user_id":3'), "message": {"event": "x"}})
    assert p.received(other, 0) == []


def test_typed_views() -> None:
    typing = Event.make("conversation.typing_on", provider="voxsig",
                        data={"conversation": {"id": 5}, "user": {"id": 1}, "is_private": False, "account_id": 1})
    assert isinstance(typing.typed, Typing) and typing.typed.conversation.id == 5
    presence = Event.make("presence.update", provider="voxsig",
                          data={"account_id": 1, "users": {"1": "online"}, "contacts": {"7": "online"}})
    assert isinstance(presence.typed, Presence) and presence.typed.contacts == {"7": "online"}


def test_subscribe_resent_with_backoff_until_confirmed() -> None:
    p = proto()
    p.opened(0)
    p.received(WELCOME, 0)
    sends = []
    now = 0.0
    while now < 8:
        now = p.deadline()
        p.heard(now)
        sends += [(now, o) for o in p.tick(now) if isinstance(o, Send)]
    assert [round(t, 1) for t, _ in sends] == [0.5, 1.5, 3.5, 7.5]
    assert all(json.loads(o.text)["command"] == "subscribe" for _, o in sends)


def test_silence_times_out_once_then_is_final() -> None:
    p = proto(confirm_timeout=10)
    for attempt in range(2):
        p.opened(100.0 * attempt)
        p.received(WELCOME, 100.0 * attempt)
        p.heard(100.0 * attempt + 10)
        out = p.tick(100.0 * attempt + 10)
        p.lost()
        (fail,) = out
        if attempt == 0:
            assert isinstance(fail.error, SubscriptionTimeout) and fail.error.retryable
        else:
            assert isinstance(fail.error, AuthenticationError) and "invalid pubsub_token" in str(fail.error)


def test_a_confirm_resets_the_silent_count() -> None:
    p = proto(confirm_timeout=10)
    p.opened(0)
    p.received(WELCOME, 0)
    p.heard(10)
    p.tick(10)
    p.lost()
    subscribed(p, 20)
    p.lost()
    p.opened(30)
    p.received(WELCOME, 30)
    p.heard(40)
    (fail,) = p.tick(40)
    assert isinstance(fail.error, SubscriptionTimeout)


def test_reject_and_unauthorized_are_final_restart_is_not() -> None:
    p = proto()
    p.opened(0)
    p.received(WELCOME, 0)
    (fail,) = p.received(REJECT, 0)
    assert isinstance(fail.error, AuthenticationError)
    (fail,) = p.received(UNAUTHORIZED, 0)
    assert isinstance(fail.error, AuthenticationError) and not fail.error.retryable
    (fail,) = p.received(RESTART, 0)
    assert isinstance(fail.error, ConnectionLost) and fail.error.retryable


def test_stale_after_six_seconds_of_silence_any_frame_counts() -> None:
    p = proto(stale_after=6.0)
    subscribed(p, 0)
    p.received(CREATED, 5.0)  # data counts as life, not only pings
    assert p.tick(10.9) == [] or all(not isinstance(o, Fail) for o in p.tick(10.9))
    (fail,) = [o for o in p.tick(11.0) if isinstance(o, Fail)]
    assert isinstance(fail.error, StaleConnection)


def test_no_welcome_in_time() -> None:
    p = proto(welcome_timeout=10, stale_after=60)
    p.opened(0)
    (fail,) = p.tick(10)
    assert isinstance(fail.error, ConnectionLost) and "welcome" in str(fail.error)


def test_malformed_frames_are_reported() -> None:
    p = proto()
    (r1,) = p.received("{not json", 0)
    (r2,) = p.received("[1,2]", 0)
    assert isinstance(r1, Report) and isinstance(r1.error, ProtocolError) and isinstance(r2, Report)


def test_presence_needs_a_subscription() -> None:
    with pytest.raises(ConnectionLost):
        proto().update_presence(0)


# Older Chatwoot (reference section 9.2) runs `stream_from pubsub_token` before its lookups, so data for
# our identifier can come before `confirm_subscription`, or without one at all when the ids are wrong.
# Frames as ActionCable 6.1.7.10 sent them to an old-shape RoomChannel.
def leaked(i: object) -> str:
    return json.dumps({"identifier": ID, "message": {"event": "message.created", "data": {"id": i}}})


def test_old_shape_broadcasts_before_the_confirm_are_delivered_in_order() -> None:
    p = proto()
    p.opened(0)
    (first,) = p.received(WELCOME, 0)
    out = p.received(leaked(1), 0.2)
    assert p.deadline() == 0.5
    (resend,) = p.tick(0.5)
    out += p.received(leaked(2), 0.6)
    out += p.received(CONFIRM, 0.7)
    out += p.received(leaked(3), 0.8)
    # The resend is the identical string, so the server ignores it: no second stream, no duplicates.
    assert resend == first
    assert [(o.name, o.data["id"]) if isinstance(o, Event) else type(o).__name__ for o in out] == [
        ("message.created", 1), ("message.created", 2), "Connected", "Send", ("message.created", 3)]
    assert p.confirmed


def test_old_shape_leaks_neither_extend_the_confirm_wait_nor_hide_the_auth_error() -> None:
    p = proto(confirm_timeout=10)
    delivered: List[Event] = []
    fails: List[Fail] = []
    for attempt in range(2):
        t = t0 = 100.0 * attempt
        p.opened(t0)
        p.received(WELCOME, t0)
        while True:
            t += 1.0  # a leaked broadcast every second keeps the link alive, never confirmed
            delivered += [o for o in p.received(leaked(t), t) if isinstance(o, Event)]
            due = p.deadline()
            failed = [o for o in p.tick(t) if isinstance(o, Fail)] if due is not None and due <= t else []
            if failed:
                break
        assert t == t0 + 10
        fails += failed
        p.lost()
    assert len(delivered) == 20 and not p.confirmed
    assert isinstance(fails[0].error, SubscriptionTimeout)
    assert isinstance(fails[1].error, AuthenticationError) and "never confirmed" in str(fails[1].error)


# Hostile frames the fuzzer recorded: each is one Report that names the problem and quotes the frame cut
# short with the token masked, and the next good event still arrives.
SECRET_PARAMS = {"pubsub_token": "secret-pubsub-token-42", "account_id": 1, "user_id": 2}
SECRET_ID = build_identifier({"channel": "RoomChannel", **SECRET_PARAMS})


def secret_subscribed() -> VoxsigProtocol:
    p = VoxsigProtocol("wss://app.voxsig.com/cable", "https://app.voxsig.com", SECRET_PARAMS, presence_interval=15)
    p.opened(0)
    p.received(WELCOME, 0)
    p.received(json.dumps({"identifier": SECRET_ID, "type": "confirm_subscription"}), 0)
    return p


@pytest.mark.parametrize("frame, says", [
    ('{"identifier":' + "[" * 1000 + "]" * 1000 + "}", "nested too deeply"),
    (json.dumps({"identifier": ["x"], "message": {"event": "message.created"}}), "identifier is not a JSON string"),
    (json.dumps({"identifier": {"channel": "RoomChannel"}, "message": 1}), "identifier is not a JSON string"),
    (json.dumps({"identifier": "RoomChannel", "message": {}}), "identifier is not a JSON string"),
    (json.dumps({"identifier": 7, "type": "confirm_subscription"}), "identifier is not a JSON string"),
    (json.dumps({"type": ["welcome"]}), "type is a list"),
    (json.dumps({"identifier": SECRET_ID, "message": {"event": ["message.created"], "data": {}}}), "event is a list"),
])
def test_recorded_hostile_frames_are_one_report_each(frame: str, says: str) -> None:
    p = secret_subscribed()
    (report,) = p.received(frame, 1)
    assert isinstance(report, Report) and isinstance(report.error, ProtocolError)
    text = str(report.error)
    assert says in text and len(text) < 240 and "secret-pubsub-token" not in text
    good = json.dumps({"identifier": SECRET_ID, "message": {"event": "message.created", "data": {"id": 9}}})
    (event,) = p.received(good, 2)
    assert (event.name, event.data) == ("message.created", {"id": 9}) and p.confirmed


@pytest.mark.parametrize("message", [[1, 2, 3], 1e20, -5, None, "text"])
def test_a_message_of_any_json_type_is_delivered_as_is(message: object) -> None:
    # ActionCable broadcasts whatever value it is given: not an object is not an error.
    p = secret_subscribed()
    (event,) = p.received(json.dumps({"identifier": SECRET_ID, "message": message}), 1)
    assert (event.name, event.data) == ("message", message) and "secret-pubsub-token" not in event.raw


def test_a_report_never_quotes_a_token_cut_in_half() -> None:
    # The cut at 80 characters falls inside the echoed identifier: the token is masked before the cut.
    p = secret_subscribed()
    frame = '{"identifier":' + json.dumps(SECRET_ID) + ',"message":' + "[" * 1000 + "]" * 1000 + "}"
    (report,) = p.received(frame, 1)
    assert "secret-pubsub" not in str(report.error) and "***" in str(report.error)


# contact.merged (reference section 9.4) on a contact token: subscribe with the new token beside the old
# subscription, unsubscribe the old one once the new one is confirmed, use the new one from then on.
CONTACT_ID = '{"channel":"RoomChannel","pubsub_token":"old-contact-token"}'
NEW_ID = '{"channel":"RoomChannel","pubsub_token":"new-contact-token"}'


def contact_subscribed() -> VoxsigProtocol:
    p = VoxsigProtocol("wss://app.voxsig.com/cable", "https://app.voxsig.com", {"pubsub_token": "old-contact-token"},
                       presence_interval=60.0)
    p.opened(0)
    p.received(WELCOME, 0)
    p.received(json.dumps({"identifier": CONTACT_ID, "type": "confirm_subscription"}), 0)
    return p


def on(identifier: str, event: str, data: object) -> str:
    return json.dumps({"identifier": identifier, "message": {"event": event, "data": data}})


def test_contact_merged_subscribes_the_new_token_before_dropping_the_old() -> None:
    p = contact_subscribed()
    merged, subscribe = p.received(on(CONTACT_ID, "contact.merged", {"id": 7, "pubsub_token": "new-contact-token"}), 1)
    assert merged.name == "contact.merged" and merged.data == {"id": 7, "pubsub_token": "***"}
    assert "new-contact-token" not in merged.raw and "old-contact-token" not in merged.raw
    assert json.loads(subscribe.text) == {"command": "subscribe", "identifier": NEW_ID}
    assert p.token == "new-contact-token" and p.superseded == {"old-contact-token": "new-contact-token"}
    # Until the new confirm, the old subscription's frames are still ours, and commands still go to it.
    (late,) = p.received(on(CONTACT_ID, "message.created", {"id": 1}), 1.1)
    assert late.data == {"id": 1} and json.loads(p.perform("x", {})[0].text)["identifier"] == CONTACT_ID
    unsubscribe, presence = p.received(json.dumps({"identifier": NEW_ID, "type": "confirm_subscription"}), 1.2)
    assert json.loads(unsubscribe.text) == {"command": "unsubscribe", "identifier": CONTACT_ID}
    assert json.loads(presence.text)["identifier"] == NEW_ID
    assert p.received(on(CONTACT_ID, "message.created", {"id": 2}), 1.3) == []  # no longer ours
    (event,) = p.received(on(NEW_ID, "message.created", {"id": 3}), 1.4)
    assert event.data == {"id": 3} and "new-contact-token" not in event.raw
    p.lost()
    p.use_token("old-contact-token")  # a callable still returning the merged-away token
    assert p.identifier == NEW_ID


def test_the_new_token_never_confirmed_times_out_like_any_subscription() -> None:
    p = contact_subscribed()
    p.received(on(CONTACT_ID, "contact.merged", {"pubsub_token": "new-contact-token"}), 1)
    p.heard(11)
    (fail,) = [o for o in p.tick(11) if isinstance(o, Fail)]
    assert isinstance(fail.error, SubscriptionTimeout)


@pytest.mark.parametrize("data", [{"id": 7}, {"pubsub_token": ""}, {"pubsub_token": 5}, None, [1],
                                  {"pubsub_token": "old-contact-token"}, {"pubsub_token": "0"},
                                  {"pubsub_token": "has a space in it"}])
def test_contact_merged_without_a_usable_new_token_changes_nothing(data: object) -> None:
    p = contact_subscribed()
    out = p.received(on(CONTACT_ID, "contact.merged", data), 1)
    (event,) = [o for o in out if isinstance(o, Event)]
    assert event.name == "contact.merged" and p.identifier == CONTACT_ID and not p.superseded
    assert not [o for o in out if isinstance(o, Send)]  # no subscription under a token that cannot be one


def test_an_agent_token_ignores_contact_merged() -> None:
    p = proto()
    subscribed(p)
    (event,) = p.received(on(ID, "contact.merged", {"id": 7, "pubsub_token": "someone-elses"}), 1)
    assert event.data["pubsub_token"] == "***" and p.identifier == ID and "someone-elses" not in event.raw


def test_perform_sends_the_action_in_data_as_a_json_string() -> None:
    p = proto()
    with pytest.raises(ConnectionLost, match="not subscribed"):
        p.perform("speak", {})
    subscribed(p)
    (send,) = p.perform("speak", {"text": "ü", "n": 1})
    command = json.loads(send.text)
    assert command["command"] == "message" and command["identifier"] == ID
    assert json.loads(command["data"]) == {"action": "speak", "text": "ü", "n": 1}
    for action, data in [("", {}), ("x", {"action": "y"}), ("x", {"v": float("nan")}), ("x", {"v": {1, 2}})]:
        with pytest.raises(ConfigurationError):
            p.perform(action, data)


@pytest.mark.parametrize("frame, final, kind", [
    ({"reason": "unauthorized", "reconnect": False}, True, AuthenticationError),
    ({"reason": "unauthorized"}, True, AuthenticationError),
    ({"reason": "unauthorized", "reconnect": True}, False, ConnectionLost),
    ({"reason": "invalid_request", "reconnect": False}, True, RequestRejected),
    ({"reason": "invalid_request", "reconnect": True}, False, ConnectionLost),
    ({"reason": "server_restart", "reconnect": True}, False, ConnectionLost),
    ({"reason": "server_restart", "reconnect": False}, True, RequestRejected),
    ({"reason": "remote", "reconnect": True}, False, ConnectionLost),
    ({"reason": "remote", "reconnect": False}, True, RequestRejected),
    ({"reason": "remote"}, False, ConnectionLost),
    ({"reason": ["odd"], "reconnect": False}, True, RequestRejected),
    ({"reconnect": "no"}, False, ConnectionLost),
])
def test_disconnect_is_classified_by_reason_and_flag(frame: dict, final: bool, kind: type) -> None:
    (fail,) = proto().received(json.dumps({"type": "disconnect", **frame}), 0)
    assert type(fail.error) is kind and fail.error.retryable is not final
