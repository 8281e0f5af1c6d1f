"""Hostile-but-valid event frames through Dialpad's protocol (property-based), plain and HS256-signed:
nothing but rtsync outputs and errors come out, and the next good event is still delivered."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
from typing import Any, Dict, List, Tuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtsync import hs256
from rtsync.errors import RtsyncError
from rtsync.events import Event
from rtsync.sansio import Connected, Fail, Ping, Reply, Report, Rotate, Send
from rtsync.vendors.dialpad.protocol import DialpadProtocol

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

SECRET = "fuzz-websocket-secret-0123456789abcdef"
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CALL = {"call_id": 6421977457180672, "state": "hangup", "direction": "inbound", "event_timestamp": 1731624049994,
        "contact": {"id": 6131436978913280, "name": "Alameda, CA"},
        "target": {"id": 5527348325810176, "type": "office"}}
SMS = {"id": 6095823680520192, "direction": "inbound", "from_number": "+15109260499", "to_number": ["+15106666687"],
       "text": "hi", "message_status": "pending", "event_timestamp": 1731632669601, "target": {"id": 1}}
AGENT = {"availability_status": "open", "call_center_ids": ["4"], "date": 1, "event_timestamp": 2,
         "on_duty_status": "available", "target": {"id": 77, "type": "user"}}
CONTACT = {"id": "c1", "contact_type": "shared", "phones": ["+1"], "emails": []}

EVENTS = st.one_of(
    spoiled(CALL, [("call_id",), ("state",), ("event_timestamp",), ("target",), ("contact",), ("target", "id")]),
    spoiled(SMS, [("id",), ("message_status",), ("event_timestamp",), ("text",), ("to_number",), ("target",)]),
    spoiled(AGENT, [("target",), ("target", "id"), ("on_duty_status",), ("availability_status",),
                    ("event_timestamp",), ("call_center_ids",)]),
    spoiled(CONTACT, [("id",), ("contact_type",), ("phones",)]),
    HOSTILE.map(render),
)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@st.composite
def signed(draw: Any) -> str:
    """The event text as the claims of a JWS: validly signed, or with a hostile header, or a bad signature."""
    claims = draw(EVENTS)
    header = draw(st.one_of(st.just('{"alg":"HS256","typ":"JWT"}'), HOSTILE.map(render)))
    signing_input = f"{b64(header.encode())}.{b64(claims.encode())}"
    if draw(st.booleans()):  # signed with the right secret: the claims themselves are hostile
        mac = hmac.new(SECRET.encode(), signing_input.encode("ascii"), hashlib.sha256).digest()
    else:  # a bad signature
        mac = hashlib.sha256(signing_input.encode("ascii")).digest()
    return f"{signing_input}.{b64(mac)}"


def linked(secret: Any = None) -> DialpadProtocol:
    p = DialpadProtocol(secret=secret)
    p.use_url("wss://x/events/token", 3600, 0)
    p.opened(0)
    return p


def good(n: int, secret: bool) -> str:
    event = dict(CALL, call_id=n, event_timestamp=1731624049994 + n)
    return hs256.sign(event, SECRET.encode()) if secret else json.dumps(event)


def delivered_after(p: DialpadProtocol, secret: bool) -> None:
    after = p.received(good(99, secret), 3.0)
    check_outputs(after, (SECRET,))
    assert [(e.name, e.id) for e in after if isinstance(e, Event)] == [("call.hangup", 99)]


@SETTINGS
@given(frame=EVENTS)
def test_hostile_plain_frame_then_a_good_event(frame: str) -> None:
    p = linked()
    check_outputs(p.received(frame, 1.0), (SECRET,))
    delivered_after(p, secret=False)


@SETTINGS
@given(frame=st.one_of(signed(), EVENTS))
def test_hostile_signed_frame_then_a_good_event(frame: str) -> None:
    p = linked(SECRET)
    check_outputs(p.received(frame, 1.0), (SECRET,))
    delivered_after(p, secret=True)


@SETTINGS
@given(frame=EVENTS)
def test_a_hostile_frame_never_poisons_the_dedupe_memory(frame: str) -> None:
    # The same hostile frame twice, then a good one: each is judged on its own.
    p = linked()
    first = p.received(frame, 1.0)
    again = p.received(frame, 1.5)
    check_outputs(first + again)
    assert sum(isinstance(o, Event) for o in again) == 0 or not any(isinstance(o, Event) for o in first)
    delivered_after(p, secret=False)
