"""Doshii devices: the REST registry, Bearer JWTs, deviceId filtering and fan-out, and secrets in logs."""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, Iterator, List

import jwt
import pytest
import requests
import responses

import rtsync
from rtsync.events import Event
from rtsync.testing.doshii import DoshiiServer, device_matches
from tests.conftest import started, wait_for, watch

CLIENT_ID = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.device-client-id+/="
SECRET = "doshii-client-secret-0123456789-abcdefgh"
FAST = rtsync.Backoff(base=0.05, cap=0.2)


@pytest.fixture
def server() -> Iterator[DoshiiServer]:
    with DoshiiServer(client_ids={CLIENT_ID}, client_secrets={CLIENT_ID: SECRET}) as s:
        yield s


def make(server: DoshiiServer, **kw: Any) -> rtsync.DoshiiClient:
    kw.setdefault("backoff", FAST)
    kw.setdefault("client_secret", SECRET)
    return rtsync.DoshiiClient(CLIENT_ID, url=server.url, rest_url=server.rest_url, **kw)


def vendor(got: List[Event]) -> List[Event]:
    return [e for e in got if not e.name.startswith("rtsync.")]


def test_register_update_delete(server: DoshiiServer) -> None:
    c = make(server)
    device = c.register_device("Till 1", "till-1", events=["order_created"], terminals=["T1"],
                               channels=["Order ahead", "Pay@Table"], location_ids=["L1"])
    assert {"doshiiId", "version", "createdAt", "updatedAt"} <= set(device)
    assert (device["name"], device["ref"], device["events"], device["terminals"], device["channels"],
            device["locationIds"]) == ("Till 1", "till-1", ["order_created"], ["T1"],
                                       ["Order ahead", "Pay@Table"], ["L1"])
    doshii_id = device["doshiiId"]
    assert server.devices[doshii_id] == device

    updated = c.update_device(doshii_id, device["version"], name="Till 2", location_ids=["L1", "L2"])
    assert updated["version"] != device["version"]
    assert (updated["name"], updated["locationIds"], updated["events"]) == ("Till 2", ["L1", "L2"],
                                                                            ["order_created"])
    with pytest.raises(rtsync.RequestRejected) as stale:
        c.update_device(doshii_id, device["version"], name="Till 3")
    assert stale.value.status == 409 and not stale.value.retryable
    assert "409" in str(stale.value) and "version" in str(stale.value)
    assert server.devices[doshii_id]["name"] == "Till 2"
    current = c.get_device(doshii_id)  # how a 409 is mended: the current version, then the update
    assert current == updated and c.list_devices() == [updated]
    assert c.update_device(doshii_id, current["version"], name="Till 3")["name"] == "Till 3"

    assert c.delete_device(doshii_id) == {"message": "The requested device has been removed"}
    assert server.devices == {}
    with pytest.raises(rtsync.RequestRejected) as gone:
        c.delete_device(doshii_id)
    assert gone.value.status == 404


def test_bearer_token_is_hs256_over_client_id_and_timestamp(server: DoshiiServer) -> None:
    make(server).register_device("Till", "till")
    (token,) = server.bearer_tokens
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["clientId"] == CLIENT_ID and abs(claims["timestamp"] - time.time()) < 60


def test_helpers_work_after_the_socket_stopped(server: DoshiiServer) -> None:
    c = make(server)
    device = c.register_device("Till", "till")
    started(c)
    c.stop()
    assert c.delete_device(device["doshiiId"])["message"]


def test_arguments_are_checked_before_any_call() -> None:
    plain = rtsync.DoshiiClient(CLIENT_ID)
    with pytest.raises(rtsync.ConfigurationError, match="client_secret"):
        plain.register_device("Till", "till")
    with pytest.raises(rtsync.ConfigurationError, match="client_secret"):
        plain.delete_device("abc")
    c = rtsync.DoshiiClient(CLIENT_ID, client_secret=SECRET)
    assert c.rest_url == "https://sandbox.doshii.co/partner/v3"
    assert rtsync.DoshiiClient(CLIENT_ID, environment="live").rest_url == "https://live.doshii.co/partner/v3"
    with pytest.raises(rtsync.ConfigurationError, match="'Order ahead'"):
        c.register_device("Till", "till", channels=["Order Ahead"])
    with pytest.raises(rtsync.ConfigurationError, match="list of strings"):
        c.register_device("Till", "till", events="order_created")
    with pytest.raises(rtsync.ConfigurationError, match="location_ids"):
        c.update_device("abc", "1", locationIds=["L1"])
    with pytest.raises(rtsync.ConfigurationError, match="name"):
        c.register_device("", "till")
    with pytest.raises(rtsync.ConfigurationError, match="rest_url"):
        rtsync.DoshiiClient(CLIENT_ID, rest_url="ftp://doshii.test/partner/v3")
    with pytest.raises(rtsync.ConfigurationError, match="client_secret"):
        rtsync.DoshiiClient(CLIENT_ID, client_secret="")


def test_filtered_and_unfiltered_sockets_of_one_client_id(server: DoshiiServer) -> None:
    admin = make(server)
    device = admin.register_device("Till 1", "till-1", events=["order_created"], location_ids=["L1"])
    filtered = make(server, device_id=device["doshiiId"])
    plain = make(server)
    (got_filtered, up_filtered), (got_plain, up_plain) = watch(filtered), watch(plain)
    with filtered, plain:
        assert up_filtered.wait(5) and up_plain.wait(5)
        sent = [server.publish("order_created", {"id": "1", "locationId": "L1"}),
                server.publish("order_created", {"id": "2", "locationId": "L2"}),
                server.publish("order_updated", {"id": "3", "locationId": "L1"}),
                server.publish("transaction_created", {"id": "4", "locationId": "L1", "posTerminalId": "T1"}),
                server.publish("order_created", {"id": "5"}),
                server.publish("order_created", {"id": "6", "locationId": "L1"})]
        assert sent == [2, 1, 1, 1, 1, 2]
        # One socket delivers in order: the filtered client has all it will get once "6" is in.
        assert wait_for(lambda: len(vendor(got_plain)) == 6 and any(e.id == "6" for e in got_filtered))
    assert [e.id for e in vendor(got_filtered)] == ["1", "6"]
    assert [e.id for e in vendor(got_plain)] == ["1", "2", "3", "4", "5", "6"]
    assert sorted(server.device_ids, key=str) == sorted([device["doshiiId"], None], key=str)


def test_an_update_applies_to_open_sockets(server: DoshiiServer) -> None:
    admin = make(server)
    device = admin.register_device("Till 1", "till-1", events=["order_created"])
    c = make(server, device_id=device["doshiiId"])
    got, up = watch(c)
    with c:
        assert up.wait(5)
        assert server.publish("order_updated", {"id": "1"}) == 0
        admin.update_device(device["doshiiId"], device["version"], events=["order_updated"], terminals=["T1"])
        assert server.publish("order_updated", {"id": "2"}) == 0  # no posTerminalId
        assert server.publish("order_updated", {"id": "3", "posTerminalId": "T1"}) == 1
        assert wait_for(lambda: vendor(got))
    assert [e.id for e in vendor(got)] == ["3"]


def test_unknown_device_id_is_ignored_by_default(server: DoshiiServer) -> None:
    c = make(server, device_id="no-such-device")
    got, up = watch(c)
    with c:
        assert up.wait(5)
        assert server.publish("order_created", {"id": "1", "locationId": "L9"}) == 1
        assert wait_for(lambda: vendor(got))
    assert server.device_ids == ["no-such-device"]


def test_unknown_device_id_rejected_with_the_option_is_final(server: DoshiiServer) -> None:
    server.reject_unknown_device = True
    device = make(server).register_device("Till", "till")
    known = make(server, device_id=device["doshiiId"])
    started(known)
    known.stop()
    c = make(server, device_id="no-such-device", retry_budget=rtsync.RetryBudget(attempts=1000, window=60))
    got, _ = watch(c)
    with pytest.raises(rtsync.RequestRejected) as info:
        c.run_forever()
    assert info.value.status == 400 and not info.value.retryable
    assert "no-such-device" in str(info.value) and "register_device" in str(info.value)
    assert not any(e.name == "rtsync.reconnecting" for e in got)
    assert server.connections_total == 1  # the known device's socket only


def test_wrong_client_secret_is_an_authentication_error(server: DoshiiServer) -> None:
    c = make(server, client_secret="not-the-" + SECRET)
    with pytest.raises(rtsync.AuthenticationError) as info:
        c.register_device("Till", "till")
    assert "401" in str(info.value) and "client_secret" in str(info.value)
    assert not info.value.retryable
    stranger = rtsync.DoshiiClient("another-client-id", rest_url=server.rest_url, client_secret=SECRET)
    with pytest.raises(rtsync.AuthenticationError):
        stranger.register_device("Till", "till")
    assert server.devices == {}


def test_server_refuses_old_and_unsigned_tokens(server: DoshiiServer) -> None:
    def post(token: str) -> requests.Response:
        return requests.post(f"{server.rest_url}/devices", json={"name": "Till", "ref": "till"},
                             headers={"Authorization": f"Bearer {token}"}, timeout=10)

    old = jwt.encode({"clientId": CLIENT_ID, "timestamp": int(time.time()) - 601}, SECRET, algorithm="HS256")
    unsigned = jwt.encode({"clientId": CLIENT_ID, "timestamp": int(time.time())}, None, algorithm="none")
    fresh = jwt.encode({"clientId": CLIENT_ID, "timestamp": int(time.time())}, SECRET, algorithm="HS256")
    assert post(old).status_code == 401 and "expired" in post(old).json()["message"]
    assert post(unsigned).status_code == 401
    assert post(fresh).status_code == 200


def test_filter_semantics() -> None:
    device: Dict[str, Any] = {"events": ["order_created", "order_updated"], "terminals": [],
                              "channels": ["Pay@Table"], "locationIds": ["L1", "L2"]}
    assert device_matches(device, "order_updated", {"locationId": "L2", "channel": "Pay@Table"})
    assert not device_matches(device, "order_updated", {"locationId": "L3", "channel": "Pay@Table"})
    assert not device_matches(device, "order_updated", {"locationId": "L2"})
    assert not device_matches(device, "booking_created", {"locationId": "L1", "channel": "Pay@Table"})
    assert device_matches({"events": [], "terminals": [], "channels": [], "locationIds": []}, "x", None)


@responses.activate
def test_rest_statuses_are_classified() -> None:
    base = "https://sandbox.doshii.co/partner/v3/devices"
    c = rtsync.DoshiiClient(CLIENT_ID, client_secret=SECRET)
    responses.add(responses.DELETE, f"{base}/a", status=401, json={"message": "Invalid token"})
    responses.add(responses.DELETE, f"{base}/b", status=403)
    responses.add(responses.DELETE, f"{base}/c", status=409)
    responses.add(responses.DELETE, f"{base}/d", status=429, headers={"Retry-After": "7"})
    responses.add(responses.DELETE, f"{base}/e", status=503)
    responses.add(responses.DELETE, f"{base}/f", body=requests.ConnectionError("refused"))
    responses.add(responses.DELETE, f"{base}/g", status=200, body="<html>")
    responses.add(responses.POST, base, status=200, json={"doshiiId": "x1", "version": "v1"})
    with pytest.raises(rtsync.AuthenticationError, match="Invalid token"):
        c.delete_device("a")
    with pytest.raises(rtsync.AuthenticationError):
        c.delete_device("b")
    with pytest.raises(rtsync.RequestRejected) as conflict:
        c.delete_device("c")
    assert conflict.value.status == 409
    with pytest.raises(rtsync.RateLimited) as limited:
        c.delete_device("d")
    assert limited.value.retry_after == 7
    with pytest.raises(rtsync.ConnectionLost):
        c.delete_device("e")
    with pytest.raises(rtsync.ConnectionLost):
        c.delete_device("f")
    with pytest.raises(rtsync.ProtocolError):
        c.delete_device("g")
    assert c.register_device("Till", "till", channels=["PIP"]) == {"doshiiId": "x1", "version": "v1"}
    sent = responses.calls[-1].request
    assert sent.headers["Authorization"].startswith("Bearer ey")
    assert sent.body is not None and b'"locationIds": []' in sent.body and b'"channels": ["PIP"]' in sent.body


def test_client_secret_and_tokens_never_leak(server: DoshiiServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    c = make(server)
    device = c.register_device("Till", "till", events=["order_created"])
    errors: List[BaseException] = []
    try:
        c.update_device(device["doshiiId"], "stale")
    except rtsync.RequestRejected as exc:
        errors.append(exc)
    listener = make(server, device_id=device["doshiiId"])
    got, up = watch(listener)
    with listener:
        assert up.wait(5)
        server.publish("order_created", {"id": "1"})
        assert wait_for(lambda: vendor(got))
        server.drop()
        assert wait_for(lambda: sum(e.name == "rtsync.connected" for e in got) == 2)
    bad = make(server, client_secret="wrong-" + SECRET)
    try:
        bad.register_device("Till", "till")
    except rtsync.AuthenticationError as exc:
        errors.append(exc)
    assert len(errors) == 2
    tokens = set(server.bearer_tokens)  # the client reuses a token for a minute
    assert len(tokens) == 2 and all(t in [*c._secrets, *bad._secrets] for t in tokens)
    text = "\n".join(r.getMessage() for r in caplog.records) + repr(got) + repr(c) + repr(listener) \
        + repr(bad) + "".join(f"{e}{e!r}" for e in errors)
    for secret in [SECRET, "wrong-" + SECRET, *tokens]:
        assert secret not in text
