"""What the DashlyClient integration tests share: a local server, fast backoff, and a client on one transport."""

from __future__ import annotations

from typing import Any, Iterable, Iterator

import pytest

import rtsync
from rtsync.testing.dashly import DashlyServer

FAST = rtsync.Backoff(base=0.05, cap=0.2)
TRANSPORTS = ["websocket", "longpoll", "shortpoll"]


@pytest.fixture
def server() -> Iterator[DashlyServer]:
    """A test module uses it by importing it: `from tests.dashly_support import server`."""
    with DashlyServer(tokens={"tok"}, longpoll_timeout=1.0, ping_interval=0.5) as s:
        yield s


def make(server: DashlyServer, transport: str, channels: Iterable[str] = ("c.1", "c.2"),
         **kw: Any) -> rtsync.DashlyClient:
    kw.setdefault("backoff", FAST)
    kw.setdefault("poll_interval", 0.1)
    return rtsync.DashlyClient("tok", channels=list(channels), transport=transport, url=server.url, **kw)
