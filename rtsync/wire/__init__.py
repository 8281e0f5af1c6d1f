"""The wire: RFC 6455 links and HTTP, knowing no vendor."""

from .frames import Closed, Heard, Incoming, Skipped
from .framing import FrameReader, WebSocketProtocolError
from .link import Verify, WebSocketLink, ssl_context

__all__ = [
    "Closed",
    "FrameReader",
    "Heard",
    "Incoming",
    "Skipped",
    "Verify",
    "WebSocketLink",
    "WebSocketProtocolError",
    "ssl_context",
]
