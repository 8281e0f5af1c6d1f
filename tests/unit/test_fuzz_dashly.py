"""Hostile but valid Push Stream frames: only Outputs come out, only RtsyncErrors escape, and the
next good message is still delivered. Plus the recorded frames that once broke the decoder."""

from __future__ import annotations

import json
import math
from typing import Any, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtsync.errors import ProtocolError, RtsyncError
from rtsync.events import Event
from rtsync.sansio import Connected, Fail, HttpResponse, Output, Ping, Report
from rtsync.vendors.dashly.protocol import DashlyState, LongPollProtocol, ShortPollProtocol, WebSocketStream

TIME = "Mon, 23 Nov 2026 03:19:06 GMT"
LATER = "Mon, 23 Nov 2026 03:19:07 GMT"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def good(i: int = 1, tag: int = 1, time: str = LATER, n: int = 99) -> str:
    return f'{{"id":{i},"channel":"c.1","message":{{"n":{n}}},"tag":"{tag}","time":"{time}"}}'


def deliveries(outputs: List[Output]) -> List[Any]:
    return [o.data["n"] for o in outputs if isinstance(o, Event) and isinstance(o.data, dict) and "n" in o.data]


def check(outputs: Any) -> List[Output]:
    assert isinstance(outputs, list)
    for out in outputs:
        assert isinstance(out, (Event, Report, Fail, Connected, Ping)), out
        if isinstance(out, (Report, Fail)):
            assert isinstance(out.error, RtsyncError)
            assert len(str(out.error)) < 400
    return outputs


# -- strategies -------------------------------------------------------------------------------

weird_numbers = st.sampled_from(["1e999", "-1e999", "NaN", "Infinity", "-Infinity", "1.5", "-0", "0",
                                 "-4", "9" * 30, "9" * 5000, "1e-999", "true", "false", "null"])
scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    weird_numbers,
    st.text(max_size=12).map(json.dumps),
    st.sampled_from(['"W/5"', '"5"', '"-3"', '"-2"', '"x"', '""', f'"{TIME}"', '"Thu, 01 Jan 1970 00:00:00 GMT"',
                     '"Fri, 31 Dec 9999 23:59:59 GMT"', '"Mon, 99 Foo 2026 99:99:99 GMT"', '"\\ud800"']),
)


@st.composite
def nested(draw: Any) -> str:
    depth = draw(st.sampled_from([1, 10, 500, 999, 1000, 1001, 3000]))
    opener = draw(st.sampled_from(["[", '{"a":']))
    closer = "]" if opener == "[" else "}"
    return opener * depth + draw(scalars) + closer * depth


values = st.one_of(scalars, nested(), st.sampled_from(["[]", "{}", "[1,2]", '{"n":"x"}', '"\\u0000"', '"😀"']))


@st.composite
def envelope(draw: Any) -> str:
    """A Push Stream message with the right keys, each holding a hostile (but valid JSON) value."""
    fields = {
        "id": draw(st.one_of(st.integers(-5, 5).map(str), values)),
        "channel": draw(st.one_of(st.just('"c.1"'), values)),
        "message": draw(values),
        "tag": draw(st.one_of(st.integers(0, 9).map(lambda t: f'"{t}"'), values)),
        "time": draw(st.one_of(st.just(f'"{TIME}"'), values)),
    }
    keys = draw(st.permutations(list(fields)))
    keep = draw(st.lists(st.sampled_from(keys), min_size=0, max_size=2, unique=True))
    parts = [f'"{k}":{fields[k]}' for k in keys if k not in keep] + [f'"{k}":{fields[k]}' for k in keep]
    return "{" + ",".join(parts) + "}"


frames = st.one_of(envelope(), values, nested())


# -- properties -------------------------------------------------------------------------------

@FUZZ
@given(hostile=frames)
def test_websocket_frame_then_good_frame(hostile: str) -> None:
    ws = WebSocketStream("ws://h", "tok", DashlyState(["c.1"]))
    check(ws.opened(0.0))
    check(ws.received(hostile, 1.0))
    assert deliveries(check(ws.received(good(7, 9), 2.0))) == [99]
    check(ws.tick(100.0))


@FUZZ
@given(hostile=st.lists(frames, min_size=1, max_size=3), sep=st.sampled_from(["", "\n", " "]))
def test_longpoll_body_with_hostile_messages_between_good_ones(hostile: List[str], sep: str) -> None:
    state = DashlyState(["c.1"])
    poll = LongPollProtocol("http://h", "tok", state)
    state.advance(None)
    body = sep.join([good(1, 1, n=1), *hostile, good(2, 2, n=2)])
    headers = {"Last-Modified": LATER, "Etag": "W/2"}
    got = deliveries(check(poll.response(HttpResponse(200, headers, body.encode("utf-8", "surrogatepass")), 1.0)))
    assert 1 in got and 2 in got  # both good messages of the same body are delivered
    assert deliveries(check(poll.response(HttpResponse(200, {}, good(3, 3, n=3).encode()), 2.0))) == [3]


@FUZZ
@given(hostile=st.lists(frames, min_size=1, max_size=3),
       headers=st.dictionaries(st.sampled_from(["Last-Modified", "Etag", "Date"]),
                               st.one_of(st.text(max_size=20), st.sampled_from(["W/1e999", "W/" + "9" * 5000, LATER]))))
def test_shortpoll_responses_never_raise_anything_but_rtsync_errors(hostile: List[str], headers: dict) -> None:
    poll = ShortPollProtocol("http://h", "tok", DashlyState(["c.1"]))
    for status in (200, 304):
        body = "".join(hostile).encode("utf-8", "surrogatepass")
        check(poll.response(HttpResponse(status, headers, body), 1.0))
    poll.request()
    assert deliveries(check(poll.response(HttpResponse(200, {}, good(5, 5, n=5).encode()), 2.0))) == [5]


@FUZZ
@given(reason=values)
def test_close_reasons_never_raise(reason: str) -> None:
    ws = WebSocketStream("ws://h", "tok", DashlyState(["c.1"]))
    for code in (1008, 1006, None):
        assert isinstance(ws.closed(code, reason), RtsyncError)


# -- recorded frames that once escaped as non-rtsync exceptions ---------------------------------

DEEP = '{"id":3,"channel":"c.1","message":' + "[" * 1000 + "]" * 1000 + f',"tag":"3","time":"{TIME}"}}'
RECORDED = {
    "id 1e999 (OverflowError)": f'{{"id":1e999,"channel":"c.1","message":{{}},"tag":"3","time":"{TIME}"}}',
    "tag 1e999 (OverflowError)": f'{{"id":3,"channel":"c.1","message":{{}},"tag":1e999,"time":"{TIME}"}}',
    "id NaN": f'{{"id":NaN,"channel":"c.1","message":{{}},"tag":"3","time":"{TIME}"}}',
    "nested 1000 deep (RecursionError)": DEEP,
    "id a list": f'{{"id":[3],"channel":"c.1","message":{{}},"tag":"3","time":"{TIME}"}}',
    "time a number": '{"id":3,"channel":"c.1","message":{},"tag":"3","time":1}',
    "year 99999": '{"id":3,"channel":"c.1","message":{},"tag":"3","time":"Mon, 23 Nov 99999 03:19:06 GMT"}',
    "channel an object": f'{{"id":3,"channel":{{"a":1}},"message":{{}},"tag":"3","time":"{TIME}"}}',
    "deleted channel a list": '{"id":-2,"channel":[1],"message":"x","tag":"0","time":"x"}',
    "id true": f'{{"id":true,"channel":"c.1","message":{{}},"tag":"3","time":"{TIME}"}}',
    "top-level number": "1e999",
}


@pytest.mark.parametrize("name", sorted(RECORDED))
@pytest.mark.parametrize("transport", ["websocket", "longpoll"])
def test_recorded_poison_is_one_report_and_the_rest_is_delivered(name: str, transport: str) -> None:
    state = DashlyState(["c.1"])
    state.accept(good(1, 1, TIME, n=1), 0.0)
    poison = RECORDED[name]
    if transport == "websocket":
        ws = WebSocketStream("ws://h", "tok", state)
        out = check(ws.received(poison, 1.0)) + check(ws.received(good(2, 5, TIME, n=2), 1.0))
    else:
        poll = LongPollProtocol("http://h", "tok", state)
        body = (good(2, 2, TIME, n=2) + poison + good(4, 4, TIME, n=4)).encode()
        out = check(poll.response(HttpResponse(200, {}, body), 1.0))
    reports = [o for o in out if isinstance(o, Report)]
    assert len(reports) == 1, reports
    assert isinstance(reports[0].error, ProtocolError)
    text = str(reports[0].error)
    assert text.startswith("skipped a Dashly message (") and len(text) < 260
    assert deliveries(out) == ([2] if transport == "websocket" else [2, 4])


def test_poison_with_a_known_place_moves_the_cursor_past_it() -> None:
    state = DashlyState(["c.1"])
    state.accept(good(1, 1, TIME), 0.0)
    state.accept(DEEP.replace('"tag":"3"', '"tag":"7"'), 1.0)
    assert state.cursor is not None and state.cursor.tag == 7
    # a replay of the same poison (resume, confirming poll) is not reported again
    assert state.accept(DEEP.replace('"tag":"3"', '"tag":"7"'), 2.0) == []


def test_huge_id_does_not_blind_the_channel() -> None:
    state = DashlyState(["c.1"])
    state.accept(good(1, 1, TIME, n=1), 0.0)
    state.accept(good(2**62, 2, TIME, n=2), 0.0)  # in range, so delivered; then ids look "old"
    got = deliveries(state.accept(good(2, 3, TIME, n=3) + good(3, 4, TIME, n=4), 0.0))
    assert got == [3, 4]  # lower ids with newer tags: the channel restarted, not repeats


def test_fuzz_strategies_make_what_they_claim() -> None:
    # the deep values really are beyond our nesting limit, on every Python
    from rtsync.sansio import MAX_DEPTH, loads

    with pytest.raises(RecursionError):
        loads("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    assert math.isinf(json.loads("1e999"))


# -- checkpoints written by any split, read back by any other; hostile ones refused clearly ------------

from rtsync.checkpoint import FileCheckpoint  # noqa: E402
from rtsync.errors import ConfigurationError  # noqa: E402
from rtsync.vendors.dashly import DashlyClient  # noqa: E402
from rtsync.vendors.dashly.shards import MAX_TARGET, fits, plan, restore_data  # noqa: E402

JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20), st.just(TIME), st.just("W/3")),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(
        st.sampled_from(["cursor", "channels", "shards", "time", "tag", "c.1", "c.2"]), inner, max_size=4)),
    max_leaves=12,
)


@FUZZ
@given(JSONISH)
def test_a_hostile_checkpoint_is_a_configuration_error_or_restores(saved: Any) -> None:
    class Fixed(FileCheckpoint):
        def load(self) -> Any:
            return saved

    try:
        client = DashlyClient("tok", channels=["c.1", "c.2"], checkpoint=Fixed("/nonexistent/cp.json"))
    except ConfigurationError as exc:
        assert "not a Dashly cursor" in str(exc)
        return
    assert client.channels == ["c.1", "c.2"]


CHANNEL = st.text(alphabet="abcxyz0123456789_.!~*'()-", min_size=1, max_size=200).filter(
    lambda ch: ch != "ALL" and "*" not in ch and not ch[-1].isdigit() or ".b" not in ch)


@FUZZ
@given(st.lists(CHANNEL, min_size=1, max_size=300, unique=True))
def test_plan_keeps_order_and_every_connection_fits(channels: List[str]) -> None:
    groups = plan(channels, "https://rt.example/prefix")
    assert [ch for g in groups for ch in g] == channels
    assert all(g and fits(g, "https://rt.example/prefix") for g in groups)
    assert all(len(g) <= 50 for g in groups)
    # greedy: a group is cut only where the next channel would not fit
    assert all(not fits(a + b[:1], "https://rt.example/prefix") for a, b in zip(groups, groups[1:]))
    assert MAX_TARGET < 8192


def test_restore_takes_the_oldest_cursor_of_the_channels_it_carries() -> None:
    older, newer = {"time": TIME, "tag": 5}, {"time": LATER, "tag": 1}
    saved = {"cursor": older, "channels": {"a": [1], "b": [2]},
             "shards": [{"channels": ["a"], "cursor": older}, {"channels": ["b", "c"], "cursor": newer}]}
    assert restore_data(saved, ["b", "c"]) == {"cursor": newer, "channels": {"b": [2]}}
    assert restore_data(saved, ["c", "a"])["cursor"] == older
    assert restore_data(saved, ["d"]) == {"cursor": None, "channels": {}}
    legacy = {"cursor": newer, "channels": {"a": [1]}}
    assert restore_data(legacy, ["a", "z"]) == {"cursor": newer, "channels": {"a": [1]}}
