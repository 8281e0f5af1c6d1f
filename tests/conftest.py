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


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Every test must leave no rtsync client thread running."""
    yield
    assert wait_for(lambda: not rtsync_threads(), timeout=3), f"leaked threads: {rtsync_threads()}"
