"""DialpadClient against the local Dialpad (REST + expiring sockets), and its REST calls under `responses`."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Iterator, List

import pytest
import requests
import responses

import rtsync
from rtsync.cli import main
from rtsync.events import Event
from rtsync.testing.dialpad import (
    DialpadServer,
    agent_status_event,
    call_event,
    call_sequence,
    changelog_event,
    contact_event,
    sms_event,
)
from rtsync.vendors.dialpad.models import AgentStatus, Call, ChangeLog, ContactEvent, Sms
from tests.conftest import wait_for, watch

KEY = "dp-secret-api-key-123"
FAST = rtsync.Backoff(base=0.05, cap=0.2)


@pytest.fixture
def server() -> Iterator[DialpadServer]:
    with DialpadServer(api_keys={KEY}) as s:
        yield s


def make(server: DialpadServer, **kw) -> rtsync.DialpadClient:
    kw.setdefault("backoff", FAST)
    return rtsync.DialpadClient(KEY, url=server.url, **kw)



def vendor(got: List[Event]) -> List[Event]:
    return [e for e in got if not e.name.startswith("rtsync.")]


def test_creates_a_websocket_and_names_events(server: DialpadServer) -> None:
    c = make(server)
    got, up = watch(c)
    with c:
        assert up.wait(5)
        assert server.rest_calls[0] == "POST /api/v2/websockets" and c.websocket_id is not None
        for event in (call_event("ringing", 1), call_event("connected", 1), call_event("hangup", 1),
                      sms_event("hi"), agent_status_event()):
            server.publish(event)
        assert wait_for(lambda: len(vendor(got)) == 5)
    assert [e.name for e in vendor(got)] == ["call.ringing", "call.connected", "call.hangup", "sms", "agent_status"]
    assert vendor(got)[3].typed.text == "hi"


def test_subscriptions_helpers_and_subscription_scoped_socket(server: DialpadServer) -> None:
    c = make(server)
    sub = c.create_subscription("call", call_states=["ringing", "hangup"])
    c.create_subscription("call", call_states=["connected"])
    c.create_subscription("call")
    assert sub["endpoint_id"] == c.websocket_id and "websocket_url" in sub["websocket"]
    assert len(c.list_subscriptions("call")) == 3  # two pages
    scoped = rtsync.DialpadClient(KEY, subscription_id=sub["id"], url=server.url, backoff=FAST)
    got, up = watch(scoped)
    with scoped:
        assert up.wait(5)
        server.publish(call_event("ringing"))
        assert wait_for(lambda: vendor(got))
    assert f"GET /api/v2/subscriptions/call/{sub['id']}" in server.rest_calls
    with pytest.raises(rtsync.ConfigurationError):
        c.create_subscription("fax")


def test_existing_websocket_gets_a_fresh_url_by_get(server: DialpadServer) -> None:
    ws_id = make(server).create_websocket()["id"]
    c = make(server, websocket_id=ws_id)
    got, up = watch(c)
    with c:
        assert up.wait(5)
    assert server.rest_calls[-1] == f"GET /api/v2/websockets/{ws_id}"


def test_wrong_api_key_is_final(server: DialpadServer) -> None:
    c = rtsync.DialpadClient("wrong", url=server.url, backoff=FAST)
    with pytest.raises(rtsync.AuthenticationError):
        c.run_forever()
    assert len(server.rest_calls) == 1


@responses.activate
def test_rest_statuses_are_classified() -> None:
    base = "https://dialpad.test"
    c = rtsync.DialpadClient(KEY, url=base)
    responses.add(responses.GET, f"{base}/api/v2/websockets/1", status=403)
    responses.add(responses.GET, f"{base}/api/v2/websockets/2", status=429, headers={"Retry-After": "700"})
    responses.add(responses.GET, f"{base}/api/v2/websockets/3", status=503)
    responses.add(responses.GET, f"{base}/api/v2/websockets/4", status=404)
    with pytest.raises(rtsync.AuthenticationError):
        c.get_websocket(1)
    with pytest.raises(rtsync.RateLimited) as limited:  # longer than the REST helpers wait: raised at once
        c.get_websocket(2)
    assert limited.value.retry_after == 700 and len(responses.calls) == 2
    with pytest.raises(rtsync.ConnectionLost):
        c.get_websocket(3)
    with pytest.raises(rtsync.RequestRejected):
        c.get_websocket(4)
    with pytest.raises(rtsync.ConfigurationError):
        c.get_websocket("1/../../users")  # an id never becomes a path of its own
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {KEY}"


def test_api_key_and_url_token_never_leak(server: DialpadServer, caplog: pytest.LogCaptureFixture,
                                          capsys: pytest.CaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server.token_lifetime = 1.5
    c = make(server, secret="payload-secret-xyz-of-at-least-32-bytes", refresh_margin=0.5)
    got, up = watch(c)
    with c:
        assert up.wait(5)
        server.publish(call_event("ringing"))
        assert wait_for(lambda: vendor(got))
        server.drop()
        time.sleep(1.5)  # reconnect plus a refresh
    tokens = [t for t in c._secrets if t.count(".") == 2]  # noqa: SLF001 - the URL tokens it learned
    assert tokens
    assert main(["-vv", "listen", "dialpad", "--api-key", "wrong-" + KEY, "--base-url", server.url]) == 3
    out, err = capsys.readouterr()
    text = "\n".join(r.getMessage() for r in caplog.records) + repr(got) + repr(c) + out + err
    assert "/events/***" in text  # we do log where we connect, redacted
    for secret in [KEY, "payload-secret-xyz-of-at-least-32-bytes", *tokens]:
        assert secret not in text


def test_the_secret_dialpad_echoes_is_used_and_follows_a_change(server: DialpadServer) -> None:
    first, second = "owner-set-secret-of-at-least-32-bytes", "rotated-secret-of-at-least-32-bytes!!"
    websocket_id = make(server).create_websocket(secret=first)["id"]
    c = make(server, websocket_id=websocket_id)  # no secret given: Dialpad's answer carries it
    got, up = watch(c)
    with c:
        assert up.wait(5)
        server.publish(call_event("ringing", call_id=1))
        assert wait_for(lambda: [e.id for e in vendor(got)] == [1])
        requests.patch(f"{server.url}/api/v2/websockets/{websocket_id}", json={"secret": second},
                       headers={"Authorization": f"Bearer {KEY}"}, timeout=5).raise_for_status()
        server.drop()  # the next fresh URL comes with the new secret
        assert wait_for(lambda: sum(e.name == "rtsync.connected" for e in got) == 2)
        server.publish(call_event("ringing", call_id=2))
        assert wait_for(lambda: [e.id for e in vendor(got)] == [1, 2])
    assert not any(e.name == "rtsync.error" for e in got)
    assert first in c._secrets and second in c._secrets  # noqa: SLF001 - both redacted


def test_hourly_refreshes_do_not_grow_the_redaction_list(server: DialpadServer) -> None:
    server.token_lifetime = 0.6
    c = make(server, refresh_margin=0.3)
    got, up = watch(c)
    with c:
        assert up.wait(5)
        assert wait_for(lambda: sum(r.startswith("GET") for r in server.rest_calls) >= 6, timeout=10)
    tokens = [t for t in c._secrets if t.count(".") == 2]  # noqa: SLF001
    assert 1 <= len(tokens) <= 3 and KEY in c._secrets  # noqa: SLF001


def test_events_reach_the_sockets_their_subscriptions_route_them_to(server: DialpadServer) -> None:
    owner = make(server)
    ringing = owner.create_subscription("call", call_states=["ringing"])  # creates the websocket
    owner.create_subscription("sms", direction="outbound")
    wide = make(server, websocket_id=owner.websocket_id)
    scoped = make(server, subscription_id=ringing["id"])
    wide_got, wide_up = watch(wide)
    scoped_got, scoped_up = watch(scoped)
    with wide, scoped:
        assert wide_up.wait(5) and scoped_up.wait(5)
        for event in call_sequence(call_id=7):
            server.publish(event, route=True)
        server.publish(sms_event("in", direction="inbound"), route=True)  # filtered out: the sms subscription is outbound
        server.publish(sms_event("out", direction="outbound"), route=True)
        assert wait_for(lambda: len(vendor(wide_got)) == 2 and len(vendor(scoped_got)) == 1)
        owner.update_subscription("call", ringing["id"], enabled=False)
        server.publish(call_event("ringing", call_id=8), route=True)
        server.publish(sms_event("last", direction="outbound"), route=True)
        assert wait_for(lambda: len(vendor(wide_got)) == 3)
    assert [e.name for e in vendor(wide_got)] == ["call.ringing", "sms", "sms"]
    assert [e.name for e in vendor(scoped_got)] == ["call.ringing"]


def test_rest_rate_limits_per_operation(server: DialpadServer) -> None:
    server.limits["create"] = (2, 60.0)
    c = make(server)
    first = c.create_websocket()
    c.create_websocket()
    c.rest.max_wait = 0.5  # the server asks for up to a minute: more than this client waits
    with pytest.raises(rtsync.RateLimited) as limited:
        c.create_websocket()
    assert 1 <= (limited.value.retry_after or 0) <= 60
    assert c.get_websocket(first["id"])["id"] == first["id"]  # other operations have their own budget
    assert [ws["id"] for ws in c.list_websockets()][:1] == [first["id"]]
    c.update_websocket(first["id"], "new-secret-of-at-least-thirty-two-bytes")
    assert c.get_websocket(first["id"])["signature"]["secret"] == "new-secret-of-at-least-thirty-two-bytes"
    c.delete_websocket(first["id"])
    with pytest.raises(rtsync.RequestRejected):
        c.get_websocket(first["id"])


def test_a_rest_429_is_waited_out_and_the_call_sent_again(server: DialpadServer) -> None:
    c = make(server)
    server.rate_limit(2, retry_after=1)  # the next two calls are refused, asking for a second each
    created = c.create_subscription("sms", direction="inbound")
    assert created["direction"] == "inbound"
    assert server.rest_calls == ["POST /api/v2/websockets"] * 3 + ["POST /api/v2/subscriptions/sms"]
    assert [s["id"] for s in server.subscriptions()] == [created["id"]]


def test_stop_ends_a_rest_call_waiting_out_a_429(server: DialpadServer) -> None:
    c = make(server)
    server.rate_limit(1, retry_after=60)
    outcome: List[BaseException] = []

    def call() -> None:
        try:
            c.create_websocket()
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    assert wait_for(lambda: server.rest_calls == ["POST /api/v2/websockets"])  # refused: it waits (or will)
    c.stop()  # never started: stop() still ends the wait
    caller.join(10)
    assert not caller.is_alive()
    assert isinstance(outcome[0], rtsync.ConnectionLost) and "not sent again" in str(outcome[0])
    assert server.rest_calls == ["POST /api/v2/websockets"] and server.endpoints() == []
    assert c.create_websocket()["id"] in server.endpoints()  # and the client's REST works again after it


#: one subscription of each of the five kinds, with the fields Dialpad requires of it
KINDS = {"call": {"call_states": ["ringing", "hangup"]}, "sms": {"direction": "inbound"},
         "agent_status": {"agent_type": "callcenter"}, "contact": {"contact_type": "shared"}, "changelog": {}}


def test_all_five_subscription_kinds_end_to_end(server: DialpadServer) -> None:
    owner = make(server)
    subs = {kind: owner.create_subscription(kind, **fields) for kind, fields in KINDS.items()}
    for kind, sub in subs.items():
        got = owner.get_subscription(kind, sub["id"])
        assert got["id"] == sub["id"] and got["endpoint_id"] == owner.websocket_id
        assert f"endpoint:{owner.websocket_id}:{kind}:{sub['id']}" in str(jwt_claims(got["websocket"]["websocket_url"]))
    wide = make(server, websocket_id=owner.websocket_id)
    scoped = {kind: make(server, subscription_id=sub["id"], subscription_type=kind) for kind, sub in subs.items()}
    wide_got, wide_up = watch(wide)
    scoped_got = {kind: watch(c) for kind, c in scoped.items()}
    events = [call_event("ringing", call_id=5), call_event("connected", call_id=5), sms_event("hi"),
              agent_status_event("busy"), contact_event("Created", id="5908860123456789"),
              contact_event("Deleted", contact_type="local"), changelog_event("updated_ivr")]
    wide.start()
    for c in scoped.values():
        c.start()
    try:
        assert wide_up.wait(5) and all(up.wait(5) for _, up in scoped_got.values())
        for event in events:
            server.publish(event, route=True)
        assert wait_for(lambda: len(vendor(wide_got)) == 5 and all(vendor(g) for g, _ in scoped_got.values()))
    finally:
        wide.stop()
        for c in scoped.values():
            c.stop()
    # call.connected is not among the call subscription's states; the local contact not of its type.
    assert [e.name for e in vendor(wide_got)] == [
        "call.ringing", "sms", "agent_status", "contact.created", "changelog.updated_ivr"]
    assert {kind: [e.name for e in vendor(g)] for kind, (g, _) in scoped_got.items()} == {
        "call": ["call.ringing"], "sms": ["sms"], "agent_status": ["agent_status"],
        "contact": ["contact.created"], "changelog": ["changelog.updated_ivr"]}
    call, sms, agent, contact, change = vendor(wide_got)
    assert isinstance(call.typed, Call) and call.id == 5
    assert isinstance(sms.typed, Sms) and sms.typed.text == "hi"
    assert isinstance(agent.typed, AgentStatus) and agent.typed.on_duty_status == "busy"
    assert isinstance(contact.typed, ContactEvent) and contact.id == "5908860123456789"
    assert contact.typed.event == "Created" and contact.typed.contact.phones == ["+16043111111"]
    assert isinstance(change.typed, ChangeLog) and change.typed.action == "updated_ivr" and change.id is None
    assert change.typed.changed_by is not None and change.typed.changed_by["type"] == "User"


def jwt_claims(url: str) -> dict:
    import jwt

    return dict(jwt.decode(url.rsplit("/", 1)[-1], options={"verify_signature": False}))


def test_subscriptions_dialpad_requires_fields_of_are_refused_without_them(server: DialpadServer) -> None:
    c = make(server)
    for kind in ("agent_status", "contact"):
        with pytest.raises(rtsync.RequestRejected) as refused:
            c.create_subscription(kind)
        assert refused.value.status == 400
    assert server.subscriptions() == []


def test_environment_chooses_the_rest_base() -> None:
    assert rtsync.DialpadClient(KEY).url == "https://dialpad.com"
    assert rtsync.DialpadClient(KEY, environment="sandbox").url == "https://sandbox.dialpad.com"
    assert rtsync.DialpadClient(KEY, environment="sandbox", url="http://127.0.0.1:9/").url == "http://127.0.0.1:9"
    with pytest.raises(rtsync.ConfigurationError, match="sandbox"):
        rtsync.DialpadClient(KEY, environment="staging")


@responses.activate
def test_the_sandbox_is_where_the_rest_calls_go() -> None:
    responses.add(responses.GET, "https://sandbox.dialpad.com/api/v2/subscriptions/sms/7", json={"id": 7})
    assert rtsync.DialpadClient(KEY, environment="sandbox").get_subscription("sms", 7) == {"id": 7}


def test_a_rotated_api_key_is_used_at_the_next_connect(server: DialpadServer) -> None:
    keys = ["first-key-of-the-vault", "second-key-of-the-vault"]
    current = {"key": keys[0]}
    server.api_keys = {keys[0]}
    asked: List[str] = []

    def api_key() -> str:  # a vault lookup
        asked.append(current["key"])
        return current["key"]

    c = rtsync.DialpadClient(api_key, url=server.url, backoff=FAST)
    got, up = watch(c)
    with c:
        assert up.wait(5)
        server.publish(call_event("ringing", call_id=1))
        assert wait_for(lambda: [e.id for e in vendor(got)] == [1])
        current["key"] = keys[1]
        server.api_keys = {keys[1]}  # the old key is revoked: REST refuses it with 401
        server.drop()
        assert wait_for(lambda: sum(e.name == "rtsync.connected" for e in got) == 2)
        server.publish(call_event("ringing", call_id=2))
        assert wait_for(lambda: [e.id for e in vendor(got)] == [1, 2])
    assert c.error is None and asked[0] == keys[0] and asked[-1] == keys[1]
    assert not any(e.name == "rtsync.error" for e in got)
    # Dialpad replays nothing: the drop is said as a gap of unknown size on the websocket.
    (gap,) = [e for e in got if e.name == "rtsync.gap"]
    assert gap.data["channel"] == f"websocket:{c.websocket_id}" and gap.data["missing"] is None
    assert keys[0] in c._secrets and keys[1] in c._secrets  # noqa: SLF001 - both redacted


def test_a_callable_secret_signs_the_websocket_it_creates_and_verifies_its_frames(server: DialpadServer) -> None:
    secret = "vault-held-signing-secret-of-32-bytes"
    c = make(server, secret=lambda: secret)
    got, up = watch(c)
    with c:
        assert up.wait(5)
        (websocket,) = server.endpoints()
        assert c.get_websocket(websocket)["signature"]["secret"] == secret  # created with it
        server.send_raw('{"call_id": 9, "state": "ringing", "event_timestamp": 1}')  # unsigned: refused
        server.publish(call_event("ringing", call_id=10))  # signed with the secret
        assert wait_for(lambda: [e.id for e in vendor(got)] == [10])
        assert wait_for(lambda: any(e.name == "rtsync.error" and "unsigned" in e.data["error"] for e in got))
    assert secret in c._secrets  # noqa: SLF001
    with pytest.raises(rtsync.ConfigurationError, match="secret"):
        with make(server, secret=lambda: "") as failing:
            failing.wait_connected(5)


def test_the_local_dialpad_answers_hostile_requests_with_4xx_never_a_crash(server: DialpadServer) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    websocket = make(server).create_websocket()["id"]
    sub = make(server, websocket_id=websocket).create_subscription("call")
    deep = "[" * 5000 + "]" * 5000
    hostile = [
        ("POST", "websockets", {"secret": ["not", "a", "string"]}), ("POST", "websockets", deep),
        ("PATCH", f"websockets/{websocket}", {"secret": {"x": 1}}), ("GET", "websockets/abc", None),
        ("GET", "websockets/1e9", None), ("POST", "subscriptions/call", {"endpoint_id": [websocket]}),
        ("POST", "subscriptions/call", {"endpoint_id": websocket, "call_states": "ringing"}),
        ("POST", "subscriptions/call", {"endpoint_id": websocket, "call_states": [1, None]}),
        ("POST", "subscriptions/fax", {"endpoint_id": websocket}),
        ("PATCH", f"subscriptions/call/{sub['id']}", {"call_states": {"a": 1}}),
        ("PATCH", f"subscriptions/call/{sub['id']}", {"enabled": "yes"}),
        ("PATCH", f"subscriptions/call/{sub['id']}", {"endpoint_id": 1}),
        ("GET", "subscriptions/call?cursor=-5x", None), ("GET", "subscriptions/call/%00", None),
    ]
    for method, path, body in hostile:
        data = body if isinstance(body, str) else json.dumps(body)
        answer = requests.request(method, f"{server.url}/api/v2/{path}", data=data, timeout=5,
                                  headers={**auth, "Content-Type": "application/json"})
        assert answer.status_code < 500, (method, path, answer.status_code)
    # Nothing hostile was stored: the subscription routes as before, and publishing still works.
    (stored,) = server.subscriptions("call")
    assert stored["enabled"] is True and "call_states" not in stored
    assert server.endpoints() == [websocket]


def test_a_websocket_the_client_creates_is_logged_and_an_unsubscribed_one_warned_about(
        server: DialpadServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rtsync.dialpad")
    bare = make(server)
    with bare:
        assert bare.wait_connected(5)
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert f"created Dialpad websocket {bare.websocket_id}, which has no event subscription" in warning.getMessage()
    assert f"delete_websocket({bare.websocket_id})" in warning.getMessage()
    caplog.clear()
    subscribed = make(server)
    subscribed.create_subscription("call")
    with subscribed:
        assert subscribed.wait_connected(5)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(f"created Dialpad websocket {subscribed.websocket_id}" in r.getMessage() for r in caplog.records)
