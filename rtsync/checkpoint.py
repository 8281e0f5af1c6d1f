"""Persisting a client's resume cursor between runs, written atomically so a crash never leaves half a file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Protocol, Union

from .errors import ConfigurationError

__all__ = ["Checkpoint", "FileCheckpoint"]


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
