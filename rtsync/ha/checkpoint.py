"""`RedisCheckpoint`: a client's resume point kept in Redis, written atomically and fenced by a lease's token."""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, Optional

from ..checkpoint import decode
from ..errors import ConfigurationError
from ._redis import connect, shown, unreachable
from .lease import RedisLease
from .scripts import SAVE_FENCED

__all__ = ["RedisCheckpoint"]

log = logging.getLogger("rtsync.checkpoint")

PREFIX = "rtsync:checkpoint:"


class RedisCheckpoint:
    """Like `rtsync.FileCheckpoint` (`load()`, `save(state)`), stored at `rtsync:checkpoint:<key>`.

    Every save replaces the whole JSON value in one command, so a reader sees
    the old or the new state, never a mix. With `lease=` (the `RedisLease`
    the client runs under) a save is fenced: a Lua script refuses it unless
    its token is at least the newest that wrote this checkpoint and the newest
    the lease handed out, so a replica that was paused or cut off cannot
    commit over the one that took over, even before that one's first save.
    A refused save is logged and `save()` returns False; it raises
    `rtsync.ConnectionLost` when Redis cannot be reached.
    """

    def __init__(self, url: str, key: str, *, lease: Optional[RedisLease] = None, timeout: float = 2.0) -> None:
        if not isinstance(key, str) or not key:
            raise ConfigurationError("key must be a non-empty string naming this checkpoint")
        self.url = url
        self.key = PREFIX + key
        self.fence_key = self.key + ":fence"
        self.lease = lease
        self._redis = connect(url, timeout=timeout)
        self._save = self._redis.register_script(SAVE_FENCED)

    def __repr__(self) -> str:
        fenced = f", lease={self.lease.name!r}" if self.lease is not None else ""
        return f"RedisCheckpoint({shown(self.url)!r}, {self.key[len(PREFIX):]!r}{fenced})"

    @property
    def path(self) -> str:
        """Where it lives (error messages name checkpoints by their `path`)."""
        return f"{shown(self.url)} key {self.key}"

    def load(self) -> Optional[Dict[str, Any]]:
        """The saved state, or None if nothing was saved yet."""
        try:
            text = self._redis.get(self.key)
        except Exception as exc:
            raise unreachable(self.url, exc) from None
        if text is None:
            return None
        return decode(text, str(self.path), "delete the key")

    def save(self, state: Dict[str, Any]) -> bool:
        """Write `state`; True if written, False if the fence refused it (this replica lost its lease)."""
        text = json.dumps(state, separators=(",", ":"))
        lease = self.lease
        try:
            if lease is None:
                self._redis.set(self.key, text)
                return True
            token = lease.token
            if token is None or not lease.valid():
                log.warning("checkpoint %s not saved: lease %s is not held", self.key, lease.name)
                return False
            written = self._save(keys=[self.key, self.fence_key, lease.counter_key], args=[token, text])
        except Exception as exc:
            raise unreachable(self.url, exc) from None
        if written != 1:
            log.warning("checkpoint %s not saved: token %d is older than the newest (another replica "
                        "took over)", self.key, token)
            return False
        return True

    def close(self) -> None:
        self._redis.close()
