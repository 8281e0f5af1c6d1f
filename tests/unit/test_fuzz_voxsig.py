"""Hostile-but-valid JSON through Voxsig's protocol (property-based): nothing but rtsync outputs and
errors come out, and the next good event is still delivered."""

from __future__ import annotations

import json
from typing import Any, List

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtsync.events import Event
from rtsync.sansio import Fail
from rtsync.vendors.voxsig.protocol import VoxsigProtocol
from tests.hostile import HOSTILE, check_outputs, render, spoiled

TOKEN = "fuzz-secret-token-0123456789"
PARAMS = {"pubsub_token": TOKEN, "account_id": 1, "user_id": 2}
ID = json.dumps({"channel": "RoomChannel", **PARAMS}, separators=(",", ":"))
SETTINGS = settings(max_examples=250, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

FRAMES = st.one_of(
    spoiled({"identifier": ID, "message": {"event": "message.created", "data": {"id": 1, "content": "hi"}}},
            [("identifier",), ("message",), ("message", "event"), ("message", "data"), ("message", "data", "id")]),
    spoiled({"type": "confirm_subscription", "identifier": ID}, [("type",), ("identifier",)]),
    spoiled({"type": "reject_subscription", "identifier": ID}, [("identifier",)]),
    spoiled({"type": "ping", "message": 1795404060}, [("type",), ("message",)]),
    spoiled({"type": "welcome"}, [("type",), ("sid",)]),
    spoiled({"type": "disconnect", "reason": "server_restart", "reconnect": True}, [("reason",), ("reconnect",)]),
    HOSTILE.map(render),
)


def subscribed() -> VoxsigProtocol:
    p = VoxsigProtocol("wss://app.voxsig.com/cable", "https://app.voxsig.com", PARAMS, presence_interval=15.0)
    p.opened(0)
    p.received('{"type":"welcome"}', 0)
    p.received(json.dumps({"identifier": ID, "type": "confirm_subscription"}), 0)
    assert p.confirmed
    return p


def good(n: int) -> str:
    return json.dumps({"identifier": ID, "message": {"event": "message.created", "data": {"id": n}}})


@SETTINGS
@given(frame=FRAMES)
def test_hostile_frame_then_a_good_event(frame: str) -> None:
    p = subscribed()
    out = p.received(frame, 1.0)
    check_outputs(out, (TOKEN,))
    if any(isinstance(o, Fail) for o in out):  # a disconnect or reject: the runtime opens a new link
        p.lost()
        p.opened(2.0)
        p.received('{"type":"welcome"}', 2.0)
        p.received(json.dumps({"identifier": ID, "type": "confirm_subscription"}), 2.0)
    after = p.received(good(7), 3.0)
    check_outputs(after, (TOKEN,))
    assert [(e.name, e.data) for e in after if isinstance(e, Event)] == [("message.created", {"id": 7})]


@SETTINGS
@given(frames=st.lists(FRAMES, min_size=1, max_size=4))
def test_a_read_of_hostile_frames_around_good_ones_before_the_confirm(frames: List[str]) -> None:
    # Old-shape servers deliver before the confirm: the good events around bad frames all arrive, in order.
    p = VoxsigProtocol("wss://app.voxsig.com/cable", "https://app.voxsig.com", PARAMS, presence_interval=15.0)
    p.opened(0)
    p.received('{"type":"welcome"}', 0)
    got: List[Any] = []
    for i, frame in enumerate(frames):
        for hostile, text in ((False, good(i)), (True, frame)):  # a "hostile" frame may be a good one too
            out = p.received(text, 0.5)
            check_outputs(out, (TOKEN,))
            got += [e.data["id"] for e in out if isinstance(e, Event) and not hostile]
    assert got == list(range(len(frames)))


OLD = "fuzz-old-contact-token-0123"
NEW = "fuzz-new-contact-token-4567"
OLD_ID = json.dumps({"channel": "RoomChannel", "pubsub_token": OLD}, separators=(",", ":"))
NEW_ID = json.dumps({"channel": "RoomChannel", "pubsub_token": NEW}, separators=(",", ":"))
MERGES = st.one_of(
    spoiled({"identifier": OLD_ID, "message": {"event": "contact.merged", "data": {"id": 7, "pubsub_token": NEW}}},
            [("identifier",), ("message",), ("message", "event"), ("message", "data"),
             ("message", "data", "pubsub_token")]),
    spoiled({"type": "confirm_subscription", "identifier": NEW_ID}, [("type",), ("identifier",)]),
    spoiled({"type": "reject_subscription", "identifier": OLD_ID}, [("identifier",)]),
)


@SETTINGS
@given(frames=st.lists(MERGES, min_size=1, max_size=4))
def test_hostile_merges_never_leak_a_token_nor_lose_the_subscription(frames: List[str]) -> None:
    # Whatever a (possibly spoiled) contact.merged and confirms do, no token shows, and the client ends
    # subscribed under exactly one identifier whose events it delivers.
    p = VoxsigProtocol("wss://app.voxsig.com/cable", "https://app.voxsig.com", {"pubsub_token": OLD},
                       presence_interval=60.0)
    p.opened(0)
    p.received('{"type":"welcome"}', 0)
    p.received(json.dumps({"identifier": OLD_ID, "type": "confirm_subscription"}), 0)
    for frame in frames:
        out = p.received(frame, 1.0)
        check_outputs(out, (OLD, NEW))
        for e in out:
            if isinstance(e, Event):
                assert OLD not in repr(e) and NEW not in repr(e)
        if any(isinstance(o, Fail) for o in out):
            return  # a reject of the live subscription: final, nothing more to check
    assert p.identifier in (OLD_ID, NEW_ID) and p.token in (OLD, NEW)
    ours = json.dumps({"identifier": p.identifier, "message": {"event": "message.created", "data": {"id": 1}}})
    after = p.received(ours, 2.0)
    check_outputs(after, (OLD, NEW))
    assert [e.data for e in after if isinstance(e, Event)] == [{"id": 1}]
