"""Hostile-but-valid DDP frames through QuickMeet's protocol (property-based): nothing but rtsync outputs
and errors come out, calls in flight get their Reply, and the next good message is still delivered."""

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

from rtsync.vendors.quickmeet.protocol import QuickMeetProtocol

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

TOKEN = "fuzz-resume-token-0123456789abcdef"
DIGEST = "52c53f4abbfe42e1ccd4fd9d864453ee57f8efbd4c9ecec6d88bd83d7f7a9c02"
LOGIN = {"user": {"username": "him"}, "password": {"digest": DIGEST, "algorithm": "sha-256"}}
SECRETS = (TOKEN, DIGEST)
SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

MESSAGE = {"_id": "m1", "rid": "GENERAL", "msg": "hi", "ts": {"$date": 1540756719398},
           "u": {"_id": "u1", "username": "nicolas.c"}, "_updatedAt": {"$date": 1540756719402}}
MESSAGE_PATHS = [("_id",), ("rid",), ("ts",), ("ts", "$date"), ("_updatedAt", "$date"), ("u",), ("msg",)]


def room_frame(message: Dict[str, Any], room: str = "GENERAL") -> Dict[str, Any]:
    return {"msg": "changed", "collection": "stream-room-messages", "id": "id",
            "fields": {"eventName": room, "args": [message]}}


def result_paths(prefix: Tuple[str, ...]) -> List[Tuple[str, ...]]:
    return [("id",), ("result",), ("error",), ("error", "error"), ("error", "reason"),
            ("error", "details", "timeToReset"), *[("result", *p) for p in prefix]]


def frames(ids: Dict[str, str]) -> st.SearchStrategy[str]:
    room = room_frame(MESSAGE)
    return st.one_of(
        spoiled(room, [("msg",), ("collection",), ("fields",), ("fields", "eventName"), ("fields", "args")]),
        spoiled_value(MESSAGE, MESSAGE_PATHS).map(lambda message: render(room_frame(message))),
        spoiled({"msg": "changed", "collection": "stream-notify-user", "id": "id",
                 "fields": {"eventName": "u1/rooms-changed",
                            "args": ["updated", {"_id": "r1", "_updatedAt": {"$date": 1540756719402}}]}},
                [("fields", "args"), ("fields", "eventName")]),
        spoiled({"msg": "result", "id": ids["call"], "result": {"ts": {"$date": 1540756719398}, "n": 1}},
                [("result",), ("result", "ts", "$date"), ("error",), ("error", "error"), ("error", "reason")]),
        spoiled({"msg": "result", "id": ids["missed"], "result": [MESSAGE]},
                [("result",), ("error",), ("error", "error")]),
        spoiled({"msg": "result", "id": ids["sync"], "result": {"update": [{"_id": "r1"}], "remove": []}},
                [("result",), ("result", "update"), ("result", "remove"), ("error",)]),
        spoiled({"msg": "result", "id": "login9", "result": {"id": "u1", "token": TOKEN,
                                                            "tokenExpires": {"$date": 1696417505309}}},
                result_paths(("token",)) + [("result", "tokenExpires", "$date"), ("result", "id")]),
        spoiled({"msg": "ready", "subs": ["s1"]}, [("subs",)]),
        spoiled({"msg": "nosub", "id": "s1", "error": {"error": 403, "reason": "no"}},
                [("id",), ("error",), ("error", "error"), ("error", "reason")]),
        spoiled({"msg": "ping", "id": "abc"}, [("id",), ("msg",)]),
        spoiled({"msg": "error", "reason": "bad"}, [("reason",)]),
        spoiled({"msg": "failed", "version": "1"}, [("version",)]),
        HOSTILE.map(render),
    )


def sends(outputs: List[Any]) -> List[Dict[str, Any]]:
    return [json.loads(o.text) for o in outputs if isinstance(o, Send)]


def methods(outputs: List[Any]) -> Dict[str, str]:
    return {f["method"]: f["id"] for f in sends(outputs) if f.get("msg") == "method"}


def ready_on_second_link() -> Tuple[QuickMeetProtocol, Dict[str, str]]:
    """Logged in on a second link, with a gap fill for GENERAL, a rooms-changed sync and a call in flight."""
    p = QuickMeetProtocol("wss://x/websocket", LOGIN, resume_token=TOKEN)
    p.subscribe("stream-room-messages", "GENERAL")
    p.subscribe("stream-notify-user", "u1/rooms-changed")
    for link in (0, 1):
        p.opened(link)
        login = methods(p.received('{"msg":"connected","session":"s"}', link))["login"]
        out = p.received(json.dumps({"msg": "result", "id": login, "result": {"id": "u1", "token": TOKEN}}), link)
        out += p.received(json.dumps({"msg": "ready", "subs": list(p.subs)}), link)
        if link == 0:
            baseline = methods(out)["rooms/get"]
            p.received(json.dumps({"msg": "result", "id": baseline, "result": [{"_id": "r1"}]}), link)
            p.received(render(room_frame(dict(MESSAGE, _id="m0"))), link)
            p.lost()
    call_id, _ = p.call("getRoomInfo", [])
    found = methods(out)
    assert "loadMissedMessages" in found and "rooms/get" in found, found
    return p, {"missed": found["loadMissedMessages"], "sync": found["rooms/get"], "call": call_id}


_, IDS = ready_on_second_link()


def good(n: int) -> str:
    return render(room_frame(dict(MESSAGE, _id=f"good{n}", rid="OTHER", ts={"$date": 1540756800000 + n}),
                             room="OTHER"))


@SETTINGS
@given(frame=frames(IDS))
def test_hostile_frame_then_a_good_message(frame: str) -> None:
    p, ids = ready_on_second_link()
    assert ids == IDS
    out = p.received(frame, 2.0)
    check_outputs(out, SECRETS)
    try:
        decoded = json.loads(frame)
    except (ValueError, RecursionError):
        decoded = None
    if isinstance(decoded, dict) and decoded.get("msg") == "result" and decoded.get("id") == ids["call"]:
        # the call in flight always hears back, with a result or an rtsync error
        assert [o.key for o in out if isinstance(o, Reply)] == [ids["call"]]
    if any(isinstance(o, Fail) for o in out):
        return  # only `failed` fails the link; the runtime would open a new one
    after = p.received(good(1), 3.0)
    check_outputs(after, SECRETS)
    assert [e.id for e in after if isinstance(e, Event)] == ["good1"]


@SETTINGS
@given(messages=st.lists(st.one_of(spoiled_value(MESSAGE, MESSAGE_PATHS), st.just("good")), min_size=1, max_size=5))
def test_a_gap_fill_answer_with_bad_messages_delivers_the_good_ones(messages: List[Any]) -> None:
    p, ids = ready_on_second_link()
    batch: List[Any] = []
    for i, m in enumerate(messages):
        if m == "good":  # the answer is newest first, like loadHistory's pages
            batch.append(dict(MESSAGE, _id=f"fill{i}", ts={"$date": 1540756720000 - i},
                              _updatedAt={"$date": 1540756720000 - i}))
        else:
            batch.append(m)
    text = render({"msg": "result", "id": ids["missed"], "result": batch})
    out = p.received(text, 2.0)
    check_outputs(out, SECRETS)
    try:
        json.loads(text)
    except RecursionError:  # no JSON decoder reads a frame this deep: the whole answer is one report
        assert len(out) == 1 and isinstance(out[0], Report)
        return
    delivered = [e.id for e in out if isinstance(e, Event) and isinstance(e.id, str) and e.id.startswith("fill")]
    assert delivered == sorted((m["_id"] for m in batch if str(m.get("_id")).startswith("fill")),
                               key=lambda i: -int(i[4:]))  # oldest first
    assert sum(isinstance(o, Report) for o in out) <= 1
