"""Persisting a client's resume cursor between runs, written atomically so a crash never leaves half a file."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Protocol, Union

from .errors import ConfigurationError

__all__ = ["Checkpoint", "CheckpointWriter", "FileCheckpoint"]


class Checkpoint(Protocol):
    """What a resumable client needs from a checkpoint (FileCheckpoint, rtsync.RedisCheckpoint)."""

    @property
    def path(self) -> Any:
        """Where it lives, for error messages."""

    def load(self) -> Optional[Dict[str, Any]]: ...

    def save(self, state: Dict[str, Any]) -> Any: ...


def decode(text: Union[str, bytes], where: str, reset: str) -> Dict[str, Any]:
    """A saved checkpoint's JSON object; `reset` says how to start over (e.g. "delete it")."""
    try:
        data = json.loads(text)
    except ValueError:
        raise ConfigurationError(f"checkpoint {where} is not valid JSON; {reset} to start from now") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"checkpoint {where} does not hold a JSON object; {reset} to start from now")
    return data


class FileCheckpoint:
    """A JSON file holding where the next run should resume (e.g. Dashly's `(time, tag)` cursor).

    `save()` writes a temporary file in the same directory, fsyncs it and
    renames it over the old one, so readers see either the old or the new
    state, never a torn write. A cron job that runs every minute with the same
    path receives every message exactly once across runs.
    """

    def __init__(self, path: Union[str, "os.PathLike[str]"]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"FileCheckpoint({str(self.path)!r})"

    def load(self) -> Optional[Dict[str, Any]]:
        """The saved state, or None if nothing was saved yet."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigurationError(f"cannot read checkpoint {self.path}: {exc.strerror}") from None
        return decode(text, str(self.path), "delete it")

    def save(self, state: Dict[str, Any]) -> None:
        directory = self.path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
        except OSError as exc:
            raise ConfigurationError(f"cannot write checkpoint {self.path}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(state, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


class _Saves(Protocol):
    def save(self, state: Dict[str, Any]) -> Any: ...


class CheckpointWriter:
    """Saves what a client's callbacks have finished with: at most every `interval` seconds while
    events are delivered, and whenever `save()` is called (on stop, before a connect).

    `lock` guards `dirty` and whatever `snapshot()` reads; the client notes finished events under
    it (setting `dirty`), then calls `due()` on the callback thread.
    """

    def __init__(self, checkpoint: Optional[_Saves], interval: float,
                 snapshot: Callable[[], Dict[str, Any]]) -> None:
        self.checkpoint = checkpoint
        self.interval = interval
        self.lock = threading.Lock()
        self.dirty = False
        self._snapshot = snapshot
        self._saved_at = 0.0

    def due(self) -> None:
        """A finished event was noted: save if `interval` has passed since the last save."""
        now = time.monotonic()
        if now - self._saved_at >= self.interval:
            self._saved_at = now
            self.save()

    def save(self) -> None:
        """Write the snapshot if anything changed since the last write (no-op without a checkpoint)."""
        if self.checkpoint is None:
            return
        with self.lock:
            if not self.dirty:
                return
            self.dirty = False
            data = self._snapshot()
        self.checkpoint.save(data)
