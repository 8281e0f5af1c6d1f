"""Hostile-but-valid frames through Doshii's protocol (property-based): nothing but rtsync outputs and
errors come out, and the next good event is still delivered."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtsync.events import Event
from rtsync.sansio import Connected, loads
from rtsync.vendors.doshii.protocol import DoshiiProtocol
from rtsync.vendors.doshii.rest import path_under
from tests.hostile import HOSTILE, check_outputs, render, spoiled

SETTINGS = settings(max_examples=250, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ORDER = {"id": "3", "status": "accepted", "locationId": "aH43yx2", "posRef": "X-1234-5678", "version": "v1",
         "uri": "https://sandbox.doshii.co/partner/v3/orders/3"}
FRAMES = st.one_of(
    spoiled({"emit": ["order_updated", ORDER]}, [("emit",)]),
    spoiled({"emit": {"0": "order_updated", "1": ORDER}}, [("emit", "0"), ("emit", "1")]),
    spoiled({"event": "order_created", "data": ORDER}, [("event",), ("data",), ("data", "id"), ("data", "status")]),
    spoiled({"type": "transaction_created", "data": {"id": "1354", "orderId": "123"}},
            [("type",), ("data",), ("data", "id"), ("data", "orderId")]),
    spoiled({"doshii": {"pong": 1539153237588, "version": "3.2.0"}}, [("doshii",), ("doshii", "pong"),
                                                                      ("doshii", "version")]),
    spoiled({"doshii": {"ping": 1539153237588, "version": "3.2.0"}}, [("doshii",), ("doshii", "ping"),
                                                                      ("doshii", "version")]),
    st.lists(HOSTILE, min_size=1, max_size=3).map(lambda items: render({"emit": ["order_updated", *items]})),
    st.lists(HOSTILE, max_size=3).map(lambda items: render({"emit": items})),
    HOSTILE.map(render),
    st.text(max_size=30).map(lambda text: "primus::" + text),
)


def beating() -> DoshiiProtocol:
    p = DoshiiProtocol("wss://sandbox.doshii.co/app/socket?auth=t", "myapp/1.2.3", lambda: 1539144663417)
    p.opened(0)
    (connected,) = p.received('{"doshii": {"pong": 1539144663417, "version": "3.2.0"}}', 0.1)
    assert isinstance(connected, Connected)
    return p


@SETTINGS
@given(frame=FRAMES)
def test_hostile_frame_then_a_good_event(frame: str) -> None:
    p = beating()
    check_outputs(p.received(frame, 1.0))
    after = p.received(json.dumps({"emit": ["order_updated", dict(ORDER, id="good")]}), 2.0)
    check_outputs(after)
    assert [(e.name, e.id) for e in after if isinstance(e, Event)] == [("order_updated", "good")]


@SETTINGS
@given(frame=FRAMES)
def test_hostile_frames_as_binary_text_before_the_first_pong(frame: str) -> None:
    # The heartbeat state is realistic too: nothing hostile may count as the pong that connects us
    # unless it is a pong, and the stale clock still runs.
    p = DoshiiProtocol("wss://x", "myapp/1.2.3", lambda: 1)
    p.opened(0)
    out = p.received(frame, 1.0)
    check_outputs(out)
    try:
        decoded = loads(frame)  # the library's verdict: json's, with one nesting limit on every Python
    except (ValueError, RecursionError):
        decoded = None
    is_pong = isinstance(decoded, dict) and isinstance(decoded.get("doshii"), dict) and "pong" in decoded["doshii"]
    assert any(isinstance(o, Connected) for o in out) == is_pong
    check_outputs(p.tick(61.0))
    assert p.deadline() is not None


REST = "https://sandbox.doshii.co/partner/v3"
URIS = st.one_of(
    st.text(max_size=80),
    st.builds(lambda a, b: a + b,
              st.sampled_from([REST, REST + "/", REST + "x", "https://sandbox.doshii.co",
                               "http://sandbox.doshii.co/partner/v3", "https://SANDBOX.doshii.co/partner/v3",
                               "https://evil.example/partner/v3", "https://sandbox.doshii.co@evil.example/partner/v3",
                               "https://sandbox.doshii.co:444/partner/v3"]),
              st.text(alphabet="/.?#&=%@:ab\\ \n", max_size=30)),
)


@SETTINGS
@given(uri=URIS)
def test_fetch_sends_the_token_only_under_rest_url(uri: str) -> None:
    # An event's uri decides where our signed token goes: only to rest_url's own host, under its path.
    path = path_under(REST, uri)
    if path is None:
        return
    target = urlsplit(uri)
    assert target.scheme == "https" and target.hostname == "sandbox.doshii.co" and target.port is None
    assert (target.path + "/").startswith("/partner/v3/") and ".." not in target.path.split("/")
    assert urlsplit(REST + path).netloc == "sandbox.doshii.co" and not target.fragment
