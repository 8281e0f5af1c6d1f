"""Event, pattern matching and the dispatcher: order, once/off, failures reported, bounded queue."""

from __future__ import annotations

import collections
import os
import random
import sys
import threading
import time
from typing import List, Tuple

import pytest
from pydantic import BaseModel, ConfigDict

from rtsync.dispatch import Dispatcher, Handlers
from rtsync.events import ERROR, Event, register_view
from tests.conftest import wait_for


def ev(name: str, channel: str = None, provider: str = "t", data=None) -> Event:
    return Event.make(name, provider=provider, channel=channel, data=data)


def test_patterns_match_name_or_channel() -> None:
    h = Handlers()
    seen = []
    h.add("message.*", lambda e: seen.append(("glob", e.name)))
    h.add("room-7", lambda e: seen.append(("channel", e.name)))
    h.add("*", lambda e: seen.append(("all", e.name)))
    h.run(ev("message.created", channel="room-7"))
    h.run(ev("conversation.typing_on"))
    assert seen == [
        ("glob", "message.created"), ("channel", "message.created"), ("all", "message.created"),
        ("all", "conversation.typing_on"),
    ]


def test_exact_pattern_does_not_match_prefix() -> None:
    h = Handlers()
    seen = []
    h.add("message", seen.append)
    h.run(ev("message.created"))
    assert seen == []


def test_once_runs_once_and_off_removes() -> None:
    h = Handlers()
    seen = []
    h.add("a", lambda e: seen.append("once"), once=True)
    fn = lambda e: seen.append("on")  # noqa: E731
    h.add("a", fn)
    h.run(ev("a"))
    h.run(ev("a"))
    assert seen == ["once", "on", "on"]
    assert h.remove("a", fn) == 1
    h.run(ev("a"))
    assert seen == ["once", "on", "on"]


def test_bad_registration_is_a_clear_error() -> None:
    h = Handlers()
    with pytest.raises(TypeError, match="callable"):
        h.add("a", "not a function")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pattern"):
        h.add("", print)


def test_dispatcher_runs_in_order_on_its_own_thread() -> None:
    h = Handlers()
    got, threads = [], set()
    h.add("*", lambda e: (got.append(e.data), threads.add(threading.current_thread().name)))
    d = Dispatcher(h, name="rtsync-test-dispatch")
    d.start()
    for i in range(500):
        d.put(ev("n", data=i))
    assert d.stop(5)
    assert got == list(range(500))
    assert threads == {"rtsync-test-dispatch"}


@pytest.fixture(params=["eventfd", "SimpleQueue"] if hasattr(os, "eventfd") else ["SimpleQueue"])
def doorbell(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each way the dispatcher thread is woken here: an eventfd (Linux, Python 3.10+), else a SimpleQueue."""
    if request.param == "SimpleQueue":
        monkeypatch.delattr(os, "eventfd", raising=False)
    return str(request.param)


def test_no_wake_up_is_lost_when_a_put_races_the_dispatcher_going_to_sleep(doorbell: str) -> None:
    # Each put comes as the dispatcher finishes the previous batch, and the interpreter switches
    # threads every microsecond: a put that slipped between its last look at the queue and its
    # sleep without ringing would leave that batch undelivered.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    h = Handlers()
    done = threading.Semaphore(0)
    h.add("*", lambda e: done.release())
    d = Dispatcher(h, name="rtsync-test-dispatch")
    d.start()
    try:
        rnd = random.Random(1)
        for i in range(3000):
            d.put(ev("n", data=i))
            for _ in range(rnd.randrange(30)):  # vary the moment of the next put
                pass
            assert done.acquire(timeout=5), f"event {i} was never delivered"
    finally:
        sys.setswitchinterval(interval)
        assert d.stop(5)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc (Linux)")
def test_the_dispatcher_closes_its_eventfd_when_its_thread_ends() -> None:
    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    opened = 1 if hasattr(os, "eventfd") else 0  # the SimpleQueue doorbell holds no descriptor
    before = fds()
    d = Dispatcher(Handlers(), name="rtsync-test-dispatch")
    d.put(ev("early"))  # before the start: no descriptor yet, and nothing lost
    assert fds() == before
    d.start()
    assert fds() == before + opened
    assert d.stop(5)
    assert fds() == before and len(d) == 0


def test_callback_exception_is_logged_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    h = Handlers()
    errors, after = [], []

    def boom(e: Event) -> None:
        raise RuntimeError("kaboom")

    h.add("x", boom)
    h.add(ERROR, errors.append)
    h.add("y", after.append)
    d = Dispatcher(h, name="rtsync-test-dispatch")
    d.start()
    d.put(ev("x"))
    d.put(ev("y"))
    assert d.stop(5)
    assert len(errors) == 1 and "kaboom" in errors[0].data["error"]
    assert errors[0].data["event"] == "x"
    assert len(after) == 1  # the failure stopped nothing
    assert any("kaboom" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def test_error_in_error_handler_does_not_loop() -> None:
    h = Handlers()
    calls = []

    def bad(e: Event) -> None:
        calls.append(e.name)
        raise ValueError("again")

    h.add("*", bad)
    d = Dispatcher(h, name="rtsync-test-dispatch")
    d.dispatch(ev("x"))
    assert calls == ["x", ERROR]


def held_dispatcher(maxsize: int) -> Tuple[Dispatcher, threading.Event, List[object]]:
    """A started dispatcher whose callback waits for `release`, then notes each event's data."""
    h = Handlers()
    release = threading.Event()
    got: List[object] = []
    h.add("*", lambda e: (release.wait(5), got.append(e.data)))
    d = Dispatcher(h, maxsize=maxsize, name="rtsync-test-dispatch")
    d.start()
    return d, release, got


def test_full_queue_blocks_the_producer_without_dropping() -> None:
    d, release, got = held_dispatcher(3)
    waits = []

    def producer() -> None:
        for i in range(10):
            d.put(ev("n", data=i), wait=lambda: (waits.append(1), time.sleep(0.01))[0] is None)

    t = threading.Thread(target=producer)
    t.start()
    assert wait_for(lambda: len(waits) > 3)  # producer is paused, calling its wait hook
    assert t.is_alive()
    release.set()
    t.join(5)
    assert d.stop(5)
    assert got == list(range(10))


def test_events_that_did_not_fit_are_asked_for_once_half_the_queue_is_free() -> None:
    # The reader keeps what did not fit and is woken to hand it over: without the call it found
    # out only at its next look (20 ms later), and a burst larger than queue_size crawled.
    d, release, got = held_dispatcher(4)
    calls: List[int] = []
    backlog = collections.deque(ev("n", data=i) for i in range(10))
    d.offer(backlog, lambda: calls.append(len(d)))
    assert len(backlog) == 6 and calls == []  # four fit; the rest wait for room
    release.set()
    assert wait_for(lambda: calls)
    assert calls == [2]  # once, as soon as half the queue was free
    assert wait_for(lambda: (d.offer(backlog), not backlog)[1])  # the rest, as room appears
    assert d.stop(5)
    assert got == list(range(10)) and calls == [2]


def test_put_gives_up_when_wait_says_so() -> None:
    d = Dispatcher(Handlers(), maxsize=1)
    assert d.put(ev("a"))
    assert d.put(ev("b"), wait=lambda: False) is False
    assert len(d) == 1


class Msg(BaseModel):
    model_config = ConfigDict(extra="allow")
    content: str


def test_typed_view_keeps_unknown_fields() -> None:
    register_view("typed-test", "message.*", Msg)
    e = ev("message.created", provider="typed-test", data={"content": "hi", "extra": 1})
    assert isinstance(e.typed, Msg)
    assert e.typed.content == "hi" and e.typed.model_extra == {"extra": 1}
    assert ev("other", provider="typed-test", data={}).typed is None


def test_event_is_frozen() -> None:
    e = ev("a")
    with pytest.raises(Exception):
        e.name = "b"  # type: ignore[misc]


def test_import_rtsync_leaves_pydantic_until_a_typed_view_is_asked_for() -> None:
    # `import rtsync` (and every client class) must stay cheap: pydantic and the vendors' models
    # load at the first `typed` or model helper, in a fresh interpreter to see what import does.
    import subprocess
    import sys

    code = (
        "import sys, rtsync\n"
        "classes = [rtsync.DashlyClient, rtsync.DialpadClient, rtsync.DoshiiClient, rtsync.QuickMeetClient,"
        " rtsync.VoxsigClient]\n"
        "assert 'pydantic' not in sys.modules, 'pydantic imported by import rtsync'\n"
        "e = rtsync.Event.make('order_updated', provider='doshii', data={'id': '1', 'status': 'accepted'})\n"
        "assert type(e.typed).__name__ == 'Notification', e.typed\n"
        "assert 'pydantic' in sys.modules\n"
        "m = rtsync.Event.make('stream-room-messages', provider='quickmeet', data=[{'_id': 'm1', 'rid': 'r', 'msg': 'hi'}])\n"
        "assert rtsync.QuickMeetClient.room_message(m).msg == 'hi'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
