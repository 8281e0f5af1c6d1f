"""A blocking call waiting for its reply: made by a user thread, finished by the link thread."""

from __future__ import annotations

import threading
from typing import Any, Optional

from .errors import RtsyncError

__all__ = ["Pending"]


class Pending:
    """A `request()` waiting for its `Reply`.

    The latch is a plain lock held from the start and released by `finish`: waiting on it is
    one C call, where a `threading.Event` builds a Condition and a fresh lock per wait.
    """

    __slots__ = ("_latch", "result", "error")

    def __init__(self) -> None:
        self._latch = threading.Lock()
        self._latch.acquire()
        self.result: Any = None
        self.error: Optional[RtsyncError] = None

    def finish(self, result: Any = None, error: Optional[RtsyncError] = None) -> None:
        self.result, self.error = result, error
        try:
            self._latch.release()
        except RuntimeError:  # finished already
            pass

    def wait(self, timeout: float) -> bool:
        """True once finished; False if `timeout` seconds passed first."""
        return self._latch.acquire(timeout=min(max(0.0, timeout), threading.TIMEOUT_MAX))
