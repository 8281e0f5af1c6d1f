"""`RedisLease`: one holder at a time across processes and hosts, renewed on its own thread, with fencing tokens."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Callable, Optional

from ..errors import ConfigurationError
from ._redis import connect, shown
from .scripts import ACQUIRE, RELEASE, RENEW

__all__ = ["RedisLease"]

log = logging.getLogger("rtsync.lease")

PREFIX = "rtsync:lease:"


class RedisLease:
    """A named lease in Redis: pass it as `lease=` to any client to run hot-standby replicas.

        lease = rtsync.RedisLease("redis://db:6379/0", "orders-listener", ttl=10)
        checkpoint = rtsync.RedisCheckpoint("redis://db:6379/0", "orders-listener", lease=lease)
        client = rtsync.DashlyClient(token, channels=[...], checkpoint=checkpoint, lease=lease)

    Only the holder connects; the others stand by (state CONNECTING, or
    RECONNECTING after they lost it) and try to take it every `ttl / 10` s
    (at most 1 s). The holder renews every `ttl / 3` s on its own thread. It
    counts as held only until `ttl - margin` seconds after the last renewal
    that succeeded, measured with the monotonic clock from *before* that
    renewal was sent (`margin` is 10 % of `ttl`, at least 0.1 s): Redis cannot
    expire it earlier, so two replicas never both believe they hold it. When
    renewal keeps failing (Redis down, partition) or the process was paused
    past that point, the holder stops delivering at once, drops its link,
    reports an `rtsync.error` ("lease lost ..."), and stands by again.

    Each acquisition takes a new fencing `token` (a Redis counter, INCR);
    a `RedisCheckpoint` given this lease refuses writes carrying an older
    token. Keys: `rtsync:lease:<name>` (the holder) and
    `rtsync:lease:<name>:token` (the counter).
    """

    def __init__(self, url: str, name: str, ttl: float = 10.0) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError("name must be a non-empty string naming what the replicas share")
        if not ttl >= 0.5:
            raise ConfigurationError("ttl must be at least 0.5 s (renewals happen every ttl / 3)")
        self.url = url
        self.name = name
        self.ttl = float(ttl)
        self.margin = max(0.1, 0.1 * self.ttl)
        self.renew_every = self.ttl / 3
        self.standby_poll = min(1.0, self.ttl / 10)
        self.key = PREFIX + name
        self.counter_key = self.key + ":token"
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        # A call may never block past the point where the holding must be given up.
        self._redis = connect(url, timeout=min(1.0, self.ttl / 5))
        self._acquire = self._redis.register_script(ACQUIRE)
        self._renew = self._redis.register_script(RENEW)
        self._release = self._redis.register_script(RELEASE)
        self._lock = threading.Lock()
        self._token: Optional[int] = None
        self._deadline = 0.0
        self._generation = 0
        self._lost: Optional[Callable[[str], None]] = None
        self._quit = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._complained = False

    def __repr__(self) -> str:
        held = f"held token={self._token}" if self.valid() else "not held"
        return f"RedisLease({shown(self.url)!r}, {self.name!r}, ttl={self.ttl:g}) <{held}>"

    @property
    def token(self) -> Optional[int]:
        """The fencing token of the current holding, or None when not held."""
        return self._token

    def valid(self) -> bool:
        """True while the holding provably has not expired in Redis."""
        return self._token is not None and time.monotonic() < self._deadline

    # -- taking and giving up ----------------------------------------------
    def try_acquire(self) -> bool:
        """One attempt to take the lease; True if held now. Raises nothing: Redis errors count as no."""
        sent = time.monotonic()
        try:
            token = self._acquire(keys=[self.key, self.counter_key], args=[self.owner, int(self.ttl * 1000)])
        except Exception as exc:  # redis-py raises RedisError subclasses and OSError; any is a "no"
            self._complain(f"cannot reach Redis to take the lease: {type(exc).__name__}: {exc}")
            return False
        if token is None:
            return False
        self._complained = False
        with self._lock:
            self._generation += 1
            self._token = int(token)
            self._deadline = sent + self.ttl - self.margin
        return True

    def acquire(self, stopping: threading.Event, lost: Callable[[str], None]) -> bool:
        """Block until held (True; `lost(reason)` is then called if the holding ends by itself)
        or until `stopping` is set (False)."""
        while not stopping.is_set():
            if self.try_acquire():
                self._watch(lost)
                log.info("lease %s taken (token %d)", self.name, self._token)
                return True
            stopping.wait(self.standby_poll)
        return False

    def release(self) -> None:
        """Give the lease up (if held) so a standby takes over at once. Idempotent."""
        with self._lock:
            held = self._token is not None
            self._generation += 1
            self._token = None
            self._deadline = 0.0
            self._lost = None
        self._quit.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(2.0)
        self._thread = None
        if held:
            try:
                self._release(keys=[self.key], args=[self.owner])
            except Exception as exc:
                log.warning("could not release lease %s (it expires within %g s): %s", self.name, self.ttl, exc)

    def close(self) -> None:
        """Release and close the connection pool."""
        self.release()
        self._redis.close()

    # -- renewal -------------------------------------------------------------
    def _watch(self, lost: Callable[[str], None]) -> None:
        old = self._thread
        if old is not None and old is not threading.current_thread():
            self._quit.set()
            old.join(2.0)
        self._quit = threading.Event()
        with self._lock:
            self._lost = lost
            generation = self._generation
        self._thread = threading.Thread(target=self._renewing, args=(generation, self._quit),
                                        name=f"rtsync-lease-{self.name}", daemon=True)
        self._thread.start()

    def _renewing(self, generation: int, quit: threading.Event) -> None:
        next_at = time.monotonic() + self.renew_every
        failure = ""
        while True:
            with self._lock:
                if generation != self._generation:
                    return
                deadline = self._deadline
            wait = min(next_at, deadline) - time.monotonic()
            if wait > 0 and quit.wait(wait):
                return
            now = time.monotonic()
            if now >= deadline:
                self._lose(generation, f"not renewed within its ttl of {self.ttl:g} s"
                                       f"{' (' + failure + ')' if failure else ''}")
                return
            if now < next_at:
                continue
            sent = time.monotonic()
            try:
                ok = self._renew(keys=[self.key, self.counter_key],
                                 args=[self.owner, int(self.ttl * 1000), str(self._token)])
            except Exception as exc:
                failure = f"{type(exc).__name__}: {exc}"
                log.warning("lease %s: renewal failed (%s); retrying until it expires", self.name, failure)
                next_at = time.monotonic() + min(self.renew_every, 0.1 * self.ttl)
                continue
            if ok != 1:
                self._lose(generation, "another replica holds it now")
                return
            failure = ""
            with self._lock:
                if generation != self._generation:
                    return
                self._deadline = sent + self.ttl - self.margin
            next_at = sent + self.renew_every

    def _lose(self, generation: int, reason: str) -> None:
        with self._lock:
            if generation != self._generation:
                return
            self._generation += 1
            self._token = None
            self._deadline = 0.0
            lost, self._lost = self._lost, None
        log.warning("lease %s lost: %s", self.name, reason)
        if lost is not None:
            lost(reason)

    def _complain(self, text: str) -> None:
        level = logging.DEBUG if self._complained else logging.WARNING
        self._complained = True
        log.log(level, "lease %s: %s", self.name, text)
