"""Hot standby for the engine: connect only while holding the lease, and stand down cleanly when it is lost."""

from __future__ import annotations

import logging
import threading
from typing import Callable

from . import events as ev
from .dispatch import Handlers
from .events import Event
from .lease import Lease, LeaseGate, LeaseLost
from .reader import Reader, Stopping
from .state import State
from .wire.http import HttpClient

__all__ = ["Standby"]


class Standby:
    """The engine's part that waits for, watches, and gives up a `Lease` (composition, one per leased engine)."""

    def __init__(
        self,
        lease: Lease,
        handlers: Handlers,
        reader: Reader,
        *,
        stopping: threading.Event,
        gone: threading.Event,
        http: HttpClient,
        set_state: Callable[[State], None],
        log: logging.Logger,
    ) -> None:
        self.lease = lease
        #: the callbacks as the dispatcher sees them: run only while the lease is provably held
        self.gate = LeaseGate(handlers, lease)
        self._reader = reader
        self._stopping = stopping
        self.gone = gone  # shared with the reader, which checks it between reads
        self._http = http  # the engine's; the vendor's (`interrupt`) are read when needed, like its hooks
        self._set_state = set_state
        self._log = log
        self._resume_due = False

    def hold(self) -> None:
        """Stand by until this replica holds the lease, then let the vendor reload its resume point."""
        lease = self.lease
        if not lease.valid():
            if self.gone.is_set() and not self.stand_down():
                raise Stopping()
            self._log.info("standing by: waiting for the lease")
            if not lease.acquire(self._stopping, self.lost):
                raise Stopping()
            self.gone.clear()
            for http in (self._http, *self._reader.vendor.interrupt):
                http.reset()
            self._log.info("took the lease (fencing token %s)", lease.token)
            self._resume_due = True
        resume = self._reader.vendor.resume
        if self._resume_due and resume is not None:
            resume()  # may raise (Redis gone again): retried with the usual backoff
        self._resume_due = False

    def lost(self, reason: str) -> None:
        """From the lease's thread: the holding can no longer be proven, so cut the link now."""
        reader = self._reader
        reader.lease_reason = reason
        self.gone.set()
        for http in (self._http, *reader.vendor.interrupt):
            http.cancel()
        link, connecting = reader.link, reader.connecting
        if link is not None:
            link.abort()
        if connecting is not None:
            connecting.abort()

    def stand_down(self) -> bool:
        """After a lost lease: report it once everything queued before was dropped; False if stopped."""
        reader = self._reader
        error = LeaseLost(f"lease lost ({reader.lease_reason}): stopped delivering; events not yet delivered "
                          "are left to the next holder, which resumes from the checkpoint; standing by")
        self._log.warning("%s", error)
        self._set_state(State.RECONNECTING)
        reader.counts["errors"] += 1
        marker = Event.make(ev.ERROR, provider=reader.vendor.name,
                            data={"error": str(error), "exception": error, "fatal": False})
        self.gate.mark(marker)
        reader.deliver([marker])
        reader.emit(ev.DISCONNECTED, reason=str(error), will_reconnect=True)
        try:
            reader.flush_backlog(wait=True)
        except Stopping:
            return False
        # Until the marker went through, a re-taken lease would let old queued events run.
        if not self.gate.wait_marked(self._stopping):
            return False
        self.gone.clear()
        return True
