"""A fleet of 3 `rtsync fleet` worker processes over 60 Dashly accounts on one local server, on a real redis-server."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

from rtsync.testing.dashly import DashlyServer
from tests.redis.conftest import PYTHON, RedisServer, python_env

ACCOUNTS = 60
TTL = 2.0
SLACK = 4.0  # heartbeat and leases expire within the TTL; then one tick, a claim, a connect


class Workers:
    def __init__(self, tmp: Path, redis: RedisServer, dashly: DashlyServer) -> None:
        self.tmp, self.redis, self.dashly = tmp, redis, dashly
        self.accounts = tmp / "accounts.txt"
        self.accounts.write_text("# id token channels\n" + "".join(
            f"acct-{i} test-token ch-{i}\n" for i in range(ACCOUNTS)))
        self.procs: Dict[int, subprocess.Popen] = {}
        self.db = redis.client()

    def spawn(self) -> int:
        n = len(self.procs)
        out = open(self.tmp / f"worker-{n}.out", "w")
        err = open(self.tmp / f"worker-{n}.err", "w")
        proc = subprocess.Popen(
            [PYTHON, "-m", "rtsync", "-v", "fleet", "--redis", self.redis.url, "--accounts", str(self.accounts),
             "--ttl", str(TTL), "--name", "t", "--url", self.dashly.url, "--resume"],
            stdout=out, stderr=err, env=python_env())
        out.close()
        err.close()
        self.procs[proc.pid] = proc
        (self.tmp / f"worker-{n}.pid").write_text(str(proc.pid))
        return proc.pid

    def owners(self) -> Dict[str, Optional[int]]:
        keys = [f"rtsync:fleet:t:account:acct-{i}" for i in range(ACCOUNTS)]
        return {f"acct-{i}": (int(v.split(":")[-2]) if v else None)
                for i, v in enumerate(self.db.mget(keys))}

    def live(self) -> List[int]:
        return [pid for pid, p in self.procs.items() if p.poll() is None]

    def events(self) -> Dict[int, List[dict]]:
        found: Dict[int, List[dict]] = {}
        for n, pid in enumerate(self.procs):
            text = (self.tmp / f"worker-{n}.out").read_text()
            found[pid] = [json.loads(line) for line in text.splitlines() if line.strip()]
        return found

    def wait(self, what: str, predicate: Callable[[], bool], timeout: float) -> float:
        began = time.monotonic()
        while not predicate():
            assert time.monotonic() - began < timeout, f"{what}: not within {timeout} s; owners " \
                f"{collections.Counter(self.owners().values())}; logs in {self.tmp}"
            time.sleep(0.05)
        return time.monotonic() - began

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def balanced(workers: Workers, count: int) -> Callable[[], bool]:
    def check() -> bool:
        owners = workers.owners()
        live = workers.live()
        per = collections.Counter(owners.values())
        return (None not in per and set(per) <= set(live) and len(per) == count
                and max(per.values()) - min(per.values()) <= 1)
    return check


def messages(workers: Workers, tag: str) -> collections.Counter:
    """(account, worker) for every delivered message tagged `tag`."""
    seen: collections.Counter = collections.Counter()
    for pid, events in workers.events().items():
        for e in events:
            if isinstance(e.get("data"), dict) and e["data"].get("tag") == tag:
                seen[e["account"]] += 1
    return seen


def test_three_workers_sixty_accounts_one_killed(tmp_path: Path, redis_server: RedisServer) -> None:
    with DashlyServer(ping_interval=1.0) as dashly:
        workers = Workers(tmp_path, redis_server, dashly)
        try:
            first = workers.spawn()
            workers.wait("one worker owns every account",
                         lambda: set(workers.owners().values()) == {first}, timeout=15)
            workers.spawn()
            workers.spawn()
            workers.wait("three workers share 20 each", balanced(workers, 3), timeout=15)

            def connected() -> bool:  # every account's owner printed its connection
                owners, events = workers.owners(), workers.events()
                return all(any(e["account"] == acct and e["name"] == "rtsync.connected"
                               for e in events.get(pid or 0, [])) for acct, pid in owners.items())

            workers.wait("every owner connected", connected, timeout=15)
            for i in range(ACCOUNTS):
                dashly.publish(f"ch-{i}", {"tag": "before"})
            workers.wait("every account got its message",
                         lambda: len(messages(workers, "before")) == ACCOUNTS, timeout=15)

            # Printed is not yet committed: a kill between a callback and its checkpoint write
            # repeats that event (the documented window); let those writes land first.
            time.sleep(0.5)
            victim = workers.live()[1]
            os.kill(victim, signal.SIGKILL)
            workers.procs[victim].wait(5)
            for i in range(ACCOUNTS):  # published while the victim's accounts have no owner
                dashly.publish(f"ch-{i}", {"tag": "during"})
            took = workers.wait("the two survivors own every account", balanced(workers, 2),
                                timeout=TTL + SLACK)
            workers.wait("every account got the message published during the takeover",
                         lambda: len(messages(workers, "during")) == ACCOUNTS, timeout=15)
            time.sleep(0.5)
            for tag in ("before", "during"):
                repeated = {a: c for a, c in messages(workers, tag).items() if c != 1}
                assert not repeated, f"{tag}: delivered more than once: {repeated}; logs in {tmp_path}"
            owners = workers.owners()
            assert victim not in owners.values()
            assert sorted(collections.Counter(owners.values()).values()) == [30, 30]
            print(f"fleet takeover after kill -9 (ttl {TTL:g} s): {took:.2f} s")
        finally:
            workers.close()
