"""The Lua scripts, RedisLease and RedisCheckpoint against a real redis-server; the delivery gate without one."""

from __future__ import annotations

import threading
import time
from typing import List, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rtsync
from rtsync.dispatch import Handlers
from rtsync.events import Event
from rtsync.ha.scripts import ACQUIRE, RELEASE, RENEW, SAVE_FENCED
from rtsync.lease import LeaseGate
from tests.conftest import wait_for
from tests.redis.conftest import RedisServer


# -- the scripts themselves ---------------------------------------------------
def test_acquire_hands_out_growing_tokens_to_one_owner_at_a_time(redis_server: RedisServer) -> None:
    db = redis_server.client()
    acquire = db.register_script(ACQUIRE)
    keys = ["L", "L:token"]
    assert acquire(keys=keys, args=["a", 1000]) == 1
    assert acquire(keys=keys, args=["b", 1000]) is None  # held by a
    assert db.get("L") == "a" and 900 < db.pttl("L") <= 1000
    assert acquire(keys=keys, args=["a", 1000]) == 2  # its owner again: a new holding, a new token
    db.delete("L")  # as if expired
    assert acquire(keys=keys, args=["b", 1000]) == 3


def test_renew_extends_only_the_current_owner_and_token(redis_server: RedisServer) -> None:
    db = redis_server.client()
    acquire, renew = db.register_script(ACQUIRE), db.register_script(RENEW)
    keys = ["L", "L:token"]
    token = acquire(keys=keys, args=["a", 500])
    assert renew(keys=keys, args=["b", 5000, token]) == 0
    assert renew(keys=keys, args=["a", 5000, token - 1]) == 0  # an older holding of the same owner
    assert db.pttl("L") <= 500
    assert renew(keys=keys, args=["a", 5000, token]) == 1
    assert db.pttl("L") > 4000
    db.delete("L")
    assert renew(keys=keys, args=["a", 5000, token]) == 0  # expired: renewing cannot resurrect it
    assert db.get("L") is None


def test_release_deletes_only_its_own_holding(redis_server: RedisServer) -> None:
    db = redis_server.client()
    acquire, release = db.register_script(ACQUIRE), db.register_script(RELEASE)
    acquire(keys=["L", "L:token"], args=["a", 5000])
    assert release(keys=["L"], args=["b"]) == 0
    assert db.get("L") == "a"
    assert release(keys=["L"], args=["a"]) == 1
    assert db.get("L") is None


def test_fenced_save_refuses_older_tokens(redis_server: RedisServer) -> None:
    db = redis_server.client()
    save = db.register_script(SAVE_FENCED)
    keys = ["C", "C:fence", "L:token"]
    db.set("L:token", 5)
    assert save(keys=keys, args=[4, '{"v":1}']) == 0  # a newer token was handed out (5)
    assert db.get("C") is None
    assert save(keys=keys, args=[5, '{"v":2}']) == 1
    assert db.get("C") == '{"v":2}' and db.get("C:fence") == "5"
    db.set("L:token", 3)  # even if the counter were reset, the fence remembers 5
    assert save(keys=keys, args=[4, '{"v":3}']) == 0
    assert db.get("C") == '{"v":2}'
    db.set("L:token", 6)
    assert save(keys=keys, args=[6, '{"v":4}']) == 1


# -- RedisCheckpoint -----------------------------------------------------------
def test_checkpoint_round_trip_and_bad_values(redis_server: RedisServer) -> None:
    cp = rtsync.RedisCheckpoint(redis_server.url, "job")
    assert cp.load() is None
    assert cp.save({"cursor": {"time": "x", "tag": 1}}) is True
    assert cp.load() == {"cursor": {"time": "x", "tag": 1}}
    db = redis_server.client()
    db.set("rtsync:checkpoint:job", "{not json")
    with pytest.raises(rtsync.ConfigurationError, match="not valid JSON"):
        cp.load()
    db.set("rtsync:checkpoint:job", "[1, 2]")
    with pytest.raises(rtsync.ConfigurationError, match="JSON object"):
        cp.load()
    cp.close()


def test_checkpoint_with_a_lease_saves_only_with_the_newest_token(redis_server: RedisServer) -> None:
    old = rtsync.RedisLease(redis_server.url, "job", ttl=5)
    new = rtsync.RedisLease(redis_server.url, "job", ttl=5)
    old_cp = rtsync.RedisCheckpoint(redis_server.url, "job", lease=old)
    new_cp = rtsync.RedisCheckpoint(redis_server.url, "job", lease=new)
    try:
        assert old_cp.save({"n": 0}) is False  # not held: refused without asking Redis
        assert old.try_acquire() and old_cp.save({"n": 1}) is True
        # The old holder is cut off; its key expires (simulated) and the new one takes over...
        redis_server.client().delete(old.key)
        assert new.try_acquire() and new.token == old.token + 1  # type: ignore[operator]
        # ...and before the new one saved anything, the old one (still believing) is refused.
        assert old.valid()
        assert old_cp.save({"n": 99}) is False
        assert new_cp.save({"n": 2}) is True
        assert new_cp.load() == {"n": 2}
    finally:
        old.release()
        new.release()


def test_checkpoint_unreachable_is_connection_lost_without_the_password(redis_server: RedisServer) -> None:
    cp = rtsync.RedisCheckpoint("redis://:s3cret-pw@127.0.0.1:1/0", "job", timeout=0.5)
    with pytest.raises(rtsync.ConnectionLost) as info:
        cp.load()
    assert "s3cret-pw" not in str(info.value)
    assert "s3cret-pw" not in repr(cp)
    with pytest.raises(rtsync.ConfigurationError, match="redis://"):
        rtsync.RedisCheckpoint("http://nope", "job")


# -- RedisLease -------------------------------------------------------------------
def test_one_holder_renewed_past_its_ttl_then_released(redis_server: RedisServer) -> None:
    a = rtsync.RedisLease(redis_server.url, "x", ttl=1.2)
    b = rtsync.RedisLease(redis_server.url, "x", ttl=1.2)
    stop = threading.Event()
    lost: List[str] = []
    assert a.acquire(stop, lost.append)
    assert a.valid() and a.token == 1
    got = []
    t = threading.Thread(target=lambda: got.append(b.acquire(stop, lost.append)), name="standby")
    t.start()
    time.sleep(2.5)  # well past the ttl: only renewals keep it
    assert a.valid() and not b.valid() and not got
    a.release()
    t.join(5)
    assert got == [True] and b.valid() and b.token == 2 and not a.valid()
    assert lost == []
    b.release()
    assert redis_server.client().get(b.key) is None


def test_taken_over_holding_is_lost_at_the_next_renewal(redis_server: RedisServer) -> None:
    a = rtsync.RedisLease(redis_server.url, "x", ttl=0.9)
    lost: List[str] = []
    assert a.acquire(threading.Event(), lost.append)
    redis_server.client().set(a.key, "someone-else")
    assert wait_for(lambda: lost, timeout=3)
    assert "another replica" in lost[0] and not a.valid() and a.token is None
    a.release()
    assert redis_server.client().get(a.key) == "someone-else"  # release never deletes another's


def test_redis_unreachable_the_holding_ends_before_redis_could_expire_it(redis_server: RedisServer) -> None:
    ttl = 1.0
    a = rtsync.RedisLease(redis_server.url, "x", ttl=ttl)
    lost: List[float] = []
    renewed_before = time.monotonic()
    assert a.acquire(threading.Event(), lambda reason: lost.append(time.monotonic()))
    redis_server.pause()  # a hung Redis: every call times out
    paused_at = time.monotonic()
    try:
        assert wait_for(lambda: lost, timeout=ttl + 2)
        assert not a.valid()
        # The holding ended no later than the ttl after the last renewal that got through.
        assert lost[0] - renewed_before <= ttl + 0.5
        assert lost[0] >= paused_at
    finally:
        redis_server.resume()
        a.release()


def test_lease_arguments_are_checked(redis_server: RedisServer) -> None:
    with pytest.raises(rtsync.ConfigurationError, match="ttl"):
        rtsync.RedisLease(redis_server.url, "x", ttl=0.1)
    with pytest.raises(rtsync.ConfigurationError, match="name"):
        rtsync.RedisLease(redis_server.url, "", ttl=1)
    lease = rtsync.RedisLease("redis://:pw-123456@127.0.0.1:1/0", "x")
    assert "pw-123456" not in repr(lease)


# -- the gate, with a fake lease (no Redis) -------------------------------------------
class FakeLease:
    def __init__(self) -> None:
        self.held = True

    @property
    def token(self) -> Optional[int]:
        return 1 if self.held else None

    def acquire(self, stopping: threading.Event, lost: object) -> bool:
        return True

    def valid(self) -> bool:
        return self.held

    def release(self) -> None:
        self.held = False


def test_gate_runs_callbacks_only_while_held_but_reports_lifecycle() -> None:
    handlers = Handlers()
    seen: List[str] = []
    handlers.add("*", lambda e: seen.append(e.name))
    lease = FakeLease()
    gate = LeaseGate(handlers, lease)
    first = Event.make("orders", provider="dashly", data={})
    gate.run(first)
    lease.held = False
    later = Event.make("orders", provider="dashly", data={})
    gate.run(later)
    assert gate.was_dropped(later) and not gate.was_dropped(first)
    error = Event.make("rtsync.error", provider="dashly", data={"error": "lease lost"})
    gate.mark(error)
    gate.run(error)
    assert gate.wait_marked(threading.Event())
    assert seen == ["orders", "rtsync.error"] and gate.dropped == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_any_stored_checkpoint_loads_as_an_object_or_a_configuration_error(redis_server: RedisServer,
                                                                           stored: str) -> None:
    redis_server.client().set("rtsync:checkpoint:fuzz", stored)
    cp = rtsync.RedisCheckpoint(redis_server.url, "fuzz")
    try:
        data = cp.load()
    except rtsync.ConfigurationError:
        return
    finally:
        cp.close()
    assert isinstance(data, dict)
