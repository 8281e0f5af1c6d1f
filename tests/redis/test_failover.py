"""Hot standby on a real redis-server: kill -9 and SIGSTOP the active replica of a Dashly listener."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from rtsync.testing.dashly import DashlyServer
from tests.redis.conftest import HERE, PYTHON, RedisServer, python_env

TTL = 2.0
# Failover may take the TTL (the dead holder's lease expiring) plus this: the standby's next
# try (ttl / 10), the Dashly handshake, the first message's trip.
SLACK = 3.0
CHANNEL = "orders"


class Replicas:
    """Replica subprocesses (tests/redis/replica.py) sharing one lease, one checkpoint and one output file."""

    def __init__(self, tmp: Path, redis: RedisServer, dashly: DashlyServer, kill_at: str = "") -> None:
        self.tmp, self.redis, self.dashly = tmp, redis, dashly
        self.out = tmp / "delivered.txt"
        self.out.touch()
        self.env = python_env()
        self.env["KILL_AT"] = kill_at
        self.procs: Dict[int, subprocess.Popen] = {}
        self.db = redis.client()

    def spawn(self) -> int:
        log = open(self.tmp / f"replica-{len(self.procs)}.log", "w")
        proc = subprocess.Popen(
            [PYTHON, str(HERE / "replica.py"), self.redis.url, self.dashly.url, CHANNEL, str(self.out), str(TTL)],
            stdout=log, stderr=subprocess.STDOUT, env=self.env)
        log.close()
        self.procs[proc.pid] = proc
        return proc.pid

    def holder(self) -> Optional[int]:
        value = self.db.get("rtsync:lease:listener")
        return int(value.split(":")[-2]) if value else None

    def wait_holder(self, other_than: Optional[int] = None, timeout: float = 15.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.holder()
            if pid is not None and pid != other_than:
                return pid
            time.sleep(0.02)
        raise AssertionError(f"no replica took the lease within {timeout} s; logs in {self.tmp}")

    def lines(self) -> List[List[str]]:
        return [line.split() for line in self.out.read_text().splitlines()]

    def delivered_by(self, pid: int) -> int:
        return sum(1 for p, _ in self.lines() if int(p) == pid)

    def wait_delivered(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len({int(m) for _, m in self.lines()}) >= n:
                return
            time.sleep(0.05)
        got = sorted({int(m) for _, m in self.lines()})
        missing = sorted(set(range(1, n + 1)) - set(got))
        raise AssertionError(f"{len(missing)} messages never delivered (first {missing[:10]}); logs in {self.tmp}")

    def assert_exactly_once(self, n: int) -> None:
        counts = collections.Counter(int(m) for _, m in self.lines())
        assert sorted(counts) == list(range(1, n + 1))
        repeated = {m: c for m, c in counts.items() if c > 1}
        assert not repeated, f"delivered more than once: {repeated}; logs in {self.tmp}"

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            proc.wait(5)


class Publisher:
    """Publishes {"n": 1..} to the channel every `every` seconds on a thread; `hold` pauses it."""

    def __init__(self, dashly: DashlyServer, total: int, every: float = 0.02) -> None:
        self.dashly, self.total, self.every = dashly, total, every
        self.sent = 0
        self.go = threading.Event()
        self.go.set()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for n in range(1, self.total + 1):
            self.go.wait()
            self.dashly.publish(CHANNEL, {"n": n})
            self.sent = n
            time.sleep(self.every)

    def __enter__(self) -> "Publisher":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.go.set()
        self.thread.join(60)


@pytest.fixture()
def world(tmp_path: Path, redis_server: RedisServer) -> Iterator[tuple]:
    with DashlyServer(store_size=2000) as dashly:
        yield tmp_path, redis_server, dashly


def test_kill_9_the_active_replica_three_times(world: tuple) -> None:
    tmp, redis, dashly = world
    total, kills = 400, (60, 160, 260)
    replicas = Replicas(tmp, redis, dashly, kill_at=",".join(map(str, kills)))
    failovers: List[float] = []
    try:
        replicas.spawn()
        replicas.spawn()
        replicas.wait_holder()
        with Publisher(dashly, total):
            for n in kills:
                marker = Path(f"{replicas.out}.kill-{n}")
                deadline = time.monotonic() + 30
                while not marker.exists() or not marker.read_text():
                    assert time.monotonic() < deadline, f"message {n} never reached a replica; logs in {tmp}"
                    time.sleep(0.01)
                victim = int(marker.read_text())
                assert replicas.holder() == victim  # only the holder delivers
                os.kill(victim, signal.SIGKILL)
                killed_at = time.monotonic()
                replicas.spawn()  # keep two replicas, like a supervisor restarting the dead one
                # Failover: until a surviving replica delivers the message the victim died on.
                while not any(m == str(n) for _, m in replicas.lines()):
                    assert time.monotonic() - killed_at < TTL + SLACK, f"no failover; logs in {tmp}"
                    time.sleep(0.01)
                failovers.append(time.monotonic() - killed_at)
        replicas.wait_delivered(total, timeout=TTL + SLACK + 5)
        replicas.assert_exactly_once(total)
        print(f"failover times (ttl {TTL:g} s): {', '.join(f'{t:.2f}' for t in failovers)}")
        assert all(t < TTL + SLACK for t in failovers)
    finally:
        replicas.close()


def test_sigstop_past_the_ttl_then_sigcont_delivers_and_commits_nothing(world: tuple) -> None:
    tmp, redis, dashly = world
    total = 300
    replicas = Replicas(tmp, redis, dashly)
    try:
        replicas.spawn()
        replicas.spawn()
        old = replicas.wait_holder()
        with Publisher(dashly, total) as publisher:
            while publisher.sent < 80:
                time.sleep(0.01)
            # Pause at a quiet moment, so nothing is mid-callback when the process stops.
            publisher.go.clear()
            time.sleep(0.1)
            replicas.wait_delivered(publisher.sent, timeout=5)
            time.sleep(0.2)
            os.kill(old, signal.SIGSTOP)
            stopped_at = time.monotonic()
            delivered, saves = replicas.delivered_by(old), _saves(replicas, old)
            publisher.go.set()  # the server keeps writing to the paused replica's socket
            new = replicas.wait_holder(other_than=old, timeout=TTL + SLACK)
            took_over = time.monotonic() - stopped_at
            time.sleep(0.5)
            os.kill(old, signal.SIGCONT)
            time.sleep(2.0)  # the old one wakes with frames in its socket and events in its queue
            assert replicas.delivered_by(old) == delivered, f"the paused replica delivered after waking; {tmp}"
            assert _saves(replicas, old) == saves, f"the paused replica committed after waking; {tmp}"
            assert replicas.holder() == new
        replicas.wait_delivered(total, timeout=TTL + SLACK + 5)
        replicas.assert_exactly_once(total)
        assert replicas.delivered_by(new) > 0
        log = "".join(p.read_text() for p in tmp.glob("replica-*.log"))
        assert f"{old} error lease lost" in log  # it reported the loss
        print(f"takeover after SIGSTOP (ttl {TTL:g} s): {took_over:.2f} s")
    finally:
        replicas.close()


def _saves(replicas: Replicas, pid: int) -> int:
    """How many checkpoint writes by `pid` were accepted."""
    path = Path(f"{replicas.out}.saves")
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines()
               if line.split()[0] == str(pid) and line.split()[-1] == "True")


def test_holder_killed_before_its_first_event_the_standby_starts_where_it_started(world: tuple) -> None:
    tmp, redis, dashly = world
    replicas = Replicas(tmp, redis, dashly)
    try:
        replicas.spawn()
        first = replicas.wait_holder()
        replicas.spawn()
        db = redis.client()
        # The holder records where it starts (the server's clock) before it connects.
        deadline = time.monotonic() + 15
        while db.get("rtsync:checkpoint:listener") is None:
            assert time.monotonic() < deadline, f"the holder saved no starting point; logs in {tmp}"
            time.sleep(0.02)
        os.kill(first, signal.SIGKILL)
        for n in range(1, 21):  # nobody holds the lease now
            dashly.publish(CHANNEL, {"n": n})
        replicas.wait_holder(other_than=first, timeout=TTL + SLACK)
        replicas.wait_delivered(20, timeout=TTL + SLACK)
        replicas.assert_exactly_once(20)
    finally:
        replicas.close()
