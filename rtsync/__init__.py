"""rtsync: blocking, thread-backed clients for real-time APIs; you write callbacks, rtsync owns the sockets."""

from .errors import (
    AuthenticationError,
    CallError,
    CallTimeout,
    ConfigurationError,
    ConnectionLost,
    FrameTooLarge,
    ProtocolError,
    RateLimited,
    ReceiveTimeout,
    RequestRejected,
    RtsyncError,
    StaleConnection,
    SubscriptionError,
    TLSVerificationError,
)
from typing import TYPE_CHECKING, List

from .client import Client
from .lease import LeaseLost
from .events import Event
from .policy import Backoff, RetryBudget
from .state import State, Stats

if TYPE_CHECKING:  # type checkers see the real classes; at run time they load on first use
    from .checkpoint import FileCheckpoint
    from .ha import Fleet, RedisCheckpoint, RedisLease
    from .vendors.dashly.client import DashlyClient
    from .vendors.dialpad.client import DialpadClient
    from .vendors.doshii.client import DoshiiClient
    from .vendors.quickmeet.client import QuickMeetClient
    from .vendors.voxsig.client import VoxsigClient

__version__ = "0.1.0"

# Vendor clients load on first use, so `import rtsync` stays cheap.
_CLIENTS = {
    "DashlyClient": "rtsync.vendors.dashly.client",
    "DialpadClient": "rtsync.vendors.dialpad.client",
    "DoshiiClient": "rtsync.vendors.doshii.client",
    "FileCheckpoint": "rtsync.checkpoint",
    "Fleet": "rtsync.ha",
    "QuickMeetClient": "rtsync.vendors.quickmeet.client",
    "RedisCheckpoint": "rtsync.ha",
    "RedisLease": "rtsync.ha",
    "VoxsigClient": "rtsync.vendors.voxsig.client",
}


def __getattr__(name: str) -> object:
    module = _CLIENTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rtsync' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> List[str]:
    return sorted(__all__)

__all__ = [
    "AuthenticationError",
    "Backoff",
    "CallError",
    "CallTimeout",
    "Client",
    "ConfigurationError",
    "ConnectionLost",
    "DashlyClient",
    "DialpadClient",
    "DoshiiClient",
    "Event",
    "FileCheckpoint",
    "Fleet",
    "FrameTooLarge",
    "LeaseLost",
    "ProtocolError",
    "QuickMeetClient",
    "RateLimited",
    "ReceiveTimeout",
    "RedisCheckpoint",
    "RedisLease",
    "RequestRejected",
    "RetryBudget",
    "RtsyncError",
    "StaleConnection",
    "State",
    "Stats",
    "SubscriptionError",
    "TLSVerificationError",
    "VoxsigClient",
]
