"""What a link is to the engine, and what it hands it: messages as `str`/`bytes`, and three typed notices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Protocol, Union

from ..errors import RtsyncError

__all__ = ["Closed", "Heard", "Incoming", "Link", "Skipped"]


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


class Link(Protocol):
    """One connection as the engine uses it: `WebSocketLink`, or `rtsync.testing.MockLink` in tests.

    `recv` runs on the link thread only; the rest may be called from any thread.
    """

    subprotocol: Optional[str]

    def connect(self) -> "Link": ...

    def recv(self, timeout: Optional[float]) -> List[Incoming]: ...

    def send_text(self, text: str) -> None: ...

    def ping(self, payload: bytes = b"") -> None: ...

    def begin_close(self, code: int = 1000, reason: str = "") -> None: ...

    def close(self, code: int = 1000) -> None: ...

    def abort(self) -> None: ...
