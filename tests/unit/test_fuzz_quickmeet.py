"""Hostile-but-valid DDP frames through QuickMeet's protocol (property-based): nothing but rtsync outputs
and errors come out, calls in flight get their Reply, and the next good message is still delivered."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtsync.events import Event
from rtsync.sansio import Fail, Reply, Report, Send, loads
from rtsync.vendors.quickmeet.protocol import QuickMeetProtocol
from tests.hostile import HOSTILE, check_outputs, render, spoiled, spoiled_value

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
        spoiled({"msg": "result", "id": ids["call"], "result": {"b": {"$binary": "SGVsbG8="}, "n": {"$InfNaN": -1},
                                                               "t": {"$type": "x", "$value": 1}, "e": {"$escape": {}}}},
                [("result", "b", "$binary"), ("result", "n", "$InfNaN"), ("result", "t", "$type"),
                 ("result", "t", "$value"), ("result", "e", "$escape")]),
        spoiled_value({"room": {"roomName": "GENERAL", "roomType": "c"}}, [("room",), ("room", "roomName")]).map(
            lambda v: render({"msg": "changed", "collection": "stream-room-messages", "id": "id", "fields": {
                "eventName": "__my_messages__", "args": [dict(MESSAGE, _id="mine"), v["room"]]}})),
        spoiled({"msg": "nosub", "id": "s1", "error": {"error": "too-many-requests", "details": {"timeToReset": 5}}},
                [("error", "details"), ("error", "details", "timeToReset"), ("error", "error")]),
        spoiled({"msg": "added", "collection": "users", "id": "u1", "fields": {"username": "him"}},
                [("id",), ("fields",), ("fields", "username"), ("collection",)]),
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
        decoded = loads(frame)  # the library's verdict: json's, with one nesting limit on every Python
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
        loads(text)
    except RecursionError:  # no JSON decoder reads a frame this deep: the whole answer is one report
        assert len(out) == 1 and isinstance(out[0], Report)
        return
    delivered = [e.id for e in out if isinstance(e, Event) and isinstance(e.id, str) and e.id.startswith("fill")]
    assert delivered == sorted((m["_id"] for m in batch if str(m.get("_id")).startswith("fill")),
                               key=lambda i: -int(i[4:]))  # oldest first
    assert sum(isinstance(o, Report) for o in out) <= 1
