"""`Fleet`: many accounts (one client each) shared by worker processes through per-account leases in Redis."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import socket
import threading
import time
import uuid
from typing import Any, Callable, Dict, FrozenSet, Iterable, Optional

from ..client import Client
from ..errors import ConfigurationError
from ._redis import connect, shown
from .scripts import ACQUIRE, RELEASE, RENEW

__all__ = ["Fleet"]

log = logging.getLogger("rtsync.fleet")

# An account whose client could not be made (bad token format, a bug) is not retried by this worker
# for this long: its error is logged once a minute rather than every tick.
_RETRY_BROKEN = 60.0


class Fleet:
    """Run `make_client(account)` for a fair share of `accounts`, across every worker using the same `name`.

        fleet = rtsync.Fleet("redis://db:6379/0", accounts, make_client, capacity=500)
        fleet.run_forever()          # or start() / stop(); or `with fleet: ...`

    Each worker renews a heartbeat key (`rtsync:fleet:<name>:worker:<id>`) and
    a lease per account it owns (`rtsync:fleet:<name>:account:<account>`),
    every `ttl / 4` s (at most every 1 s). Its share is
    `min(capacity, ceil(len(accounts) / live workers))`: it claims free
    accounts up to it, and gives accounts up (client stopped first, then the
    lease released) when it holds more, as when a worker joins. A dead worker's
    accounts are claimed by the others once its leases expire (within `ttl`).
    A worker that cannot renew an account's lease before `ttl - margin` since
    the last renewal (Redis down, process paused) stops that client, so two
    workers never run the same account. Accounts are strings (ids, not
    secrets: they appear in key names and logs).

    For exactly-once resume per account, have `make_client` give each client a
    `RedisLease` and a `RedisCheckpoint` named after the account as well.
    """

    def __init__(
        self,
        redis_url: str,
        accounts: Iterable[str],
        make_client: Callable[[str], Client],
        *,
        capacity: Optional[int] = None,
        ttl: float = 10.0,
        name: str = "fleet",
        stop_timeout: float = 5.0,
    ) -> None:
        self.accounts = list(dict.fromkeys(accounts))
        if not all(isinstance(a, str) and a for a in self.accounts):
            raise ConfigurationError("accounts must be non-empty strings (account ids)")
        if capacity is not None and capacity < 1:
            raise ConfigurationError("capacity must be at least 1 (or None: no limit but the fair share)")
        if not ttl >= 0.5:
            raise ConfigurationError("ttl must be at least 0.5 s")
        self.url = redis_url
        self.make_client = make_client
        self.capacity = capacity
        self.ttl = float(ttl)
        self.margin = max(0.1, 0.1 * self.ttl)
        self.tick = min(1.0, self.ttl / 4)
        self.name = name
        self.stop_timeout = stop_timeout
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._prefix = f"rtsync:fleet:{name}:"
        self._redis = connect(redis_url, timeout=min(1.0, self.ttl / 5))
        self._acquire = self._redis.register_script(ACQUIRE)
        self._renew = self._redis.register_script(RENEW)
        self._release = self._redis.register_script(RELEASE)
        self._clients: Dict[str, Client] = {}
        self._tokens: Dict[str, int] = {}
        self._deadlines: Dict[str, float] = {}
        self._broken: Dict[str, float] = {}  # account -> when make_client may be tried again
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.workers = 1  # live workers seen at the last tick
        # Each worker tries free accounts in its own order, so joiners do not all race for the same ones.
        self._order = sorted(self.accounts, key=lambda a: hashlib.sha1(f"{self.worker}|{a}".encode()).digest())

    def __repr__(self) -> str:
        return f"<Fleet {self.name!r} {shown(self.url)} owns {len(self._clients)}/{len(self.accounts)}>"

    @property
    def owned(self) -> FrozenSet[str]:
        """The accounts this worker runs a client for now."""
        return frozenset(self._clients)

    @property
    def clients(self) -> Dict[str, Client]:
        """A copy of account -> running client."""
        return dict(self._clients)

    @property
    def share(self) -> int:
        """How many accounts this worker aims to own now."""
        fair = math.ceil(len(self.accounts) / max(1, self.workers))
        return fair if self.capacity is None else min(self.capacity, fair)

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> "Fleet":
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name=f"rtsync-fleet-{self.name}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: Optional[float] = None) -> None:
        """Stop every client, release their leases and the heartbeat. Idempotent."""
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout if timeout is not None else self.stop_timeout * max(1, len(self._clients)) + 2)
        self._thread = None

    def run_forever(self) -> None:
        """Start and block until stopped; Ctrl-C stops cleanly and returns."""
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            log.info("interrupted; stopping")
        finally:
            self.stop()

    def __enter__(self) -> "Fleet":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- the loop --------------------------------------------------------------
    def _key(self, account: str) -> str:
        return self._prefix + "account:" + account

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                began = time.monotonic()
                try:
                    self._round()
                except Exception as exc:  # Redis down: leases run out on their own deadlines
                    log.warning("fleet %s: %s: %s", self.name, type(exc).__name__, exc)
                self._expire()
                self._stopping.wait(max(0.0, self.tick - (time.monotonic() - began)))
        finally:
            for account in list(self._clients):
                self._give_up(account, "stopping")
            try:
                self._redis.delete(self._prefix + "worker:" + self.worker)
            except Exception as exc:
                log.debug("could not remove the heartbeat: %s", exc)

    def _round(self) -> None:
        sent = time.monotonic()
        self._redis.set(self._prefix + "worker:" + self.worker, "1", px=int(self.ttl * 1000))
        self._renew_all()
        self.workers = max(1, sum(1 for _ in self._redis.scan_iter(match=self._prefix + "worker:*", count=1000)))
        share = self.share
        extra = len(self._clients) - share
        if extra > 0:
            # Give up the newest-claimed first: fewer reconnects for accounts that settled.
            for account in list(self._clients)[-extra:]:
                if time.monotonic() - sent >= self.ttl / 3:
                    break  # renew what stays first; the rest goes next round
                self._give_up(account, f"rebalancing to {share} per worker ({self.workers} workers)")
            return
        if extra == 0 or time.monotonic() - sent >= self.ttl / 2:
            return
        free = [a for a in self._order if a not in self._clients]
        held = self._redis.mget([self._key(a) for a in free]) if free else []
        for account, holder in zip(free, held):
            if len(self._clients) >= share or self._stopping.is_set() or time.monotonic() - sent >= self.ttl / 3:
                break
            if holder is None and self._broken.get(account, 0.0) <= time.monotonic():
                self._claim(account)

    def _renew_all(self) -> None:
        owned = list(self._clients)
        if not owned:
            return
        sent = time.monotonic()
        pipe = self._redis.pipeline(transaction=False)
        for account in owned:
            self._renew(keys=[self._key(account), self._key(account) + ":token"],
                        args=[self.worker, int(self.ttl * 1000), str(self._tokens[account])], client=pipe)
        for account, ok in zip(owned, pipe.execute()):
            if ok == 1:
                self._deadlines[account] = sent + self.ttl - self.margin
            else:
                self._give_up(account, "its lease was taken over", release=False)

    def _expire(self) -> None:
        now = time.monotonic()
        for account, deadline in list(self._deadlines.items()):
            if now >= deadline:
                self._give_up(account, f"its lease could not be renewed within {self.ttl:g} s", release=False)

    def _claim(self, account: str) -> None:
        sent = time.monotonic()
        token = self._acquire(keys=[self._key(account), self._key(account) + ":token"],
                              args=[self.worker, int(self.ttl * 1000)])
        if token is None:
            return
        self._tokens[account] = int(token)
        self._deadlines[account] = sent + self.ttl - self.margin
        try:
            client = self.make_client(account)
            client.start()
        except Exception as exc:  # a bad account (RtsyncError) or a bug in make_client
            log.error("fleet %s: could not start the client for account %s: %s: %s",
                      self.name, account, type(exc).__name__, exc)
            self._deadlines.pop(account, None)
            self._tokens.pop(account, None)
            self._release(keys=[self._key(account)], args=[self.worker])
            self._broken[account] = time.monotonic() + _RETRY_BROKEN
            return
        self._clients[account] = client
        log.info("fleet %s: claimed account %s", self.name, account)

    def _give_up(self, account: str, reason: str, release: bool = True) -> None:
        client = self._clients.pop(account, None)
        self._deadlines.pop(account, None)
        self._tokens.pop(account, None)
        level = logging.INFO if release else logging.WARNING
        log.log(level, "fleet %s: giving up account %s: %s", self.name, account, reason)
        if client is not None:
            try:
                client.stop(self.stop_timeout)
            except Exception as exc:  # e.g. its last checkpoint write failed: the others must still stop
                log.warning("fleet %s: stopping account %s: %s: %s", self.name, account, type(exc).__name__, exc)
        if release:
            try:
                self._release(keys=[self._key(account)], args=[self.worker])
            except Exception as exc:
                log.warning("fleet %s: could not release account %s (it expires within %g s): %s",
                            self.name, account, self.ttl, exc)
