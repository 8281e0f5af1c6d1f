"""Hostile-but-valid event frames through Dialpad's protocol (property-based), plain and HS256-signed:
nothing but rtsync outputs and errors come out, and the next good event is still delivered."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtsync import hs256
from rtsync.events import Event
from rtsync.vendors.dialpad.protocol import DialpadProtocol
from tests.hostile import HOSTILE, check_outputs, render, spoiled

SECRET = "fuzz-websocket-secret-0123456789abcdef"
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CALL = {"call_id": 6421977457180672, "state": "hangup", "direction": "inbound", "event_timestamp": 1731624049994,
        "contact": {"id": 6131436978913280, "name": "Alameda, CA"},
        "target": {"id": 5527348325810176, "type": "office"}}
SMS = {"id": 6095823680520192, "direction": "inbound", "from_number": "+15109260499", "to_number": ["+15106666687"],
       "text": "hi", "message_status": "pending", "event_timestamp": 1731632669601, "target": {"id": 1}}
AGENT = {"availability_status": "open", "call_center_ids": ["4"], "date": 1, "event_timestamp": 2,
         "on_duty_status": "available", "target": {"id": 77, "type": "user"}}
CONTACT = {"event": "Created", "contact": {"id": "5908860123456789", "type": "shared", "phones": ["+16043111111"],
                                          "emails": [], "display_name": "sample test"}}
CHANGELOG = {"action": "operator_removed", "additional_data": {"name": "Dialpedia Ltd"}, "date": 1620328863056,
             "changed_by": {"name": "John Doe", "id": 1, "type": "User"}, "note": "Operator removed",
             "target": {"type": "Office", "id": 1111111}}

EVENTS = st.one_of(
    spoiled(CALL, [("call_id",), ("state",), ("event_timestamp",), ("target",), ("contact",), ("target", "id")]),
    spoiled(SMS, [("id",), ("message_status",), ("event_timestamp",), ("text",), ("to_number",), ("target",)]),
    spoiled(AGENT, [("target",), ("target", "id"), ("on_duty_status",), ("availability_status",),
                    ("event_timestamp",), ("call_center_ids",)]),
    spoiled(CONTACT, [("event",), ("contact",), ("contact", "id"), ("contact", "type"), ("contact", "phones")]),
    spoiled(CHANGELOG, [("action",), ("date",), ("changed_by",), ("target",), ("additional_data",), ("note",)]),
    HOSTILE.map(render),
)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@st.composite
def signed(draw: Any) -> str:
    """The event text as the claims of a JWS: validly signed, or with a hostile header, or a bad signature."""
    claims = draw(EVENTS)
    header = draw(st.one_of(st.just('{"alg":"HS256","typ":"JWT"}'), HOSTILE.map(render)))
    signing_input = f"{b64(header.encode())}.{b64(claims.encode())}"
    if draw(st.booleans()):  # signed with the right secret: the claims themselves are hostile
        mac = hmac.new(SECRET.encode(), signing_input.encode("ascii"), hashlib.sha256).digest()
    else:  # a bad signature
        mac = hashlib.sha256(signing_input.encode("ascii")).digest()
    return f"{signing_input}.{b64(mac)}"


def linked(secret: Any = None) -> DialpadProtocol:
    p = DialpadProtocol(secret=secret)
    p.use_url("wss://x/events/token", 3600, 0)
    p.opened(0)
    return p


def good(n: int, secret: bool) -> str:
    event = dict(CALL, call_id=n, event_timestamp=1731624049994 + n)
    return hs256.sign(event, SECRET.encode()) if secret else json.dumps(event)


def delivered_after(p: DialpadProtocol, secret: bool) -> None:
    after = p.received(good(99, secret), 3.0)
    check_outputs(after, (SECRET,))
    assert [(e.name, e.id) for e in after if isinstance(e, Event)] == [("call.hangup", 99)]


@SETTINGS
@given(frame=EVENTS)
def test_hostile_plain_frame_then_a_good_event(frame: str) -> None:
    p = linked()
    check_outputs(p.received(frame, 1.0), (SECRET,))
    delivered_after(p, secret=False)


@SETTINGS
@given(frame=st.one_of(signed(), EVENTS))
def test_hostile_signed_frame_then_a_good_event(frame: str) -> None:
    p = linked(SECRET)
    check_outputs(p.received(frame, 1.0), (SECRET,))
    delivered_after(p, secret=True)


@SETTINGS
@given(frame=EVENTS)
def test_a_hostile_frame_never_poisons_the_dedupe_memory(frame: str) -> None:
    # The same hostile frame twice, then a good one: each is judged on its own.
    p = linked()
    first = p.received(frame, 1.0)
    again = p.received(frame, 1.5)
    check_outputs(first + again)
    assert sum(isinstance(o, Event) for o in again) == 0 or not any(isinstance(o, Event) for o in first)
    delivered_after(p, secret=False)


@SETTINGS
@given(frame=st.one_of(spoiled(CONTACT, [("event",), ("contact",), ("contact", "id"), ("contact", "phones")]),
                       spoiled(CHANGELOG, [("action",), ("date",), ("changed_by",), ("target",)])))
def test_every_contact_or_changelog_event_delivered_has_a_typed_view_or_a_clear_error(frame: str) -> None:
    # What the protocol names contact.* or changelog* is what the typed views promise to read.
    for out in linked().received(frame, 1.0):
        if isinstance(out, Event) and out.name.startswith(("contact.", "changelog")):
            try:
                out.typed
            except ValueError as exc:  # pydantic's ValidationError: a field of the wrong type, said as such
                assert "validation error" in str(exc)
