"""Fleet in one process (several workers as objects): capacity, joining, releasing on stop, broken accounts."""

from __future__ import annotations

import collections
from typing import Dict, List, Optional

import rtsync
from rtsync.testing.dashly import DashlyServer
from tests.conftest import wait_for
from tests.redis.conftest import RedisServer

ACCOUNTS = [f"a{i}" for i in range(12)]


def owners(redis: RedisServer) -> Dict[str, Optional[str]]:
    values = redis.client().mget([f"rtsync:fleet:f:account:{a}" for a in ACCOUNTS])
    return dict(zip(ACCOUNTS, values))


def test_capacity_join_release_and_a_broken_account(redis_server: RedisServer) -> None:
    with DashlyServer() as dashly:
        made: List[str] = []

        def make(account: str) -> rtsync.Client:
            made.append(account)
            if account == "a11":
                raise rtsync.ConfigurationError("this account's token is malformed")
            return rtsync.DashlyClient("test-token", channels=[f"ch-{account}"], url=dashly.url)

        one = rtsync.Fleet(redis_server.url, ACCOUNTS, make, capacity=5, ttl=1.0, name="f")
        two = rtsync.Fleet(redis_server.url, ACCOUNTS, make, capacity=5, ttl=1.0, name="f")
        three: Optional[rtsync.Fleet] = None
        try:
            one.start()
            two.start()
            assert wait_for(lambda: len(one.owned) == 5 and len(two.owned) == 5, timeout=10)
            assert not one.owned & two.owned
            held = collections.Counter(v for v in owners(redis_server).values())
            assert held[one.worker] == 5 and held[two.worker] == 5 and held[None] == 2
            assert all(c.running for c in one.clients.values())
            # A third worker without a capacity takes the one account left that works.
            three = rtsync.Fleet(redis_server.url, ACCOUNTS, make, ttl=1.0, name="f").start()
            assert wait_for(lambda: len(three.owned) == 1, timeout=10)  # type: ignore[union-attr]
            assert "a11" not in one.owned | two.owned | three.owned
            assert owners(redis_server)["a11"] is None  # released after make_client failed
            assert 1 <= made.count("a11") <= 3  # tried once per worker, then left alone for a minute
            # Stopping a worker stops its clients and releases its accounts at once.
            clients = list(one.clients.values())
            one.stop()
            assert one.owned == frozenset() and not any(c.running for c in clients)
            assert one.worker not in owners(redis_server).values()
            # Its accounts go to the worker below its share (three: ceil(12 / 2) = 6).
            assert wait_for(lambda: len(three.owned) == 6, timeout=10)  # type: ignore[union-attr]
        finally:
            for fleet in (one, two, three):
                if fleet is not None:
                    fleet.stop()
