"""DoshiiClient.fetch() (the full resource behind a thin event), the honest default app version, and
credentials given as callables, against the local Doshii server."""

from __future__ import annotations

import base64
import logging
from typing import Any, Iterator, List

import pytest

import rtsync
from rtsync.events import Event
from rtsync.testing.doshii import DoshiiServer
from rtsync.vendors.doshii.client import DEFAULT_APP_VERSION
from tests.conftest import started, wait_for

CLIENT_ID = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.fetch-client-id+/="
SECRET = "doshii-fetch-secret-0123456789-abcdefgh"
FAST = rtsync.Backoff(base=0.05, cap=0.2)
ORDER = {"id": "3", "status": "pending", "locationId": "aH43yx2", "posRef": "X-1234-5678", "version": "v1",
         "items": [{"name": "Flat white", "quantity": 2, "unitPrice": "450"}], "consumer": {"name": "Ana"}}


@pytest.fixture
def server() -> Iterator[DoshiiServer]:
    with DoshiiServer(client_ids={CLIENT_ID, "second-client-id"},
                      client_secrets={CLIENT_ID: SECRET, "second-client-id": SECRET}) as s:
        yield s


def make(server: DoshiiServer, client_id: Any = CLIENT_ID, **kw: Any) -> rtsync.DoshiiClient:
    kw.setdefault("backoff", FAST)
    kw.setdefault("client_secret", SECRET)
    return rtsync.DoshiiClient(client_id, url=server.url, rest_url=server.rest_url, **kw)


def thin(server: DoshiiServer, **over: Any) -> dict:
    uri = server.add_resource("orders/3", ORDER, location_id="aH43yx2")
    return {"id": "3", "status": "pending", "locationId": "aH43yx2", "uri": uri, **over}


def test_fetch_from_a_callback_returns_the_full_resource_with_the_location_header(server: DoshiiServer) -> None:
    c = make(server)
    fetched: List[Any] = []
    c.on("order_created", lambda e: fetched.append(c.fetch(e)))
    try:
        started(c)
        server.publish("order_created", thin(server))
        assert wait_for(lambda: fetched)
    finally:
        c.stop()
    assert fetched == [ORDER]
    assert server.resources.requests == [("/orders/3", "aH43yx2")]


def test_fetch_takes_the_payload_and_a_location_override(server: DoshiiServer) -> None:
    c = make(server)
    payload = thin(server)
    del payload["locationId"]
    with pytest.raises(rtsync.RequestRejected, match="doshii-location-id header is required") as info:
        c.fetch(payload)
    assert info.value.status == 400
    assert c.fetch(payload, location_id="aH43yx2") == ORDER  # works before start() and without a socket
    with pytest.raises(rtsync.RequestRejected, match="not found at this location") as info:
        c.fetch(payload, location_id="another-location")
    assert info.value.status == 404


def test_fetch_answers_faithfully_to_gone_resources_and_refused_credentials(server: DoshiiServer) -> None:
    payload = thin(server)
    server.resources.remove("orders/3")
    with pytest.raises(rtsync.RequestRejected) as info:
        make(server).fetch(payload)
    assert info.value.status == 404 and "Resource not found" in str(info.value)
    thin(server)
    with pytest.raises(rtsync.AuthenticationError, match="Invalid token signature"):
        make(server, client_secret="not-the-" + SECRET).fetch(payload)
    with pytest.raises(rtsync.ConfigurationError, match="client_secret"):
        rtsync.DoshiiClient(CLIENT_ID, url=server.url, rest_url=server.rest_url).fetch(payload)


@pytest.mark.parametrize("payload, error, says", [
    ({"locationId": "L1", "busyUntil": "2023-06-21T17:08:30.000Z"}, rtsync.ConfigurationError, "carries no `uri`"),
    ({"uri": 42}, rtsync.ConfigurationError, "carries no `uri`"),
    ({"uri": "https://evil.example/partner/v3/orders/3"}, rtsync.ProtocolError, "not under rest_url"),
    ({"uri": "{rest}/../../admin"}, rtsync.ProtocolError, "not under rest_url"),
    ({"uri": "{base}/partner/v3x/orders/3"}, rtsync.ProtocolError, "not under rest_url"),
    ({"uri": "{base}/partner/v3/orders/3#frag"}, rtsync.ProtocolError, "not under rest_url"),
])
def test_fetch_refuses_hostile_or_missing_uris_without_sending_the_token(
        server: DoshiiServer, payload: dict, error: type, says: str) -> None:
    base = server.rest_url[: -len("/partner/v3")]
    if isinstance(payload.get("uri"), str):
        payload = {"uri": payload["uri"].format(rest=server.rest_url, base=base)}
    with pytest.raises(error, match=says):
        make(server).fetch(Event.make("order_updated", provider="doshii", data=payload))
    assert server.resources.requests == [] and server.bearer_tokens == []


def test_default_app_version_says_rtsync_and_which(server: DoshiiServer) -> None:
    c = make(server, ping_interval=0.2)
    with c:
        assert c.wait_connected(5)
    assert server.pings[0]["version"] == f"rtsync/{rtsync.__version__}" == DEFAULT_APP_VERSION
    c = make(server, app_version="myapp/1.4")
    with c:
        assert c.wait_connected(5)
    assert server.pings[-1]["version"] == "myapp/1.4"
    for bad in ("", "  ", 14):
        with pytest.raises(rtsync.ConfigurationError, match="app_version"):
            make(server, app_version=bad)


def test_client_id_from_a_callable_is_read_before_each_attempt(server: DoshiiServer,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    ids = iter([CLIENT_ID, "second-client-id", "second-client-id"])
    calls: List[str] = []

    def vault() -> str:
        calls.append("called")
        return next(ids)

    c = make(server, vault, ping_interval=0.2, ping_timeout=1.0)
    got: List[Event] = []
    try:
        got = started(c)
        server.drop()
        assert wait_for(lambda: sum(e.name == "rtsync.connected" for e in got) == 2)
        assert server.publish("order_created", {"id": "1"}, client_id="second-client-id") == 1
        assert wait_for(lambda: any(e.name == "order_created" for e in got))
    finally:
        c.stop()
    assert len(calls) >= 2
    auth = base64.b64encode(b"second-client-id").decode()
    text = "\n".join(r.getMessage() for r in caplog.records) + repr(got) + repr(c)
    assert auth not in text and "second-client-id" not in text and CLIENT_ID not in text


def test_client_secret_from_a_callable_signs_the_rest_token(server: DoshiiServer) -> None:
    c = make(server, client_secret=lambda: SECRET)
    payload = thin(server)
    assert c.fetch(payload) == ORDER
    assert make(server, lambda: CLIENT_ID, client_secret=lambda: SECRET).fetch(payload) == ORDER


def test_a_callable_that_fails_is_retried_and_one_returning_junk_is_final(server: DoshiiServer) -> None:
    attempts: List[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("vault briefly away: token=do-not-log-me")
        return CLIENT_ID

    c = make(server, flaky)
    try:
        started(c)
    finally:
        c.stop()
    assert len(attempts) >= 3
    junk = make(server, lambda: None)
    with pytest.raises(rtsync.ConfigurationError, match="client_id must be a non-empty string"):
        junk.run_forever()
    with pytest.raises(rtsync.ConfigurationError, match="client_id"):
        rtsync.DoshiiClient("")
