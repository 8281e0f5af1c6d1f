"""The public surface is pinned: adding or removing a name is a deliberate change."""

from __future__ import annotations

import rtsync

EXPECTED = [
    "AuthenticationError", "Backoff", "CallError", "CallTimeout", "Client", "ConfigurationError",
    "ConnectionLost", "DashlyClient", "DialpadClient", "DoshiiClient", "Event", "FileCheckpoint",
    "Fleet", "FrameTooLarge", "LeaseLost", "ProtocolError", "QuickMeetClient", "RateLimited", "ReceiveTimeout",
    "RedisCheckpoint", "RedisLease", "RequestRejected", "RetryBudget",
    "RtsyncError", "StaleConnection", "State", "Stats", "SubscriptionError", "TLSVerificationError", "VoxsigClient",
]


def test_all_is_sorted_and_pinned() -> None:
    assert rtsync.__all__ == sorted(rtsync.__all__)
    assert rtsync.__all__ == EXPECTED


def test_every_exported_name_resolves() -> None:
    for name in rtsync.__all__:
        assert getattr(rtsync, name) is not None, name


def test_exception_tree() -> None:
    for name in rtsync.__all__:
        obj = getattr(rtsync, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, rtsync.RtsyncError), name
    assert issubclass(rtsync.ConfigurationError, ValueError)
    assert issubclass(rtsync.StaleConnection, rtsync.ConnectionLost)


def test_ships_py_typed() -> None:
    from pathlib import Path

    assert (Path(rtsync.__file__).parent / "py.typed").exists()
