"""A QuickMeet standby taking over a RedisLease fills from the shared RedisCheckpoint: nothing lost, nothing twice."""

from __future__ import annotations

from typing import List

import rtsync
from rtsync.events import Event
from rtsync.policy import Backoff
from rtsync.testing.quickmeet import QuickMeetServer
from tests.conftest import wait_for
from tests.redis.conftest import RedisServer


def replica(server: QuickMeetServer, redis_url: str, got: List[str]) -> rtsync.QuickMeetClient:
    lease = rtsync.RedisLease(redis_url, "qm-bot", ttl=2.0)
    checkpoint = rtsync.RedisCheckpoint(redis_url, "qm-bot", lease=lease)
    c = rtsync.QuickMeetClient("alice", "alice-password", url=server.url, checkpoint=checkpoint,
                               checkpoint_interval=0, lease=lease, backoff=Backoff(base=0.1, cap=0.3))
    c.subscribe_room_messages("GENERAL", wait=False)

    def keep(e: Event) -> None:
        got.append(e.data[0]["msg"])

    c.on("stream-room-messages", keep)
    return c


def test_the_standby_fills_what_was_sent_while_nobody_held_the_lease(redis_server: RedisServer) -> None:
    with QuickMeetServer() as server:
        got_a: List[str] = []
        got_b: List[str] = []
        a = replica(server, redis_server.url, got_a).start()
        assert a.wait_connected(10)
        b = replica(server, redis_server.url, got_b).start()  # built before anything was saved
        try:
            assert not b.wait_connected(0.5)  # a standby: it holds no lease, so it does not connect
            for n in range(1, 4):
                server.publish("GENERAL", f"m{n}")
            assert wait_for(lambda: got_a == ["m1", "m2", "m3"])
            a.stop()  # releases the lease after its last checkpoint write
            for n in range(4, 7):  # nobody connected: only the checkpoint lets b fetch these
                server.publish("GENERAL", f"m{n}")
            assert b.wait_connected(10)
            server.publish("GENERAL", "m7")
            assert wait_for(lambda: got_b[-1:] == ["m7"])
        finally:
            b.stop()
            a.stop()
    assert got_a == ["m1", "m2", "m3"]
    assert got_b == ["m4", "m5", "m6", "m7"]  # in order, once, nothing the first replica delivered
