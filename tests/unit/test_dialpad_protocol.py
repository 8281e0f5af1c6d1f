"""Dialpad's frames and token handling on recorded data (protocols/dialpad.md sections 1-5)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import warnings

import jwt
import pytest

from rtsync import hs256
from rtsync.errors import StaleConnection
from rtsync.events import Event
from rtsync.sansio import Connected, Fail, Ping, Report, Rotate
from rtsync.vendors.dialpad.models import AgentStatus, Call, ChangeLog, ContactEvent, Sms
from rtsync.vendors.dialpad.protocol import DialpadProtocol, event_name, token_lifetime

SPEC_URL = ("wss://platform-websockets-5bwy6zprxa-uc.a.run.app/events/eyJhbGciOiJIUzI1NiIsInR5cCI6InZuZC5kaWFscGFkLndl"
            "YnNvY2tldCtqd3QifQ.eyJzdWIiOiJlbmRwb2ludDoxMDAwOioiLCJleHAiOjEzNTcwMDIwMDAsImlzcyI6Imh0dHBzOi8vdGVzdGJl"
            "ZC5leGFtcGxlLmNvbSIsImlhdCI6MTM1Njk5ODQwMH0.weTDqJj39rODXRkMOC8eci_zjyNlbj8EBS1gzmBy9D4")
CALL = {"call_id": 6421977457180672, "state": "hangup", "direction": "inbound", "date_started": 1731624039404,
        "date_rang": None, "date_connected": None, "date_ended": 1731624048355, "event_timestamp": 1731624049994,
        "external_number": "+15102609745", "internal_number": "+15106666687",
        "contact": {"email": "", "id": 6131436978913280, "name": "Alameda, CA", "phone": "+15105105100",
                    "type": "local"}, "total_duration": 8951.03, "mos_score": 4.41}
SMS = {"id": 6095823680520192, "direction": "inbound", "from_number": "+15109260499",
       "to_number": ["+15106666687"], "text": "hi", "message_status": "pending", "mms": False,
       "created_date": 1731632669183, "event_timestamp": 1731632669601}
AGENT = {"availability_status": "open", "call_center_ids": ["4"], "date": 1, "event_timestamp": 2,
         "on_duty_status": "available", "target": {"id": 77, "type": "user"}}
# The samples of Dialpad's contact-events and change-log-events docs.
CONTACT = {"event": "Updated", "contact": {
    "id": "5908860123456789", "type": "shared", "first_name": "sample", "last_name": "test",
    "display_name": "sample test", "phones": ["+16043111111", "+16043111112"], "primary_phone": "+16043111111",
    "emails": ["sample@example.com"], "primary_email": "sample@example.com", "company_name": "Awesome company",
    "job_title": "Awesome job", "urls": ["https://foobar.com"], "trunk_group": "TEST", "extension": "12345"}}
CHANGELOG = {"action": "operator_removed", "additional_data": {"name": "Dialpedia Ltd", "operator_name": "Mary Sue"},
             "changed_by": {"name": "John Doe", "id": 1, "type": "User"}, "date": 1620328863056,
             "note": "Operator removed", "target": {"type": "Office", "id": 1111111}}


def test_token_lifetime_from_the_spec_example_url_read_without_verifying() -> None:
    iat, exp = 1356998400, 1357002000
    assert token_lifetime(SPEC_URL, now=iat + 100) == 3500
    # A clock hours ahead or behind must not make a fresh token look expired (a rotation loop) or
    # live for hours: the server's own exp - iat wins.
    assert token_lifetime(SPEC_URL, now=exp + 7200) == 3600
    assert token_lifetime(SPEC_URL, now=iat - 7200) == 3600
    assert token_lifetime("wss://x/events/not-a-jwt", now=iat) == 3600


def test_a_short_secret_is_logged_once_and_never_warns_per_frame(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rtsync")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the test's own signing may warn; the client may not
        frame = jwt.encode(CALL, "test_secret", algorithm="HS256")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PyJWT's InsecureKeyLengthWarning would fail here
        p = DialpadProtocol(secret="test_secret")  # the spec's own example
        for _ in range(3):
            p._seen.clear()  # noqa: SLF001 - the same frame three times, verified each time
            (e,) = p.received(frame, 0)
            assert e.data["call_id"] == CALL["call_id"]
    (record,) = caplog.records
    assert "11 bytes" in record.getMessage() and "test_secret" not in record.getMessage()


@pytest.mark.parametrize("data,name,ident,model", [
    (CALL, "call.hangup", 6421977457180672, Call), (SMS, "sms", 6095823680520192, Sms),
    (AGENT, "agent_status", 77, AgentStatus), ({"foo": 1}, "dialpad.event", None, None),
    (CONTACT, "contact.updated", "5908860123456789", ContactEvent),
    (dict(CONTACT, event="Created"), "contact.created", "5908860123456789", ContactEvent),
    (dict(CONTACT, event="Deleted"), "contact.deleted", "5908860123456789", ContactEvent),
    (CHANGELOG, "changelog.operator_removed", None, ChangeLog),
    ({k: v for k, v in CHANGELOG.items() if k != "changed_by"}, "changelog.operator_removed", None, ChangeLog),
    (dict(CHANGELOG, action="drop *; rm -rf"), "changelog", None, ChangeLog),  # not a code: no name of its own
    (dict(CONTACT, event="Merged"), "dialpad.event", None, None),  # not one of the three
])
def test_events_are_named_by_their_shape(data, name, ident, model) -> None:
    assert event_name(data) == (name, ident)
    (e,) = DialpadProtocol().received(json.dumps(data), 0)
    assert isinstance(e, Event) and (e.name, e.id) == (name, ident)
    if model:
        assert isinstance(e.typed, model)


def test_signed_frames_verified_and_claims_delivered() -> None:
    p = DialpadProtocol(secret="test_secret_of_at_least_32_bytes!")
    (e,) = p.received(jwt.encode(CALL, "test_secret_of_at_least_32_bytes!", algorithm="HS256"), 0)
    assert e.name == "call.hangup" and e.data["call_id"] == CALL["call_id"]


@pytest.mark.parametrize("frame,why", [
    (json.dumps(CALL), "unsigned"),
    (jwt.encode(CALL, "another_secret_of_at_least_32_bytes", algorithm="HS256"), "bad signature"),
    (jwt.encode(CALL, None, algorithm="none"), "'none', not HS256"),
    (jwt.encode(CALL, "test_secret_of_at_least_32_bytes!" * 2, algorithm="HS512"), "'HS512', not HS256"),
    ("bm90IGpzb24.e30.c2ln", "malformed"),
    (jwt.encode({"a": 1}, "test_secret_of_at_least_32_bytes!", algorithm="HS256").replace(".", "é.", 1), "malformed"),
    ("You are connected without a valid token, please send your api key for verification", "neither"),
])
def test_unsigned_or_badly_signed_frames_rejected_when_a_secret_is_set(frame: str, why: str) -> None:
    (report,) = DialpadProtocol(secret="test_secret_of_at_least_32_bytes!").received(frame, 0)
    assert isinstance(report, Report) and why in str(report.error)


def test_signed_frame_without_a_secret_says_what_to_do() -> None:
    (report,) = DialpadProtocol().received(jwt.encode(CALL, "s" * 32, algorithm="HS256"), 0)
    assert "pass secret=" in str(report.error)


def test_repeats_across_the_overlap_are_dropped_but_new_states_kept() -> None:
    p = DialpadProtocol()
    assert len(p.received(json.dumps(CALL), 0)) == 1
    assert p.received(json.dumps(CALL), 0) == []
    assert len(p.received(json.dumps({**CALL, "state": "postcall", "event_timestamp": 3}), 0)) == 1


def test_rotation_before_expiry_and_no_announcement_for_it() -> None:
    p = DialpadProtocol(refresh_margin=300, retry_refresh=10, keepalive=10_000)
    p.use_url("wss://x/events/t", 3600, now=0)
    assert p.deadline() == 3300
    assert isinstance(p.opened(0)[0], Connected)
    assert p.tick(3299) == []
    assert p.tick(3300) == [Rotate("websocket token refresh")] and p.rotating
    assert p.deadline() == 3310  # asked again later if the new link could not be opened
    p.use_url("wss://x/events/t2", 3600, now=3300)
    assert p.opened(3300) == []  # planned: no rtsync.connected, nothing was lost
    p.channel = "websocket:1000"
    connected, gap = p.lost() or p.opened(4000)
    assert connected.detail == {"gap_possible": True}
    # An unplanned reconnect lost what Dialpad sent meanwhile (it replays nothing): said, never hidden.
    assert isinstance(gap, Event) and gap.name == "rtsync.gap" and gap.channel == "websocket:1000"
    assert gap.data["channel"] == "websocket:1000" and gap.data["missing"] is None
    assert "re-query the REST API" in gap.data["reason"]


def test_a_quiet_link_is_pinged_and_a_silent_one_is_stale() -> None:
    p = DialpadProtocol(keepalive=30, pong_timeout=15)
    p.use_url("wss://x/events/t", 3600, now=0)
    p.opened(0)
    assert p.deadline() == 30 and p.tick(29) == []
    assert p.tick(30) == [Ping()]
    p.heard(31)  # the PONG
    assert p.deadline() == 61
    assert p.tick(61) == [Ping()]
    assert p.deadline() == 76
    (fail,) = p.tick(76)
    assert isinstance(fail, Fail) and isinstance(fail.error, StaleConnection) and fail.error.retryable


def test_distinct_events_without_id_or_timestamp_are_never_merged() -> None:
    # Contact / changelog payloads are opaque: only a byte-identical repeat is a duplicate.
    p = DialpadProtocol()
    first = p.received('{"entity": "user", "action": "update", "name": "A"}', 0)
    second = p.received('{"entity": "office", "action": "delete", "name": "B"}', 0)
    again = p.received('{"name": "B", "action": "delete", "entity": "office"}', 0)
    assert [e.data["name"] for e in first + second] == ["A", "B"]
    assert again == []


def test_any_loss_forgets_the_url_so_the_next_connect_fetches_a_fresh_one() -> None:
    p = DialpadProtocol()
    p.use_url("wss://x/events/t", 3600, now=0)
    p.opened(0)
    p.lost()
    assert p.url is None and p.time_left(1) < 0


# Hostile frames the fuzzer recorded: each is one Report with the frame cut short, the dedupe memory is
# untouched, and the next good event still arrives.
def assert_alive(p: DialpadProtocol, secret: bool = False) -> None:
    event = dict(CALL, call_id=99, event_timestamp=1731624049999)
    frame = hs256.sign(event, b"a-long-enough-websocket-secret-0123") if secret else json.dumps(event)
    (out,) = p.received(frame, 9)
    assert isinstance(out, Event) and (out.name, out.id) == ("call.hangup", 99)


def plain() -> DialpadProtocol:
    p = DialpadProtocol()
    p.use_url("wss://x/events/t", 3600, 0)
    p.opened(0)
    return p


@pytest.mark.parametrize("frame, says", [
    ("{" + '"a":{' * 1000 + "}" * 1000 + "}", "nested too deeply"),
    (json.dumps(dict(CALL, event_timestamp=[1731624049994])), "event_timestamp is a list"),
    (json.dumps(dict(CALL, event_timestamp=float("nan"))), "event_timestamp is not finite"),
    (json.dumps(dict(CALL, call_id=[6421977457180672])), "call_id is a list"),
    (json.dumps(dict(CALL, call_id={"id": 1})), "call_id is a dict"),
    (json.dumps(dict(AGENT, target="user 77")), "target is a str"),
    (json.dumps(dict(AGENT, target={"id": [77]})), "target.id is a list"),
    (json.dumps(dict(SMS, id=[1])), "id is a list"),
    (json.dumps(dict(SMS, message_status=["pending"])), "message_status is a list"),
])
def test_recorded_ill_typed_frames_are_one_report_each(frame: str, says: str) -> None:
    p = plain()
    for now in (1, 2):  # not remembered as seen: the same frame again is judged again
        (report,) = p.received(frame, now)
        assert isinstance(report, Report) and says in str(report.error) and len(str(report.error)) < 240, report
    assert not p._seen
    assert_alive(p)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


DEEP = ("[" * 1000 + "]" * 1000).encode()


def test_a_deeply_nested_jwt_is_reported_before_and_after_the_signature_check() -> None:
    key = b"a-long-enough-websocket-secret-0123"
    p = DialpadProtocol(secret=key.decode())
    p.use_url("wss://x/events/t", 3600, 0)
    p.opened(0)
    header_first = ".".join([b64(DEEP), b64(b"{}"), b64(b"x" * 32)])  # the header is read before the signature
    signing_input = ".".join([b64(b'{"alg":"HS256"}'), b64(DEEP)])
    signed = signing_input + "." + b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())
    for frame in (header_first, signed):
        (report,) = p.received(frame, 1)
        assert isinstance(report, Report) and "nested too deeply" in str(report.error), report
    assert_alive(p, secret=True)


@pytest.mark.parametrize("claims, lifetime", [
    (b'{"exp": 1e400, "iat": 1}', 3600), (b'{"exp": NaN}', 3600), (b'{"exp": [1]}', 3600),
    (b'{"exp": 10000000000000000000000000000000000000000}', 3600), (DEEP, 3600),
    (b'{"exp": 4600, "iat": [1]}', 3600), (b'{"exp": 4600, "iat": 1e400}', 3600),
])
def test_token_lifetime_of_a_hostile_url_token(claims: bytes, lifetime: float) -> None:
    token = ".".join([b64(b'{"alg":"ES256","typ":"JWT"}'), b64(claims), b64(b"sig")])
    assert token_lifetime(f"wss://x/events/{token}", now=1000) == lifetime


def test_typed_contact_and_changelog_views_keep_what_the_docs_leave_open() -> None:
    (contact,) = DialpadProtocol().received(json.dumps(CONTACT), 0)
    view = contact.typed
    assert isinstance(view, ContactEvent) and view.contact.display_name == "sample test"
    assert view.contact.phones == ["+16043111111", "+16043111112"]
    # `note` and `additional_data` have no fixed format (the doc says so): any JSON passes as it is.
    odd = dict(CHANGELOG, note=None, additional_data=[1, "two"], brand_new_field={"x": 1})
    (change,) = DialpadProtocol().received(json.dumps(odd), 0)
    assert isinstance(change.typed, ChangeLog) and change.typed.additional_data == [1, "two"]
    assert change.typed.model_extra == {"brand_new_field": {"x": 1}}


@pytest.mark.parametrize("contact_id", [[1], {"a": 1}, 1.5, True])
def test_an_ill_typed_contact_id_is_one_report_and_nothing_else(contact_id) -> None:
    p = DialpadProtocol()
    frame = json.dumps({"event": "Created", "contact": {"id": contact_id}})
    (report,) = p.received(frame, 0)
    assert isinstance(report, Report) and "contact.id" in str(report.error)
    (e,) = p.received(json.dumps(CONTACT), 0)
    assert e.name == "contact.updated"


def test_repeats_of_contact_and_changelog_events_over_a_refresh_overlap_are_dropped() -> None:
    p = DialpadProtocol()
    for data in (CONTACT, CHANGELOG):
        assert len(p.received(json.dumps(data), 0)) == 1
        assert p.received(json.dumps(data), 0) == []  # the same event on the old and new link
    assert len(p.received(json.dumps(dict(CONTACT, event="Deleted")), 0)) == 1  # not the same event
