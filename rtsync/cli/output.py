"""Where the command's events go: JSON lines on stdout, ended quietly and safely when the reader goes away."""

from __future__ import annotations

import errno
import json
import os
import threading
from typing import IO, Any, Callable, Dict, List, Optional

from ..checkpoint import FileCheckpoint
from ..errors import RtsyncError
from ..events import Event

__all__ = ["Output", "OutputClosed", "Status", "event_json"]


class OutputClosed(Exception):
    """The reader of our output went away (`| head -1`): stop quietly."""


def event_json(event: Event) -> str:
    """One event as one JSON line (the `raw` frame and exception objects left out)."""
    data = event.data
    if isinstance(data, dict) and "exception" in data:
        data = {k: v for k, v in data.items() if k != "exception"}
    return json.dumps(
        {
            "name": event.name,
            "channel": event.channel,
            "id": event.id,
            "provider": event.provider,
            "received_at": event.received_at.isoformat(),
            "data": data,
        },
        default=str,
        ensure_ascii=False,
    )


class Output:
    """Prints events as JSON lines and flushes each one (for pipes).

    The fatal error that ends a client is not printed here: the command
    reports it once on stderr and in its exit code. When the reader closes
    the pipe, printing stops, `closed` is set, the `on_close` callbacks run
    (they stop the client) and the stream's descriptor is pointed at
    /dev/null so the interpreter's last flush cannot fail noisily. With a
    checkpoint, `restore()` puts back the cursor of the last event that was
    really written, so the next run repeats what the reader never saw.
    """

    def __init__(self, stream: IO[str], checkpoint: Optional[FileCheckpoint] = None) -> None:
        self.stream = stream
        self.closed = threading.Event()
        self.checkpoint = checkpoint
        self._on_close: List[Callable[[], Any]] = []
        self._lock = threading.Lock()
        self._last: Optional[Event] = None
        self._fatal: Optional[Any] = None
        self._safe: Optional[Dict[str, Any]] = None
        self._safe_read = False

    def on_close(self, fn: Callable[[], Any]) -> None:
        self._on_close.append(fn)

    def __call__(self, event: Event) -> None:
        """The callback to register with `client.on(...)` (one or more patterns: each event prints once)."""
        with self._lock:
            if self.closed.is_set() or event is self._last or self._hidden(event):
                return
            self._last = event
            self._remember_cursor()
            try:
                self.stream.write(event_json(event) + "\n")
                self.stream.flush()
            except (BrokenPipeError, ValueError):  # ValueError: the stream was closed under us
                pass
            except OSError as exc:
                if exc.errno not in (errno.EPIPE, errno.EINVAL):
                    raise
            else:
                return
            self.closed.set()
            self._silence()
        for fn in self._on_close:
            fn()

    def restore(self) -> None:
        """After a closed pipe: put the checkpoint back to before the first event the reader missed."""
        if self.checkpoint is None or not self.closed.is_set() or not self._safe_read:
            return
        if self._safe is not None:
            self.checkpoint.save(self._safe)
            return
        try:
            os.unlink(self.checkpoint.path)
        except FileNotFoundError:
            pass

    def _hidden(self, event: Event) -> bool:
        data = event.data if isinstance(event.data, dict) else {}
        if event.name == "rtsync.error" and data.get("fatal"):
            self._fatal = data.get("error")
            return True
        # The lifecycle event that repeats the fatal error as its reason: reported on stderr.
        return (event.name == "rtsync.disconnected" and not data.get("will_reconnect")
                and self._fatal is not None and data.get("reason") == self._fatal)

    def _remember_cursor(self) -> None:
        # Read before writing event N: the client records an event as done only after its
        # callbacks returned, so the file holds the cursor of events before N, all printed.
        if self.checkpoint is None:
            return
        try:
            self._safe = self.checkpoint.load()
        except RtsyncError:
            return
        self._safe_read = True

    def _silence(self) -> None:
        try:
            fd = self.stream.fileno()
        except (OSError, ValueError, AttributeError):
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)


class Status:
    """A callback for `rtsync.*` events that prints one status line on stderr per connect and reconnect.

    The fatal error that gives up is not printed here: the command prints it once, as it exits.
    """

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._reason: Optional[str] = None

    def __call__(self, event: Event) -> None:
        data = event.data if isinstance(event.data, dict) else {}
        if event.name == "rtsync.connected":
            how = "reconnected" if data.get("reconnect") else "connected"
            line = how + (" and resumed" if data.get("resumed") else "")
        elif event.name == "rtsync.disconnected":
            self._reason = str(data.get("reason") or "") or None
            return
        elif event.name == "rtsync.reconnecting":
            delay = data.get("delay")
            line = (f"connection lost{f' ({self._reason})' if self._reason else ''}; reconnecting"
                    + (f" in {delay:.1f} s" if isinstance(delay, (int, float)) else ""))
        else:
            return
        try:
            print(f"rtsync: {' '.join(line.split())}", file=self.stream, flush=True)
        except (OSError, ValueError):  # stderr gone: nothing left to tell
            pass
