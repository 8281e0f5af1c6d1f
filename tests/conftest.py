"""Shared test helpers: thread-leak checks, the skip-locally / fail-in-CI rule, and event recorders."""

from __future__ import annotations

import os
import threading
import time
from typing import Iterator, List, Tuple

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def need(available: bool, reason: str) -> None:
    """Skip locally when an external dependency is missing; under CI=true that is a failure."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def rtsync_threads() -> list:
    """Threads rtsync clients started (test servers' threads are named rtsync-testserver)."""
    return [
        t for t in threading.enumerate()
        if t.name.startswith("rtsync-") and t.name != "rtsync-testserver" and t.is_alive()
    ]


def watch(c, pattern: str = "*") -> Tuple[List, threading.Event]:
    """Record the client's events matching `pattern`; the Event is set once it is connected."""
    got: List = []
    up = threading.Event()
    c.on(pattern, got.append)
    c.on("rtsync.connected", lambda e: up.set())
    return got, up


def started(c) -> List:
    """Record every event of the client, start it and wait (5 s at most) until it is connected."""
    got, up = watch(c)
    c.start()
    assert up.wait(5), "the client did not connect within 5 s"
    return got


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.01) -> bool:
    """Poll `predicate` until true or `timeout`; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item, so the leak check knows whether the test itself failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rtsync_{report.when}", report)


@pytest.fixture(autouse=True)
def no_leaked_threads(request, monkeypatch) -> Iterator[None]:
    """Every test must leave no rtsync client thread running.

    Engines a test started and left running are stopped here, so a failure inside a test
    (which skips its own stop()) is reported once, as that test's failure, and not again as
    a leak in every later test. A test that passed but leaked is an error.
    """
    from rtsync.engine import Engine

    engines: List = []
    start = Engine.start

    def tracked(self) -> None:
        engines.append(self)
        start(self)

    before = set(rtsync_threads())  # an earlier test's leak was reported there, not here

    def mine() -> list:
        return [t for t in rtsync_threads() if t not in before]

    monkeypatch.setattr(Engine, "start", tracked)
    yield
    if wait_for(lambda: not mine(), timeout=3):
        return
    leaked = mine()
    for engine in engines:
        engine.stop(timeout=5)
    call = getattr(request.node, "rtsync_call", None)
    if call is not None and call.failed:
        return  # its own failure says what went wrong; the leak is only a consequence
    pytest.fail(f"leaked threads (now stopped): {leaked}; still running: {mine()}", pytrace=False)
