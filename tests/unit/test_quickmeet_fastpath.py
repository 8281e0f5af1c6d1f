"""QuickMeet's fast path for live room messages gives exactly what the general path (the EJSON walk) gives."""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st

from rtsync.errors import ProtocolError
from rtsync.events import Event
from rtsync.sansio import Report
from rtsync.vendors.quickmeet.ejson import CustomType, decode_ejson, encode_ejson
from rtsync.vendors.quickmeet.fastpath import plain_message, plain_result
from rtsync.vendors.quickmeet.fill import message_problem, version_of
from rtsync.vendors.quickmeet.protocol import QuickMeetProtocol
from tests.unit.test_quickmeet_ejson import same as ejson_same

LOGIN = {"user": {"username": "him"}, "password": {"digest": "d" * 64, "algorithm": "sha-256"}}
LOGIN_OK = '{"msg":"result","id":"login1","result":{"id":"me","token":"tok-tok-tok","type":"password"}}'

# Milliseconds inside, at the edges of and beyond datetime's range, and ones that are not whole.
MS = st.one_of(st.integers(min_value=-(2**44), max_value=2**48), st.integers(min_value=-(2**70), max_value=2**70),
               st.sampled_from([-62135596800000, -62135596800001, 253402300799999, 253402300800000, 0, -1]),
               st.floats(allow_nan=False, allow_infinity=False, min_value=-1e16, max_value=1e16))
DATE = st.one_of(MS.map(lambda ms: {"$date": ms}), MS, st.just({"$date": 1, "x": 2}), st.just({}),
                 st.just("2024-01-01"), st.booleans().map(lambda b: {"$date": b}), st.just({"$binary": "AA=="}))
# Text that may look like EJSON from inside a string.
TEXT = st.one_of(st.text(max_size=12), st.sampled_from(['"$date"', "$date", "\\u0024", 'x"$y', "$escape", "{", "[["]))
KEYS = st.one_of(st.text(max_size=6), st.sampled_from(["$date", "$binary", "$type", "$value", "$escape", "$InfNaN"]))
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**53), max_value=2**53), TEXT,
                   st.floats(allow_nan=False, allow_infinity=False), DATE)
NESTED = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
                      max_leaves=12)
# Python values that travel as EJSON forms (bytes, NaN, custom types) in the extra fields.
EJSON_VALUES = st.one_of(st.binary(max_size=6), st.just(math.inf), st.builds(CustomType, st.text(max_size=4),
                                                                           st.integers()))
IDS = st.one_of(st.text(min_size=1, max_size=6), st.integers(), st.none(), st.booleans(), st.just(["x"]))


GOOD_DATE = st.integers(min_value=-62135596800000, max_value=253402300799999).map(lambda ms: {"$date": ms})
PLAIN_TEXT = st.text(max_size=12).filter(lambda t: "$" not in t)
PLAIN_KEYS = st.text(max_size=6).filter(lambda t: "$" not in t)
PLAIN_LEAVES = st.none() | st.booleans() | st.integers() | PLAIN_TEXT | st.floats(allow_nan=False,
                                                                                   allow_infinity=False)
PLAIN = st.recursive(PLAIN_LEAVES,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(PLAIN_KEYS, inner, max_size=3),
                     max_leaves=10)


@st.composite
def messages(draw: Any) -> Dict[str, Any]:
    """Mostly messages as servers send them (the fast path's), some with one thing out of the ordinary."""
    odd = draw(st.integers(0, 3)) == 0
    message: Dict[str, Any] = {}
    if not odd or draw(st.integers(0, 5)):
        message["_id"] = draw(IDS) if odd else draw(st.text(min_size=1, max_size=6))
    if draw(st.integers(0, 5)):
        message["rid"] = draw(st.sampled_from(["GENERAL", "other", ""]))
    for key in ("ts", "_updatedAt", "editedAt"):
        if key == "ts" or draw(st.booleans()):
            message[key] = draw(DATE if odd else GOOD_DATE)
    message["msg"] = draw(TEXT if odd else PLAIN_TEXT)
    for _ in range(draw(st.integers(0, 3))):
        if odd:
            message[draw(KEYS)] = draw(st.one_of(NESTED, EJSON_VALUES.map(encode_ejson)))
        else:
            message[draw(PLAIN_KEYS)] = draw(PLAIN)
    return message


Frame = Tuple[str, List[Any]]  # a changed frame's text, and its args as parsed


@st.composite
def frames(draw: Any) -> Frame:
    """(the frame's text, its args) as a server could send them: JSON spelled in more than one way."""
    args: List[Any] = [draw(messages())]
    if draw(st.booleans()):
        details = st.dictionaries(KEYS, NESTED, max_size=3) | st.dictionaries(PLAIN_KEYS, PLAIN, max_size=3)
        args.append(draw(details))  # __my_messages__' room details
    channel = draw(st.sampled_from(["GENERAL", "__my_messages__"]))
    frame = {"msg": "changed", "collection": "stream-room-messages", "id": "id",
             "fields": {"eventName": channel, "args": args}}
    text = json.dumps(frame, ensure_ascii=draw(st.booleans()), allow_nan=False)
    if draw(st.integers(0, 4)) == 0:  # some `$` escaped: the same JSON, fewer `"$` in the text
        parts = text.split("$")
        escaped = draw(st.lists(st.booleans(), min_size=len(parts) - 1, max_size=len(parts) - 1))
        text = parts[0] + "".join(("\\u0024" if e else "$") + part for e, part in zip(escaped, parts[1:]))
    if draw(st.integers(0, 9)) == 0:  # the message nested past the walk's depth guard
        before, key, after = text.rpartition('"msg":')
        text = before + '"deep":' + "[" * 320 + "]" * 320 + "," + key + after
    return text, json.loads(text)["fields"]["args"]


def same(a: Any, b: Any) -> bool:
    """The EJSON tests' equality, with every dict's key order compared too."""
    return ejson_same(a, b, ordered=True)


@settings(max_examples=400)
@given(frames())
def test_plain_message_is_the_general_decode_or_declines(frame: Frame) -> None:
    text, args = frame
    if not isinstance(args[0], dict):
        return
    plain = plain_message(args, text)
    if plain is None:
        return
    data, ident, ts, version = plain
    assert message_problem(args[0]) is None
    assert same(data, decode_ejson(args[0]))
    assert same(decode_ejson(args[1:]), args[1:])
    assert ident == args[0]["_id"] and (ident, version) == version_of(args[0])
    assert ts == args[0]["ts"]["$date"]


@settings(max_examples=300)
@given(st.one_of(NESTED, PLAIN), st.booleans(), st.integers(0, 4))
def test_plain_result_is_the_general_decode(result: Any, ascii: bool, spelling: int) -> None:
    text = json.dumps({"msg": "result", "id": "m1", "result": result}, ensure_ascii=ascii, allow_nan=False)
    if spelling == 0:
        text = text.replace("$", "\\u0024")
    elif spelling == 1:
        text = text.replace('"result":', '"deep":' + "[" * 320 + "]" * 320 + ',"result":', 1)
    parsed = json.loads(text)["result"]
    try:
        want = decode_ejson(parsed)
    except ProtocolError as exc:
        try:
            plain_result(parsed, text)
        except ProtocolError as again:
            assert str(again) == str(exc)
        else:
            raise AssertionError("the fast path took what the walk refuses")
        return
    assert same(plain_result(parsed, text), want)


def test_the_common_message_takes_the_fast_path() -> None:
    text = ('{"msg":"changed","collection":"stream-room-messages","id":"id","fields":{"eventName":"GENERAL",'
            '"args":[{"_id":"a","rid":"GENERAL","msg":"hi $5","ts":{"$date":1540756719398},"u":{"_id":"u",'
            '"username":"bob"},"md":[{"type":"PARAGRAPH","value":[{"type":"PLAIN_TEXT","value":"hi $5"}]}],'
            '"_updatedAt":{"$date":1540756719402}}]}}')
    args = json.loads(text)["fields"]["args"]
    plain = plain_message(args, text)
    assert plain is not None and same(plain[0], decode_ejson(args[0])) and plain[1:] == ("a", 1540756719398,
                                                                                         1540756719402)


def logged_in(fast: bool) -> QuickMeetProtocol:
    p = QuickMeetProtocol("wss://x/websocket", LOGIN)
    p.fast_path = fast
    p.opened(0)
    p.received('{"msg":"connected","session":"s"}', 0)
    p.received(LOGIN_OK, 0)
    ids = [p.subscribe("stream-room-messages", name)[0] for name in ("GENERAL", "__my_messages__")]
    p._last_seen["GENERAL"] = 1  # a starting point known: no fill, every message is live
    p.received(json.dumps({"msg": "ready", "subs": ids}), 0)
    return p


def comparable(output: Any) -> Any:
    if isinstance(output, Report):
        return ("report", type(output.error), str(output.error))
    assert isinstance(output, Event)
    return ("event", type(output), output.name, output.channel, output.id, output.provider, output.raw,
            output.received_at, output.data)


@settings(max_examples=150)
@given(st.lists(frames(), min_size=1, max_size=6), st.data())
def test_the_protocol_delivers_the_same_with_and_without_the_fast_path(sent: List[Frame], data: Any) -> None:
    fast, general = logged_in(True), logged_in(False)
    for text, _ in sent + [data.draw(st.sampled_from(sent))]:  # one repeat: dropped alike
        got, want = fast.received(text, 1), general.received(text, 1)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            ca, cb = comparable(a), comparable(b)
            assert same(list(ca[:-1]), list(cb[:-1])) and same(ca[-1], cb[-1]), (a, b)
    assert fast._last_seen == general._last_seen and fast._my_since == general._my_since
    assert fast._seen._keys == general._seen._keys


def test_a_bad_date_still_gets_the_general_report() -> None:
    p = logged_in(True)
    text = ('{"msg":"changed","collection":"stream-room-messages","id":"id","fields":{"eventName":"GENERAL",'
            '"args":[{"_id":"a","rid":"GENERAL","ts":{"$date":99999999999999999}}]}}')
    (report,) = p.received(text, 1)
    assert isinstance(report, Report) and isinstance(report.error, ProtocolError)
    assert "date" in str(report.error)
