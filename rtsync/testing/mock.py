"""`MockLink`: a client's connections replayed from recorded server frames, with no socket and no server.

Test your callbacks the way httpx's `MockTransport` tests request code:

    link = MockLink(['{"doshii":{"pong":1}}', '{"emit":["order_created",{"id":"7"}]}'])
    client = rtsync.DoshiiClient("client-id", link=link)
    client.on("order_created", handle)
    with client:
        assert link.replayed(timeout=5)
    assert link.sent[0][0].startswith('{"doshii":{"ping"')

Each connection the client makes takes the next session (a list of frames:
`str` text, `bytes` binary, or `rtsync.wire.Closed(code, reason)` for the
server's close). After its frames a session stays open and quiet, unless it
ends with a `Closed`; a connection beyond the last session is refused, so
the client backs off and retries as it would against a server that is down.
"""

from __future__ import annotations

import threading
from typing import List, Optional, Sequence, Union

from ..errors import ConnectionLost
from ..sansio import Handshake
from ..wire import Closed, Incoming

__all__ = ["MockLink"]

Frame = Union[str, bytes, Closed]


class MockLink:
    """Pass as `link=` to any WebSocket client; one session of frames per connection."""

    def __init__(self, *sessions: Sequence[Frame], subprotocol: Optional[str] = None) -> None:
        self.sessions = [list(s) for s in sessions]
        self.subprotocol = subprotocol
        self.handshakes: List[Handshake] = []  # what the client asked to open, per connection
        self.sent: List[List[str]] = []  # what the client sent, per connection
        self._lock = threading.Condition()
        self._left = sum(len(s) for s in self.sessions)

    def __call__(self, handshake: Handshake) -> "_Session":
        with self._lock:
            index = len(self.handshakes)
            self.handshakes.append(handshake)
            self.sent.append([])
        frames = self.sessions[index] if index < len(self.sessions) else None
        return _Session(self, frames, self.sent[index])

    def replayed(self, timeout: Optional[float] = None) -> bool:
        """Wait until the client has read every recorded frame; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: self._left == 0, timeout)

    def _took(self, n: int) -> None:
        with self._lock:
            self._left -= n
            self._lock.notify_all()


class _Session:
    def __init__(self, owner: MockLink, frames: Optional[List[Frame]], sent: List[str]) -> None:
        self._owner = owner
        self._frames = frames
        self._sent = sent
        self._closed = threading.Event()
        self.subprotocol = owner.subprotocol

    def connect(self) -> "_Session":
        if self._frames is None:
            raise ConnectionLost("MockLink: no recorded session left for this connection")
        return self

    def recv(self, timeout: Optional[float]) -> List[Incoming]:
        if self._closed.is_set():
            raise ConnectionLost("the connection is closed")
        assert self._frames is not None
        if not self._frames:
            self._closed.wait(timeout)  # quiet after its frames, as an idle server is
            return []
        frame = self._frames.pop(0)
        self._owner._took(1)  # noqa: SLF001
        return [frame]

    def send_text(self, text: str) -> None:
        if self._closed.is_set():
            raise ConnectionLost("the connection is closed")
        self._sent.append(text)

    def ping(self, payload: bytes = b"") -> None:
        if self._closed.is_set():
            raise ConnectionLost("the connection is closed")

    def begin_close(self, code: int = 1000, reason: str = "") -> None:
        pass

    def close(self, code: int = 1000) -> None:
        self._closed.set()

    def abort(self) -> None:
        self._closed.set()
