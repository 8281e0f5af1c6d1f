"""What a WebSocket link hands the engine: messages as `str`/`bytes`, and three typed notices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from ..errors import RtsyncError

__all__ = ["Closed", "Heard", "Incoming", "Skipped"]


@dataclass(frozen=True)
class Heard:
    """A ping or pong arrived (already answered): the peer is alive."""


@dataclass(frozen=True)
class Closed:
    """The server's close frame; the link has already sent the answering close frame."""

    code: Optional[int]
    reason: str = ""


@dataclass(frozen=True)
class Skipped:
    """A message the link dropped without failing (larger than `max_message_size`)."""

    error: RtsyncError


#: one item of `WebSocketLink.recv()`: a text message, a binary message, or a notice
Incoming = Union[str, bytes, Heard, Closed, Skipped]
