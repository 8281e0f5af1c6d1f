"""The per-event path leaves no reference cycles behind: at 64 KB frames the cyclic GC would cost a third."""

from __future__ import annotations

import gc
import json
from typing import List

import pytest

import rtsync
from rtsync.testing import MockLink
from rtsync.vendors.voxsig.protocol import build_identifier
from tests.conftest import wait_for

EVENTS = 3000


def _unreachable_after(client: rtsync.Client, link: MockLink, pattern: str) -> int:
    """Garbage (objects only a cycle kept) made while `client` delivered EVENTS events, GC off meanwhile."""
    got: List[rtsync.Event] = []
    client.on(pattern, got.append)
    gc.collect()
    gc.disable()
    try:
        with client:
            assert link.replayed(timeout=60)
            assert client.wait_connected(10)
            assert wait_for(lambda: len(got) >= EVENTS, timeout=60)
            assert len(got) == EVENTS
            return gc.collect()  # before stop(): a client being torn down is a cycle of its own
    finally:
        gc.enable()


def test_doshii_events_make_no_cycles() -> None:
    frames = ['{"doshii":{"pong":1,"version":"3"}}'] + [
        json.dumps({"emit": ["order_updated", {"id": str(n), "status": "accepted", "note": "x" * 200}]})
        for n in range(EVENTS)]
    link = MockLink(frames)
    garbage = _unreachable_after(rtsync.DoshiiClient("client-id", link=link), link, "order_*")
    assert garbage < EVENTS // 10, f"{garbage} objects in cycles for {EVENTS} events"


def test_voxsig_events_make_no_cycles() -> None:
    ident = build_identifier({"channel": "RoomChannel", "pubsub_token": "tok", "account_id": 1, "user_id": 7})
    frames = ['{"type":"welcome"}', json.dumps({"identifier": ident, "type": "confirm_subscription"})] + [
        json.dumps({"identifier": ident, "message": {"event": "message.created", "data": {"id": n, "content": "hi"}}})
        for n in range(EVENTS)]
    link = MockLink(frames, subprotocol="actioncable-v1-json")
    client = rtsync.VoxsigClient("tok", account_id=1, user_id=7, url="wss://example.invalid/cable", link=link)
    garbage = _unreachable_after(client, link, "message.created")
    assert garbage < EVENTS // 10, f"{garbage} objects in cycles for {EVENTS} events"


@pytest.fixture(autouse=True)
def _gc_back_on() -> None:
    gc.enable()
