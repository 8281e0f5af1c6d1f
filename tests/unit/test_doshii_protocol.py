"""Doshii's heartbeat and event shapes on recorded frames (protocols/doshii.md sections 5 and 6)."""

from __future__ import annotations

import json

from rtsync.errors import StaleConnection
from rtsync.events import Event
from rtsync.sansio import Connected, Fail, Report, Send
from rtsync.vendors.doshii.models import Notification, Transaction
from rtsync.vendors.doshii.protocol import DoshiiProtocol

PONG = '{"doshii": {"pong": 1539153237588, "version": "3.2.0"}}'
SDK_MOCK_PONG = '{"doshii": {"pong": 1539153237588}}'
SERVER_PING = '{"doshii": {"ping": 1539153237588, "version": "3.2.0"}}'
ORDER = ('{"emit": ["order_updated", {"id": "3", "status": "accepted", "locationId": "aH43yx2", '
         '"posRef": "X-1234-5678", "uri": "https://sandbox.doshii.co/partner/v3/orders/3"}]}')
TRANSACTION = ('{"emit": ["transaction_created", {"id": "1354", "orderId": "123", "locationId": "aH43yx2", '
               '"status": "requested", "posRef": "o987684", "posTerminalId": "23fd46", '
               '"uri": "https://sandbox.doshii.co/partner/v3/transactions/1354"}]}')


def proto(**kw) -> DoshiiProtocol:
    return DoshiiProtocol("wss://x", "myapp/1.2.3", lambda: 1539144663417, **kw)


def test_ping_on_open_with_ms_and_app_version() -> None:
    (send,) = proto().opened(0)
    assert json.loads(send.text) == {"doshii": {"ping": 1539144663417, "version": "myapp/1.2.3"}}


def test_first_pong_connects_and_records_the_server_version() -> None:
    p = proto()
    p.opened(0)
    (connected,) = p.received(PONG, 0.1)
    assert isinstance(connected, Connected) and connected.detail == {"server_version": "3.2.0"}
    assert p.received(SDK_MOCK_PONG, 0.2) == []  # version may be absent


def test_heartbeat_every_interval_and_stale_without_pong() -> None:
    p = proto(heartbeat_interval=30, pong_timeout=60)
    p.opened(0)
    p.received(PONG, 1)
    assert p.deadline() == 30
    (ping,) = p.tick(30)
    assert isinstance(ping, Send)
    assert p.tick(60) and p.deadline() == 90  # still beating, the pong of t=30 is late
    (fail,) = p.tick(90)
    assert isinstance(fail, Fail) and isinstance(fail.error, StaleConnection)


def test_a_pong_clears_the_stale_clock() -> None:
    p = proto(heartbeat_interval=30, pong_timeout=60)
    p.opened(0)
    p.tick(30)
    p.received(PONG, 31)
    p.tick(60)
    p.received(PONG, 61)
    assert not any(isinstance(o, Fail) for o in p.tick(90))


def test_server_ping_is_answered_with_its_value() -> None:
    (send,) = proto().received(SERVER_PING, 0)
    assert json.loads(send.text) == {"doshii": {"pong": 1539153237588, "version": "myapp/1.2.3"}}


def test_emit_events_with_ids_and_typed_views() -> None:
    (e,) = proto().received(ORDER, 0)
    assert isinstance(e, Event) and (e.name, e.id, e.data["status"]) == ("order_updated", "3", "accepted")
    assert isinstance(e.typed, Notification) and e.typed.location_id == "aH43yx2"
    (t,) = proto().received(TRANSACTION, 0)
    assert isinstance(t.typed, Transaction) and t.typed.order_id == "123"


def test_documented_event_and_type_shapes_are_accepted() -> None:
    (a,) = proto().received('{"event": "order_created", "data": {"id": 1}}', 0)
    (b,) = proto().received('{"type": "order_created", "data": {"id": 2}}', 0)
    assert (a.name, a.id, b.name, b.id) == ("order_created", 1, "order_created", 2)
    # The browser MessageEvent rendering is not an event.
    (r,) = proto().received('{"type": "message", "data": {"doshii": {"pong": 1}}}', 0)
    assert isinstance(r, Report)


def test_primus_strings_ignored_and_junk_reported() -> None:
    p = proto()
    assert p.received("primus::ping::1539153237588", 0) == []
    assert isinstance(p.received("{not json", 0)[0], Report)
    assert isinstance(p.received('{"emit": []}', 0)[0], Report)


# Hostile frames the fuzzer recorded: each is one Report with the frame cut short, nothing else changes,
# and the next good event still arrives.
def test_recorded_ill_typed_frames_are_one_report_each() -> None:
    from rtsync.errors import ProtocolError

    for frame, says in [
        ('{"emit":' + "[" * 1000 + "]" * 1000 + "}", "nested too deeply"),
        ('{"doshii": ["ping", 1]}', "doshii body is a list"),
        ('{"doshii": "pong"}', "doshii body is a str"),
        ('{"doshii": {"ping": [1539153237588]}}', "ping whose value is a list"),
        ('{"doshii": {"ping": NaN}}', "ping whose value is nan"),
        ('{"emit": [42, {"id": "3"}]}', "unknown shape"),
        ('{"emit": "order_updated"}', "unknown shape"),
        ('{"event": ["order_updated"], "data": {}}', "unknown shape"),
        ('{"type": null, "data": {}}', "unknown shape"),
    ]:
        p = proto()
        p.opened(0)
        (report,) = p.received(frame, 1)
        assert isinstance(report, Report) and isinstance(report.error, ProtocolError), frame
        assert says in str(report.error) and len(str(report.error)) < 240, report
        assert p.deadline() == 30  # the heartbeat clock is untouched
        (connected,) = p.received(PONG, 2)
        assert isinstance(connected, Connected)
        (event,) = p.received(ORDER, 3)
        assert isinstance(event, Event) and (event.name, event.id) == ("order_updated", "3")


def test_an_event_payload_of_any_type_is_delivered_with_its_id_only_when_usable() -> None:
    p = proto()
    p.opened(0)
    for payload in ([1, 2], 1e20, None, {"id": [1]}, {"id": {"a": 1}}, {"id": 1e20}):
        (event,) = p.received(json.dumps({"emit": ["order_updated", payload]}), 1)
        assert isinstance(event, Event) and event.data == payload and event.id is None
