"""The exception tree every rtsync failure belongs to.

    RtsyncError                      anything rtsync raises on purpose
     ├── ConfigurationError          bad arguments; also a ValueError
     ├── AuthenticationError         credentials refused; never retried
     ├── RequestRejected             the server refused the request itself (400, close 1008, 404);
     │                               retrying the same request cannot help
     ├── RateLimited                 the server asked us to wait `retry_after` seconds
     ├── ConnectionLost              the link dropped or could not be opened; retried
     │    └── StaleConnection        no sign of life from the server in time
     ├── TLSVerificationError        the server's certificate could not be verified; not retried
     ├── ProtocolError               the server sent something we cannot accept
     │    └── FrameTooLarge          a frame beyond `max_message_size`
     ├── CallError                   a remote method call answered with an error
     ├── SubscriptionError           the server refused a subscription
     ├── CallTimeout                 a remote call got no answer in time
     └── ReceiveTimeout              `receive()` got no event in time

`retryable` on each class is what the reconnect policy reads: a retryable error
means "back off and connect again", anything else ends the client.
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = [
    "AuthenticationError",
    "CallError",
    "CallTimeout",
    "ConfigurationError",
    "ConnectionLost",
    "FrameTooLarge",
    "ProtocolError",
    "RateLimited",
    "ReceiveTimeout",
    "RequestRejected",
    "RtsyncError",
    "StaleConnection",
    "SubscriptionError",
    "TLSVerificationError",
]


class RtsyncError(Exception):
    """Base of every error rtsync raises on purpose.

    Messages say what was wrong and what to do; they never contain secrets.
    """

    retryable = False


class ConfigurationError(RtsyncError, ValueError):
    """An argument is invalid; fix the call, retrying will not help."""


class AuthenticationError(RtsyncError):
    """The server refused our credentials. The client stops instead of retrying."""


class RequestRejected(RtsyncError):
    """The server refused the request itself (e.g. HTTP 400, close 1008)."""

    def __init__(self, message: str, *, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


class RateLimited(RtsyncError):
    """The server asked us to slow down; the engine waits `retry_after` seconds."""

    retryable = True

    def __init__(self, message: str, *, retry_after: Optional[float] = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConnectionLost(RtsyncError):
    """The link dropped or could not be opened. Transient: the engine reconnects."""

    retryable = True


class StaleConnection(ConnectionLost):
    """The server went silent for longer than its own heartbeat allows."""


class TLSVerificationError(RtsyncError):
    """The server's TLS certificate failed verification. Not retried: fix the trust store
    (`verify="/path/to/ca.pem"`) rather than hammering a server we cannot trust."""


class ProtocolError(RtsyncError):
    """The server sent a frame we cannot accept (malformed, unsigned, unknown)."""

    retryable = True


class FrameTooLarge(ProtocolError):
    """A frame was larger than `max_message_size`; it was skipped, not buffered."""


class CallError(RtsyncError):
    """A remote method call returned an error; `error`, `reason` and `details` are the server's."""

    def __init__(
        self, message: str, *, error: Any = None, reason: Optional[str] = None, details: Any = None
    ) -> None:
        super().__init__(message)
        self.error = error
        self.reason = reason
        self.details = details


class SubscriptionError(RtsyncError):
    """The server refused a subscription."""


class CallTimeout(RtsyncError, TimeoutError):
    """A remote call got no answer within its timeout."""


class ReceiveTimeout(RtsyncError, TimeoutError):
    """`client.receive(timeout)` got no event within its timeout."""
