"""Doshii's App WebSocket v3, sans-I/O: heartbeat pings and pongs, `emit` events, and their documented variants.

From protocols/doshii.md: `{"doshii":{"ping":<unix ms>,"version":<app version>}}`
goes out on open ("to complete the handshake") and every 30 s; the server
answers `{"doshii":{"pong":<echo>,"version":...}}` (version may be absent). A
server ping is answered with a pong echoing its value. Events arrive as
`{"emit":[name, payload]}`; the docs' `{"event"|"type": name, "data": ...}`
shapes are accepted too, and legacy Primus heartbeat strings are ignored.
"""

from __future__ import annotations

import json
from typing import Any, Callable, List, Optional

from ...errors import ConnectionLost, ProtocolError, RtsyncError, StaleConnection
from ...events import Event
from ...sansio import (
    Connected,
    Fail,
    Handshake,
    Output,
    Report,
    Send,
    WebSocketProtocol,
    json_object,
)

__all__ = ["DoshiiProtocol"]

PROVIDER = "doshii"


class DoshiiProtocol(WebSocketProtocol):
    """The heartbeat and event decoding for one Doshii app connection at a time.

    `wall_ms()` gives the ping's timestamp (wall-clock data for the frame);
    timers use the monotonic `now` the runtime passes in.
    """

    binary_as_text = True  # the .NET SDK handles UTF-8 binary frames too; so do we

    def __init__(
        self,
        url: str,
        app_version: str,
        wall_ms: Callable[[], int],
        *,
        heartbeat_interval: float = 30.0,
        pong_timeout: float = 60.0,
    ) -> None:
        self.url = url
        self.app_version = app_version
        self.wall_ms = wall_ms
        self.heartbeat_interval = heartbeat_interval
        self.pong_timeout = pong_timeout
        self.server_version: Optional[str] = None
        self._next_ping = 0.0
        self._waiting_since: Optional[float] = None  # oldest ping not yet answered
        self._ponged = False

    def handshake(self) -> Handshake:
        return Handshake(self.url)

    def _ping(self, now: float) -> Send:
        self._next_ping = now + self.heartbeat_interval
        if self._waiting_since is None:
            self._waiting_since = now
        return Send(json.dumps({"doshii": {"ping": self.wall_ms(), "version": self.app_version}},
                               separators=(",", ":")))

    def opened(self, now: float) -> List[Output]:
        self._waiting_since = None
        self._ponged = False
        return [self._ping(now)]

    def received(self, text: str, now: float) -> List[Output]:
        if text.startswith("primus::"):
            return []  # pre-v3 heartbeat strings; nothing to do on v3
        frame = json_object(text)
        if isinstance(frame, Report):
            return [frame]
        if isinstance(frame.get("doshii"), dict):
            return self._heartbeat(frame["doshii"], now)
        emit = frame.get("emit")
        if isinstance(emit, list) and emit and isinstance(emit[0], str):
            return [self._event(emit[0], emit[1] if len(emit) > 1 else None, text)]
        for key in ("event", "type"):
            name = frame.get(key)
            if isinstance(name, str) and name != "message" and "data" in frame:
                return [self._event(name, frame["data"], text)]
        return [Report(ProtocolError(f"skipped a frame of an unknown shape: {text[:80]!r}"))]

    def _heartbeat(self, body: dict, now: float) -> List[Output]:
        if "pong" in body:
            self._waiting_since = None
            if isinstance(body.get("version"), str):
                self.server_version = body["version"]
            if not self._ponged:
                self._ponged = True
                return [Connected(detail={"server_version": self.server_version})]
            return []
        if "ping" in body:  # a two-way heartbeat from the server: echo its value
            return [Send(json.dumps({"doshii": {"pong": body["ping"], "version": self.app_version}},
                                    separators=(",", ":")))]
        return []

    @staticmethod
    def _event(name: str, payload: Any, raw: str) -> Event:
        ident = payload.get("id") if isinstance(payload, dict) else None
        return Event.make(name, provider=PROVIDER, data=payload, raw=raw,
                          id=ident if isinstance(ident, (int, str)) else None)

    def closed(self, code: Optional[int], reason: str) -> RtsyncError:
        return ConnectionLost(f"Doshii closed the connection (code {code}{': ' + reason if reason else ''})")

    def lost(self) -> List[Output]:
        self._waiting_since = None
        return []

    def deadline(self) -> Optional[float]:
        if self._waiting_since is not None:
            return min(self._next_ping, self._waiting_since + self.pong_timeout)
        return self._next_ping

    def tick(self, now: float) -> List[Output]:
        if self._waiting_since is not None and now - self._waiting_since >= self.pong_timeout:
            return [Fail(StaleConnection(
                f"no pong from Doshii for {now - self._waiting_since:.0f} s; the link is stale, reconnecting"))]
        if now >= self._next_ping:
            return [self._ping(now)]
        return []
