"""MockLink: a client's connections replayed from recorded frames, no socket: what users test callbacks with."""

from __future__ import annotations

import json
from typing import List

import pytest

import rtsync
from rtsync.testing import MockLink
from rtsync.vendors.voxsig.protocol import build_identifier
from rtsync.wire import Closed

FAST = rtsync.Backoff(base=0.01, cap=0.02)


def test_doshii_events_from_a_recorded_session() -> None:
    link = MockLink(['{"doshii":{"pong":1,"version":"3"}}', '{"emit":["order_created",{"id":"7","status":"pending"}]}'])
    client = rtsync.DoshiiClient("client-id", link=link)
    got: List[rtsync.Event] = []
    client.on("order_*", got.append)
    with client:
        assert client.wait_connected(5)
        assert link.replayed(timeout=5)
    assert [(e.name, e.id) for e in got] == [("order_created", "7")]
    assert json.loads(link.sent[0][0])["doshii"]["ping"]  # the heartbeat went out first
    assert "auth=" in link.handshakes[0].url


def test_voxsig_reconnects_onto_the_next_session_and_resubscribes() -> None:
    ident = build_identifier({"channel": "RoomChannel", "pubsub_token": "tok", "account_id": 1, "user_id": 7})
    welcome = '{"type":"welcome"}'
    confirm = json.dumps({"identifier": ident, "type": "confirm_subscription"})

    def message(n: int) -> str:
        return json.dumps({"identifier": ident, "message": {"event": "message.created", "data": {"id": n}}})

    link = MockLink([welcome, confirm, message(1), Closed(1000)], [welcome, confirm, message(2)],
                    subprotocol="actioncable-v1-json")
    client = rtsync.VoxsigClient("tok", account_id=1, user_id=7, url="wss://example.invalid/cable", link=link, backoff=FAST)
    got: List[int] = []
    client.on("message.created", lambda e: got.append(e.data["id"]))
    with client:
        assert link.replayed(timeout=5)
        assert client.wait_connected(5)
    assert got == [1, 2]
    assert client.stats.connects == 2 and client.stats.reconnects == 1
    assert [json.loads(s[0])["command"] for s in link.sent] == ["subscribe", "subscribe"]


def test_a_connection_beyond_the_recording_is_refused_and_retried() -> None:
    link = MockLink(['{"doshii":{"pong":1}}', Closed(1011)])
    client = rtsync.DoshiiClient("client-id", link=link, backoff=FAST, retry_budget=rtsync.RetryBudget(3, 60))
    with pytest.raises(rtsync.ConnectionLost, match="gave up after 3 reconnects"):
        client.run_forever()
    assert client.state is rtsync.State.FAILED and len(link.handshakes) == 4
