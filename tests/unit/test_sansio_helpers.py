"""The helpers every vendor protocol shares: Liveness in its configurations, BoundedSet, and clock-free events."""

from __future__ import annotations

import copy
import json
import pickle
from datetime import datetime, timezone
from typing import Callable, List, Sequence

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import rtsync
from rtsync import jsontext, sansio
from rtsync.errors import StaleConnection
from rtsync.events import Event, stamp
from rtsync.sansio import BoundedSet, Fail, Liveness, Ping, Send
from rtsync.testing import MockLink
from rtsync.vendors.dashly import DashlyEvent


def stale_message(outputs: Sequence[object]) -> str:
    (fail,) = outputs
    assert isinstance(fail, Fail) and isinstance(fail.error, StaleConnection) and fail.error.retryable
    return str(fail.error)


# -- Liveness ----------------------------------------------------------------
def test_silence_then_an_rfc6455_ping_then_stale() -> None:  # Dashly, Dialpad
    live = Liveness("V", interval=20, timeout=10)
    assert live.opened(100) == []
    assert live.deadline() == 120 and live.tick(119) == []
    assert live.tick(120) == [Ping()]
    assert live.tick(125) == [] and live.deadline() == 130  # one probe per silence
    assert stale_message(live.tick(130)) == "no frame from V for 30 s (not even a PONG); reconnecting"


def test_anything_heard_restarts_the_silence() -> None:
    live = Liveness("V", interval=20, timeout=10)
    live.opened(0)
    assert live.tick(20) == [Ping()]
    live.heard(22)  # the PONG, or any frame
    assert live.deadline() == 42 and live.tick(41) == []
    assert live.tick(42) == [Ping()]
    live.answered(43)  # the same as heard() for a silence-driven probe
    assert live.deadline() == 63


def test_a_late_tick_still_counts_staleness_from_the_last_frame() -> None:
    live = Liveness("V", interval=20, timeout=10)
    live.opened(0)
    assert live.tick(25) == [Ping()]  # late, but the stale verdict stays at 20 + 10
    assert live.deadline() == 30
    assert stale_message(live.tick(30))


def test_a_vendor_frame_as_the_probe() -> None:  # QuickMeet's DDP ping
    ids = iter(range(1, 10))
    live = Liveness("QuickMeet", interval=25, timeout=15, probe=lambda: Send(f'{{"msg":"ping","id":"p{next(ids)}"}}'),
                    stale="no frame from {vendor} for {seconds:.0f} s, not even a pong")
    live.opened(0)
    assert live.tick(25) == [Send('{"msg":"ping","id":"p1"}')]
    live.heard(26)
    assert live.tick(51) == [Send('{"msg":"ping","id":"p2"}')]
    assert stale_message(live.tick(66)) == "no frame from QuickMeet for 40 s, not even a pong"


def test_no_probe_only_silence() -> None:  # Voxsig: the server pings every 3 s
    live = Liveness("Voxsig", timeout=6, probe=None,
                    stale="no frame from {vendor} for {seconds:.1f} s (it pings every 3 s); reconnecting")
    live.opened(5)
    assert live.deadline() == 11
    live.heard(8)
    assert live.deadline() == 14 and live.tick(13.9) == []
    assert stale_message(live.tick(14.5)) == "no frame from Voxsig for 6.5 s (it pings every 3 s); reconnecting"


def test_a_heartbeat_beats_on_open_and_every_interval_whatever_arrives() -> None:  # Doshii
    beats = []
    live = Liveness("Doshii", interval=30, timeout=60, heartbeat=True,
                    probe=lambda: beats.append(1) or Send("hb"),  # type: ignore[func-returns-value]
                    stale="no pong from {vendor} for {seconds:.0f} s; the link is stale, reconnecting")
    assert live.opened(0) == [Send("hb")]
    assert live.deadline() == 30
    assert live.tick(30) == [Send("hb")]
    assert live.deadline() == 60  # the wait counts from the first unanswered beat
    assert stale_message(live.tick(60)) == "no pong from Doshii for 60 s; the link is stale, reconnecting"
    assert len(beats) == 2


def test_a_heartbeat_wait_ends_only_with_an_answer_and_restarts_when_heard() -> None:
    live = Liveness("Doshii", interval=30, timeout=60, heartbeat=True, probe=lambda: Send("hb"))
    live.opened(0)
    live.heard(10)  # a control frame, or reading paused for slow callbacks: the pong may sit unread
    assert live.deadline() == 30
    assert live.tick(30) == [Send("hb")] and live.deadline() == 60
    assert live.tick(60) == [Send("hb")] and live.deadline() == 70  # the wait restarted at 10
    live.answered(61)
    assert live.deadline() == 90  # no wait: only the next beat
    live.heard(62)  # nothing awaited: nothing to restart
    assert live.deadline() == 90
    assert live.tick(90) == [Send("hb")] and live.deadline() == 120


def test_a_heartbeat_forgets_its_wait_when_the_link_is_lost() -> None:
    live = Liveness("Doshii", interval=30, timeout=60, heartbeat=True, probe=lambda: Send("hb"))
    live.opened(0)
    live.lost()
    assert live.deadline() == 30
    assert live.opened(500) == [Send("hb")] and live.deadline() == 530


def test_a_heartbeat_needs_a_probe() -> None:
    with pytest.raises(ValueError):
        Liveness("X", interval=1, timeout=1, probe=None, heartbeat=True)


# -- BoundedSet --------------------------------------------------------------
def test_bounded_set_remembers_the_newest_keys() -> None:
    seen: BoundedSet[int] = BoundedSet(3)
    assert [seen.add(k) for k in (1, 2, 1, 3)] == [True, True, False, True]
    assert len(seen) == 3 and 1 in seen
    assert seen.add(4)  # 1 is forgotten, the oldest added (a repeat does not refresh it)
    assert 1 not in seen and {2, 3, 4} == {k for k in (1, 2, 3, 4) if k in seen}
    assert seen.add(1)
    seen.clear()
    assert len(seen) == 0 and not seen and seen.add(2)


def test_bounded_set_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        BoundedSet(0)


# -- Event: clock-free construction, the engine stamps -----------------------
def test_make_reads_no_clock_and_stamp_fills_only_unset_times() -> None:
    fresh = Event.make("a", provider="p")
    assert fresh.received_at is None
    then = datetime(2020, 1, 1, tzinfo=timezone.utc)
    kept = Event.make("b", provider="p", received_at=then)
    now = datetime.now(timezone.utc)
    stamp([fresh, kept], now)
    assert fresh.received_at == now and kept.received_at == then


def test_event_is_a_frozen_value() -> None:
    e = Event.make("a", provider="p", data={"x": 1}, id=3)
    with pytest.raises(AttributeError, match="frozen"):
        e.name = "b"
    with pytest.raises(AttributeError, match="frozen"):
        del e.name
    same = Event("a", provider="p", data={"x": 1}, id=3)
    assert same == e and hash(same) == hash(e) and same != Event.make("a", provider="q", data={"x": 1}, id=3)
    assert repr(e).startswith("Event(name='a', channel=None, data={'x': 1}, id=3, provider='p'")
    assert copy.copy(e) == e and pickle.loads(pickle.dumps(e)) == e
    assert Event("x").provider == "rtsync"
    with pytest.raises(TypeError, match="no field 'tga'"):
        Event("x", tga=1)


def test_subclass_fields() -> None:
    e = DashlyEvent("c", provider="dashly", tag=5, time="t")
    assert (e.tag, e.time) == (5, "t") and DashlyEvent.make("c", provider="dashly").tag == 0
    assert e != Event("c", provider="dashly")


def test_every_event_a_callback_sees_is_stamped() -> None:
    link = MockLink(['{"doshii":{"pong":1,"version":"3"}}', '{"emit":["order_created",{"id":"7"}]}'])
    client = rtsync.DoshiiClient("client-id", link=link)
    got: List[rtsync.Event] = []
    client.on("*", got.append)

    @client.on("order_created")
    def fails(event: rtsync.Event) -> None:
        raise RuntimeError("boom")  # its rtsync.error comes from the dispatcher, not the engine

    before = datetime.now(timezone.utc)
    with client:
        assert client.wait_connected(5)
        assert link.replayed(timeout=5)
    names = [e.name for e in got]
    assert "order_created" in names and "rtsync.connected" in names and "rtsync.error" in names
    assert all(isinstance(e.received_at, datetime) and e.received_at >= before for e in got)
    assert client.stats.last_event_at == next(e.received_at for e in got if e.name == "order_created")


# -- loads: json, or orjson with the `fast` extra -----------------------------------
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2 ** 63), max_value=2 ** 64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(_json_values, st.sampled_from([None, 0, 2]))
def test_loads_agrees_with_json_on_every_value(value: object, indent: object) -> None:
    text = json.dumps(value, indent=indent)  # type: ignore[arg-type]
    assert repr(sansio.loads(text)) == repr(json.loads(text))


def _outcome(fn: Callable[[str], object], text: str) -> object:
    try:
        return repr(fn(text))
    except (ValueError, RecursionError) as exc:
        return type(exc)


def _as_loads_reads(value: object) -> object:
    """json's value as `loads` documents it: with orjson, integers beyond 64 bits come back as floats."""
    if isinstance(value, int) and not isinstance(value, bool) and not -(1 << 63) <= value < 1 << 64:
        return float(value) if jsontext.quick_loads is not None else value
    if isinstance(value, list):
        return [_as_loads_reads(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_loads_reads(v) for k, v in value.items()}
    return value


@given(st.text(max_size=60))
@example("20000000000000000000")
@example("[-9223372036854775809, 18446744073709551615]")
def test_loads_agrees_with_json_on_any_text(text: str) -> None:
    assert _outcome(sansio.loads, text) == _outcome(lambda t: _as_loads_reads(json.loads(t)), text)


@pytest.mark.parametrize("text", ["NaN", "[Infinity, -Infinity]", "1e400", '"\\ud800"', '{"a": 1, "a": 2}',
                                  "[" * 500 + "]" * 500, '{"a":' * 500 + "1" + "}" * 500])
def test_loads_takes_what_json_takes_where_orjson_refuses(text: str) -> None:
    assert _outcome(sansio.loads, text) == _outcome(json.loads, text)


@pytest.mark.parametrize("depth", [sansio.MAX_DEPTH + 1, 990, 1100, 5000, 100_000])
def test_loads_refuses_what_nests_past_max_depth_on_every_python(depth: int) -> None:
    # json's own limit is about 1000 levels up to 3.12 and far more on 3.13: ours is the same everywhere
    for text in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth,
                 '[1, {"a": ' + "[" * depth + "]" * depth + "}]"):
        with pytest.raises(RecursionError):
            sansio.loads(text)
    wide = "[" + ",".join(["{}"] * (10 * sansio.MAX_DEPTH)) + "]"  # many brackets, shallow: taken
    assert len(sansio.loads(wide)) == 10 * sansio.MAX_DEPTH


def test_json_object_reports_what_is_not_a_json_object() -> None:
    assert sansio.json_object('{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}
    for bad in ("[1]", "{", "", "\x00"):
        report = sansio.json_object(bad)
        assert isinstance(report, sansio.Report) and "skipped a frame" in str(report.error)
