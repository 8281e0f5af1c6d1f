"""DashlyState's fast path for the common message decides exactly as the general path: same outputs,
same cursor, same dedupe windows, whatever order, repeats, restarts or malformed fields come."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtsync.events import Event
from rtsync.sansio import Output, Report
from rtsync.vendors.dashly import state as state_module
from rtsync.vendors.dashly.state import DashlyState

TIMES = ["Tue, 01 Dec 2026 02:00:00 GMT", "Tue, 01 Dec 2026 02:00:01 GMT", "Tue, 01 Dec 2026 02:00:03 GMT"]
CHANNELS = ["a", "b", "ping"]
ODD = [None, True, 1.5, -1, -2, 0, "", " 3", "W/3", "x", "+3", "9" * 20, 2**63, [1], {"n": 1}, "\u0663"]


def accept(state: DashlyState, text: str, now: float, fast: bool) -> List[Output]:
    old = state_module.FAST_PATH
    state_module.FAST_PATH = fast
    try:
        return state.accept(text, now)
    finally:
        state_module.FAST_PATH = old


def shown(outputs: List[Output]) -> List[Any]:
    """Outputs as comparable values (an exception compares by identity)."""
    return [(type(o).__name__, str(o.error)) if isinstance(o, Report) else o for o in outputs]


def inside(state: DashlyState) -> Dict[str, Any]:
    channels = {
        name: (ch.high, ch.high_key, ch.high_exact, dict(ch.seen), set(ch.carried), dict(ch.missing),
               ch.floor, ch.since)
        for name, ch in state._channels.items()
    }
    return {"max": state._max, "max_time": state._max_time, "resets": state.resets, "channels": channels,
            "cursor": state.cursor, "removed": set(state._removed)}


@st.composite
def scripts(draw: Any) -> List[Tuple[str, Any]]:
    """Operations on a state: mostly the next message of a channel, with repeats, reorders,
    restarts, new links, channel changes and malformed fields mixed in."""
    ops: List[Tuple[str, Any]] = []
    next_id = {ch: 1 for ch in CHANNELS + ["c"]}
    tag, second = 0, 0
    sent: List[str] = []
    for _ in range(draw(st.integers(1, 60))):
        kind = draw(st.sampled_from(["next"] * 8 + ["repeat", "any", "restart", "link", "channels", "gaps",
                                                     "body"]))
        if kind in ("next", "any", "restart"):
            channel = draw(st.sampled_from(CHANNELS + ["c"] if kind == "any" else CHANNELS))
            if kind == "restart":
                next_id[channel] = 1
            if draw(st.integers(0, 9)) == 0:
                second = min(second + 1, len(TIMES) - 1)
                tag = 0
            tag += 1
            msg_id: Any = next_id[channel]
            next_id[channel] += 1
            fields: Dict[str, Any] = {"id": msg_id, "channel": channel, "text": "", "tag": str(tag),
                                      "time": TIMES[second], "eventid": "", "message": {"n": len(ops)}}
            if kind == "any":
                fields["id"] = draw(st.one_of(st.integers(-3, 12), st.integers(-3, 12).map(str)))
                fields["tag"] = draw(st.one_of(st.integers(0, 12), st.integers(0, 12).map(str)))
                fields["time"] = draw(st.sampled_from(TIMES + ["Tue, 01 Dec 2026 01:59:59 GMT"]))
            if draw(st.integers(0, 5)) == 0:
                fields["id"] = str(fields["id"])
            if draw(st.integers(0, 7)) == 0:
                fields["tag"] = int(fields["tag"])
            if draw(st.integers(0, 9)) == 0:
                key = draw(st.sampled_from(["id", "channel", "tag", "time"]))
                fields[key] = draw(st.sampled_from(ODD + ["Not a date"]))
            if draw(st.integers(0, 19)) == 0:
                del fields[draw(st.sampled_from(["id", "channel", "tag", "time", "message"]))]
            text = json.dumps(fields, separators=(",", ":"))
            if draw(st.integers(0, 9)) == 0:
                text = draw(st.sampled_from([" ", "\n", "\t"])) + text + draw(st.sampled_from(["", " ", "\r\n"]))
            sent.append(text)
            ops.append(("text", text))
        elif kind == "repeat" and sent:
            ops.append(("text", draw(st.sampled_from(sent))))
        elif kind == "body" and sent:
            ops.append(("text", "".join(draw(st.lists(st.sampled_from(sent), min_size=1, max_size=3)))))
        elif kind == "link":
            ops.append(("link", None))
        elif kind == "channels":
            ops.append(("channels", draw(st.lists(st.sampled_from(CHANNELS + ["c"]), min_size=1, unique=True))))
        elif kind == "gaps":
            ops.append(("gaps", draw(st.sampled_from([0.0, 5.0]))))
    return ops


def play(ops: List[Tuple[str, Any]], fast: bool, window: int, restored: bool) -> Tuple[List[Any], Dict[str, Any]]:
    state = DashlyState(["a", "b", "ping"])
    state.window = window
    if restored:
        state.restore({"cursor": {"time": TIMES[0], "tag": 0}, "channels": {"a": [1, 2], "b": [3]}})
    outputs: List[Any] = []
    for i, (kind, arg) in enumerate(ops):
        now = float(i)
        if kind == "text":
            outputs.append(shown(accept(state, arg, now, fast)))
        elif kind == "link":
            state.new_link()
        elif kind == "channels":
            added = [ch for ch in arg if ch not in state.channels]
            state.set_channels(arg)
            for ch in added:
                state.put(ch, None)
            state.asking()
        elif kind == "gaps":
            outputs.append(shown(state.due_gaps(now + arg)))
        outputs.append(inside(state))
    return outputs, inside(state)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=scripts(), window=st.sampled_from([2, 4, 2048]), restored=st.booleans())
def test_fast_path_gives_what_the_general_path_gives(ops: List[Tuple[str, Any]], window: int, restored: bool) -> None:
    fast, fast_end = play(ops, True, window, restored)
    general, general_end = play(ops, False, window, restored)
    assert fast == general
    assert fast_end == general_end


def test_the_common_message_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    state = DashlyState(["a"])

    def general(*args: Any) -> None:
        raise AssertionError("the general path was taken")

    text = '{"id":%d,"channel":"a","text":"","tag":"%d","time":"%s","eventid":"","message":{"n":%d}}'
    state.accept(text % (1, 1, TIMES[0], 1), 0.0)  # a channel's first message: the general path
    monkeypatch.setattr(state, "_contained", general)
    for i in range(2, 6):
        [event] = state.accept(text % (i, i, TIMES[0], i), 0.0)
        assert isinstance(event, Event) and event.id == i and event.data == {"n": i}
    assert state.cursor is not None and state.cursor.tag == 5
