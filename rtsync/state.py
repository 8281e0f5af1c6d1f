"""A client's lifecycle state and its statistics snapshot."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

__all__ = ["State", "Stats"]


class State(str, enum.Enum):
    """Where a client is in its life; `client.state`."""

    STOPPED = "stopped"  #: not started, or stopped
    CONNECTING = "connecting"  #: started; the first connection is not ready yet
    CONNECTED = "connected"  #: ready: logged in and subscribed
    RECONNECTING = "reconnecting"  #: the link dropped; backing off or reconnecting
    FAILED = "failed"  #: a fatal error ended it (`client.error`)


@dataclass(frozen=True)
class Stats:
    """A frozen snapshot of one client's counters; `client.stats`."""

    connects: int = 0  #: connections that became ready
    reconnects: int = 0  #: of those, the ones after the first
    events: int = 0  #: vendor events queued for callbacks (lifecycle events not counted)
    gaps: int = 0  #: `rtsync.gap` events: losses the protocol could not repair
    errors: int = 0  #: `rtsync.error` events
    queue_depth: int = 0  #: events read and not yet handed to callbacks
    last_event_at: Optional[datetime] = None  #: when the newest vendor event was received
    connected_since: Optional[datetime] = None  #: when the current connection became ready
