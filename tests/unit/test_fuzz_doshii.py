"""Hostile-but-valid frames through Doshii's protocol (property-based): nothing but rtsync outputs and
errors come out, and the next good event is still delivered."""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Dict, List, Tuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtsync.errors import RtsyncError
from rtsync.events import Event
from rtsync.sansio import Connected, Fail, Ping, Reply, Report, Rotate, Send
from rtsync.vendors.doshii.protocol import DoshiiProtocol

# --- hostile-but-valid JSON (shared shape of every vendor's fuzz file) -------------------------
DEEP = "\u2063deep\u2063"  # a placeholder string, replaced by JSON nested `depth` levels in the text


def deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth if depth % 2 else '{"a":' * depth + "1" + "}" * depth


SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**53 + 1, 10**30, 1e20, -1e20, 1e308, 1.5, float("nan"), float("inf"),
                     float("-inf"), "", "0", "403", "²", "\ud800", "é\u0000\u202e", "a" * 300]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
HOSTILE = st.one_of(
    st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6),
    # About the interpreter's recursion limit, and far beyond it (hypothesis raises the limit while it runs)
    st.one_of(st.integers(min_value=990, max_value=1010), st.sampled_from([3000, 20000, 100000]))
    .map(lambda depth: f"{DEEP}{depth}"),
)


def render(frame: Any) -> str:
    """The frame as server text: JSON (NaN/Infinity allowed, as json.dumps writes them) with any
    deep placeholder expanded into real nesting of that many levels."""
    text = json.dumps(frame, ensure_ascii=False)
    # A lone surrogate can only reach us escaped: the runtime decodes frames as UTF-8.
    text = re.sub("[\\ud800-\\udfff]", lambda m: f"\\u{ord(m.group()):04x}", text)
    while DEEP in text:
        start = text.index(f'"{DEEP}')
        end = text.index('"', start + 1)
        text = text[:start] + deep_json(int(text[start + len(DEEP) + 1:end])) + text[end + 1:]
    return text


def spoiled_value(template: Dict[str, Any], paths: List[Tuple[str, ...]]) -> st.SearchStrategy[Dict[str, Any]]:
    """`template` with the values at one or two of `paths` replaced by hostile ones (deep ones as placeholders)."""

    @st.composite
    def build(draw: Any) -> Dict[str, Any]:
        frame = copy.deepcopy(template)
        for path in draw(st.lists(st.sampled_from(paths), min_size=1, max_size=2, unique=True)):
            node = frame
            for key in path[:-1]:
                if not isinstance(node.get(key), dict):
                    node[key] = {}
                node = node[key]
            node[path[-1]] = draw(HOSTILE)
        return frame

    return build()


def spoiled(template: Dict[str, Any], paths: List[Tuple[str, ...]]) -> st.SearchStrategy[str]:
    """The same, as the text a server would send."""
    return spoiled_value(template, paths).map(render)


OUTPUTS = (Event, Send, Ping, Connected, Reply, Report, Fail, Rotate)


def check_outputs(outputs: List[Any], secrets: Tuple[str, ...] = ()) -> None:
    assert isinstance(outputs, list)
    for out in outputs:
        assert isinstance(out, OUTPUTS), out
        if isinstance(out, (Report, Fail)):
            assert isinstance(out.error, RtsyncError), out
            text = str(out.error)
            assert len(text) < 400, text
            for secret in secrets:
                assert secret not in text
        if isinstance(out, Reply):
            assert out.error is None or isinstance(out.error, RtsyncError)
        if isinstance(out, Send):
            out.text.encode("utf-8")  # what goes on the wire must be encodable
            json.loads(out.text)
# -----------------------------------------------------------------------------------------------

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
        decoded = json.loads(frame)
    except (ValueError, RecursionError):
        decoded = None
    is_pong = isinstance(decoded, dict) and isinstance(decoded.get("doshii"), dict) and "pong" in decoded["doshii"]
    assert any(isinstance(o, Connected) for o in out) == is_pong
    check_outputs(p.tick(61.0))
    assert p.deadline() is not None
