"""Redis becoming unreachable under a leased Dashly client (in-process): it stops at once, reports, and later resumes without repeats."""

from __future__ import annotations

import collections
import time
from typing import List

import pytest

import rtsync
from rtsync.events import Event
from rtsync.policy import Backoff
from rtsync.testing.dashly import DashlyServer
from tests.conftest import wait_for
from tests.redis.conftest import RedisServer

TTL = 1.0


def test_redis_outage_stops_delivery_reports_and_resumes_exactly_once(redis_server: RedisServer) -> None:
    with DashlyServer(ping_interval=1.0) as dashly:
        lease = rtsync.RedisLease(redis_server.url, "solo", ttl=TTL)
        checkpoint = rtsync.RedisCheckpoint(redis_server.url, "solo", lease=lease, timeout=0.3)
        client = rtsync.DashlyClient("test-token", channels=["orders"], url=dashly.url, checkpoint=checkpoint,
                                     checkpoint_interval=0, lease=lease, backoff=Backoff(base=0.1, cap=0.3))
        got: List[int] = []
        losses: List[Event] = []
        client.on("orders", lambda e: got.append(e.data["n"]))
        client.on("rtsync.error", lambda e: losses.append(e) if isinstance(
            e.data.get("exception"), rtsync.LeaseLost) else None)
        with client:
            assert client.wait_connected(10)
            for n in range(1, 6):
                dashly.publish("orders", {"n": n})
            assert wait_for(lambda: len(got) == 5, timeout=5)
            redis_server.pause()
            try:
                for n in range(6, 9):  # while the lease may still be provably held
                    dashly.publish("orders", {"n": n})
                assert wait_for(lambda: losses, timeout=TTL + 3), "the lost lease was not reported"
                assert "lease lost" in losses[0].data["error"] and losses[0].data["fatal"] is False
                assert not lease.valid()
                assert wait_for(lambda: client.state is rtsync.State.RECONNECTING, timeout=2)
                at_loss = len(got)
                for n in range(9, 12):  # nobody may deliver these now
                    dashly.publish("orders", {"n": n})
                time.sleep(1.0)
                assert len(got) == at_loss, "delivered without a provable lease"
                assert not client.connected
            finally:
                redis_server.resume()
            assert client.wait_connected(TTL + 5)
            assert wait_for(lambda: len(set(got)) == 11, timeout=10), sorted(got)
            time.sleep(0.3)
        counts = collections.Counter(got)
        assert sorted(counts) == list(range(1, 12))
        assert [n for n, c in counts.items() if c > 1] == []
        assert lease.token is None  # released on stop
        assert redis_server.client().get(lease.key) is None


def test_stop_while_redis_hangs_reports_the_failed_write_and_leaves_no_thread(redis_server: RedisServer) -> None:
    with DashlyServer(ping_interval=1.0) as dashly:
        lease = rtsync.RedisLease(redis_server.url, "solo", ttl=3.0)
        checkpoint = rtsync.RedisCheckpoint(redis_server.url, "solo", lease=lease, timeout=0.3)
        client = rtsync.DashlyClient("test-token", channels=["orders"], url=dashly.url, checkpoint=checkpoint,
                                     checkpoint_interval=3600, lease=lease)
        got: List[int] = []
        client.on("orders", lambda e: got.append(e.data["n"]))
        client.start()
        try:
            assert client.wait_connected(10)
            dashly.publish("orders", {"n": 1})  # saved at once: the first save is not held back
            dashly.publish("orders", {"n": 2})  # left for the save on stop
            assert wait_for(lambda: got == [1, 2], timeout=5)
            redis_server.pause()  # the checkpoint written on stop cannot reach Redis
            try:
                with pytest.raises(rtsync.ConnectionLost, match="Redis"):
                    client.stop()
            finally:
                redis_server.resume()
            assert lease.token is None and not lease.valid()  # given up locally all the same
        finally:
            client.stop()
