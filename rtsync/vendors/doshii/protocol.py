"""Doshii's App WebSocket v3, sans-I/O: heartbeat pings and pongs, `emit` events, and their documented variants.

From protocols/doshii.md: `{"doshii":{"ping":<unix ms>,"version":<app version>}}`
goes out on open ("to complete the handshake") and every 30 s; the server
answers `{"doshii":{"pong":<echo>,"version":...}}` (version may be absent). A
server ping is answered with a pong echoing its value. Events arrive as
`{"emit":[name, payload]}`; the docs' `{"event"|"type": name, "data": ...}`
shapes are accepted too, and legacy Primus heartbeat strings are ignored.

Decoding is contained per frame: a frame that is not JSON, of an unknown
shape, or with ill-typed fields (a `doshii` body that is not an object, an
event name that is not a string) is one `Report` with the frame cut short
and changes nothing; no exception but an `RtsyncError` leaves `received`.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Dict, List, Optional

from ...errors import ProtocolError, RtsyncError
from ...events import Event
from ...policy import close_error
from ...sansio import (
    Connected,
    Handshake,
    Liveness,
    Output,
    Report,
    Send,
    WebSocketProtocol,
    contained,
    json_object,
    quoted,
)

__all__ = ["DoshiiProtocol"]

PROVIDER = "doshii"


class DoshiiProtocol(WebSocketProtocol):
    """The heartbeat and event decoding for one Doshii app connection at a time.

    `wall_ms()` gives the ping's timestamp (wall-clock data for the frame);
    timers use the monotonic `now` the engine passes in.
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
        # The app heartbeat goes out on open and every `heartbeat_interval` s whatever arrives; only a
        # pong answers it, and `pong_timeout` s from the oldest unanswered ping is stale.
        self.liveness = Liveness("Doshii", interval=heartbeat_interval, timeout=pong_timeout, probe=self._ping,
                                 heartbeat=True, stale="no pong from {vendor} for {seconds:.0f} s; "
                                                       "the link is stale, reconnecting")
        self.server_version: Optional[str] = None
        self._ponged = False

    def handshake(self) -> Handshake:
        return Handshake(self.url)

    def _ping(self) -> Send:
        return Send(json.dumps({"doshii": {"ping": self.wall_ms(), "version": self.app_version}},
                               separators=(",", ":")))

    def opened(self, now: float) -> List[Output]:
        self._ponged = False
        return self.liveness.opened(now)  # the first heartbeat "completes the handshake"

    def received(self, text: str, now: float) -> List[Output]:
        return contained(self._received, text, now)

    def _received(self, text: str, now: float) -> List[Output]:
        if text.startswith("primus::"):
            return []  # pre-v3 heartbeat strings; nothing to do on v3
        frame = json_object(text)
        if isinstance(frame, Report):
            return [frame]
        body = frame.get("doshii")
        if isinstance(body, dict):
            return self._heartbeat(body, now)
        emit = frame.get("emit")
        if isinstance(emit, list) and emit and isinstance(emit[0], str):
            return [self._event(emit[0], emit[1] if len(emit) > 1 else None, text)]
        for key in ("event", "type"):
            name = frame.get(key)
            if isinstance(name, str) and name != "message" and "data" in frame:
                return [self._event(name, frame["data"], text)]
        if "doshii" in frame:
            return [Report(ProtocolError(
                f"skipped a heartbeat whose doshii body is a {type(body).__name__}, not an object: {quoted(text)}"))]
        return [Report(ProtocolError(f"skipped a frame of an unknown shape: {quoted(text)}"))]

    def _heartbeat(self, body: Dict[str, Any], now: float) -> List[Output]:
        if "pong" in body:
            self.liveness.answered(now)
            if isinstance(body.get("version"), str):
                self.server_version = body["version"]
            if not self._ponged:
                self._ponged = True
                return [Connected(detail={"server_version": self.server_version})]
            return []
        if "ping" in body:  # a two-way heartbeat from the server: echo its value (a number or a string)
            ping = body["ping"]
            if isinstance(ping, bool) or not isinstance(ping, (int, float, str)) \
                    or isinstance(ping, float) and not math.isfinite(ping):
                return [Report(ProtocolError(
                    f"ignored a server ping whose value is "
                    f"{repr(ping) if isinstance(ping, float) else 'a ' + type(ping).__name__}, not a timestamp"))]
            return [Send(json.dumps({"doshii": {"pong": ping, "version": self.app_version}},
                                    separators=(",", ":")))]
        return []

    @staticmethod
    def _event(name: str, payload: Any, raw: str) -> Event:
        ident = payload.get("id") if isinstance(payload, dict) else None
        return Event.make(name, provider=PROVIDER, data=payload, raw=raw,
                          id=ident if isinstance(ident, (int, str)) else None)

    def closed(self, code: Optional[int], reason: str) -> RtsyncError:
        return close_error("doshii", code, reason)

    def heard(self, now: float) -> None:
        # A ping, a pong, or the engine saying it paused reading for slow callbacks: the pong may
        # be sitting unread, so the wait for it starts again rather than ending in a false verdict.
        self.liveness.heard(now)

    def lost(self) -> List[Output]:
        self.liveness.lost()
        return []

    def deadline(self) -> Optional[float]:
        return self.liveness.deadline()

    def tick(self, now: float) -> List[Output]:
        return self.liveness.tick(now)
