"""The wire: RFC 6455 links and HTTP, knowing no vendor."""

from .frames import Closed, Heard, Incoming, Link, Skipped
from .framing import FrameReader, WebSocketProtocolError
from .link import Verify, WebSocketLink, ssl_context

__all__ = [
    "Closed",
    "FrameReader",
    "Heard",
    "Incoming",
    "Link",
    "Skipped",
    "Verify",
    "WebSocketLink",
    "WebSocketProtocolError",
    "ssl_context",
]
