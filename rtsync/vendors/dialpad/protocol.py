"""Dialpad's event WebSocket, sans-I/O: token lifetimes, signed or plain frames, event naming and overlap dedupe.

From protocols/dialpad.md: the URL carries a one-hour token; the client
refreshes it over REST and replaces the connection make-before-break
`refresh_margin` seconds before expiry (`Rotate`), so events sent while both
links are open arrive twice and are dropped by `(type, id, state,
event_timestamp)`. Frames are plain event JSON, or HS256 JWS strings whose
claims are the event when the websocket has a secret (then unsigned or badly
signed frames are rejected and reported). Dialpad replays nothing.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import re
from typing import Any, Deque, Dict, List, Optional, Set, Tuple

import jwt

from ... import hs256
from ...errors import AuthenticationError, ConnectionLost, ProtocolError, RtsyncError
from ...events import Event
from ...sansio import (
    Connected,
    Handshake,
    Liveness,
    Output,
    Report,
    Rotate,
    WebSocketProtocol,
)

__all__ = ["DialpadProtocol", "dedupe_key", "event_name", "token_lifetime"]

PROVIDER = "dialpad"
DEFAULT_LIFETIME = 3600.0
log = logging.getLogger("rtsync.dialpad")
_JWS = re.compile(r"^[\w-]+\.[\w-]+\.[\w-]*$")  # an empty signature is alg "none": rejected below


def token_lifetime(url: str, now: float) -> float:
    """Seconds the token in a websocket URL's last path segment has left at wall-clock `now`.

    The JWT is Dialpad's ES256 token, read WITHOUT verification: we only need to know when to
    refresh. `exp - now` when the local clock agrees with the token's `iat`; the server's own
    `exp - iat` when it does not (a skewed clock must not make a fresh token look expired and
    rotate in a loop); an hour when the URL carries no readable token.
    """
    token = url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return DEFAULT_LIFETIME
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, (int, float)):
        return DEFAULT_LIFETIME
    left = exp - now
    if isinstance(iat, (int, float)) and exp > iat and not 0 < left <= exp - iat:
        return float(exp - iat)
    return float(left)


def event_name(data: Dict[str, Any]) -> Tuple[str, Any]:
    """(name, id) from the payload's shape: no type field is documented, so the fields decide.

    `call.<state>` (call_id + state), `sms`, `agent_status`, `contact`, else `dialpad.event`.
    """
    if "call_id" in data and isinstance(data.get("state"), str):
        return f"call.{data['state']}", data["call_id"]
    if "message_status" in data or ("from_number" in data and ("text" in data or "to_number" in data)):
        return "sms", data.get("id")
    if "on_duty_status" in data or "call_center_ids" in data:
        return "agent_status", (data.get("target") or {}).get("id")
    if "contact_type" in data or ("phones" in data and "emails" in data):
        return "contact", data.get("id")
    return "dialpad.event", data.get("id")


def dedupe_key(name: str, ident: Any, data: Dict[str, Any]) -> Tuple[Any, ...]:
    """What makes two deliveries the same event: `(type, id, state, event_timestamp)` where the
    payload has an id and a timestamp; otherwise only a byte-identical payload (its canonical
    JSON), so that distinct id-less events (contact, changelog, unknown shapes) are never merged."""
    ts = data.get("event_timestamp")
    if ident is not None and ts is not None:
        return (name, ident, ts, data.get("message_status"), data.get("on_duty_status"),
                data.get("availability_status"))
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return (name, "json", hashlib.sha1(canonical.encode("utf-8")).hexdigest())


class DialpadProtocol(WebSocketProtocol):
    """One connection to a `websocket_url` at a time; the client feeds it each fresh URL with `use_url`."""

    #: repeats remembered across a make-before-break overlap
    dedupe_size = 4096

    def __init__(self, secret: Optional[str] = None, *, refresh_margin: float = 300.0,
                 retry_refresh: float = 10.0, keepalive: float = 30.0, pong_timeout: float = 15.0) -> None:
        self.secret: Optional[bytes] = None
        if secret is not None:
            self.use_secret(secret)
        self.refresh_margin = refresh_margin
        self.retry_refresh = retry_refresh
        # Dialpad has no app heartbeat and sends nothing on a quiet line: our pings are the only
        # way to notice a dead link before the hourly refresh.
        self.liveness = Liveness("Dialpad", keepalive, pong_timeout)
        self.url: Optional[str] = None
        self.expires_at: Optional[float] = None  # monotonic
        self._rotate_at: Optional[float] = None
        self._rotating = False
        self._links = 0
        self.refusals = 0  # fresh URLs refused in a row (see refused())
        self._seen: Set[Tuple[Any, ...]] = set()
        self._order: Deque[Tuple[Any, ...]] = collections.deque()

    def use_secret(self, secret: str) -> None:
        """Verify frames with this HS256 secret from now on (Dialpad echoes it; a PATCH may change it)."""
        key = secret.encode("utf-8")
        if key != self.secret and len(key) < 32:
            log.warning("the Dialpad websocket secret is %d bytes; RFC 7518 asks for at least 32 for HS256, "
                        "so set a longer one with PATCH /api/v2/websockets/{id}", len(key))
        self.secret = key

    def use_url(self, url: str, lifetime: float, now: float) -> None:
        """A fresh websocket_url valid for `lifetime` more seconds."""
        self.url = url
        self.expires_at = now + lifetime
        self._rotate_at = now + max(lifetime - self.refresh_margin, lifetime / 2)

    @property
    def rotating(self) -> bool:
        """True while a planned replacement of the link is under way."""
        return self._rotating

    def time_left(self, now: float) -> float:
        return -1.0 if self.expires_at is None else self.expires_at - now

    def handshake(self) -> Handshake:
        assert self.url is not None, "use_url() first"
        return Handshake(self.url, status_hints={403: "the websocket token expired or is invalid"})

    def forget_url(self) -> None:
        """The server refused the URL: fetch a fresh one before the next connect."""
        self.url = self.expires_at = self._rotate_at = None

    def opened(self, now: float) -> List[Output]:
        self.liveness.heard(now)
        self._links += 1
        if self._rotating:  # a planned replacement: nothing was lost, nothing to announce
            self._rotating = False
            return []
        # Dialpad replays nothing: after an unplanned reconnect events may have been missed.
        return [Connected(detail={"gap_possible": self._links > 1})]

    def heard(self, now: float) -> None:
        self.liveness.heard(now)
        self.refusals = 0  # a frame proves the URL works (an upgrade alone does not: see closed())

    def received(self, text: str, now: float) -> List[Output]:
        self.heard(now)
        data, problem = self._decode(text)
        if problem is not None:
            return [Report(problem)]
        assert data is not None
        name, ident = event_name(data)
        key = dedupe_key(name, ident, data)
        if key in self._seen:
            return []  # the same event on both links during a refresh
        self._seen.add(key)
        self._order.append(key)
        if len(self._order) > self.dedupe_size:
            self._seen.discard(self._order.popleft())
        return [Event.make(name, provider=PROVIDER, data=data, id=ident, raw=text)]

    def _decode(self, text: str) -> Tuple[Optional[Dict[str, Any]], Optional[RtsyncError]]:
        stripped = text.strip()
        if stripped.startswith("{"):
            if self.secret is not None:
                return None, ProtocolError(
                    "rejected an unsigned frame: a secret is configured, so every event must be an HS256 JWT")
            try:
                data = json.loads(stripped)
            except ValueError:
                return None, ProtocolError(f"skipped a frame that is not JSON: {text[:60]!r}")
            return (data, None) if isinstance(data, dict) else (None, ProtocolError("skipped a non-object frame"))
        if _JWS.match(stripped):
            if self.secret is None:
                return None, ProtocolError(
                    "received a signed (JWT) event but no secret is configured: pass secret= to verify it")
            return self._verified(stripped)
        return None, ProtocolError(f"skipped a frame that is neither JSON nor a JWT: {text[:60]!r}")

    def _verified(self, token: str) -> Tuple[Optional[Dict[str, Any]], Optional[RtsyncError]]:
        assert self.secret is not None
        try:
            return hs256.verify(token, self.secret), None
        except hs256.BadToken as exc:
            return None, ProtocolError(f"rejected a signed event: {exc}")

    def refused(self, how: str) -> RtsyncError:
        """The event socket refused its URL (expired or revoked token). A fresh URL fixes the
        first; three fresh ones refused in a row mean it will not."""
        self.forget_url()
        self.refusals += 1
        if self.refusals >= 3:
            return AuthenticationError(
                "Dialpad refused three fresh websocket URLs in a row although the API key works for REST; "
                "check the key's access to this websocket or subscription. rtsync will not retry.")
        return ConnectionLost(f"the websocket URL was refused ({how}); fetching a fresh one")

    def closed(self, code: Optional[int], reason: str) -> RtsyncError:
        if code == 1008:  # policy violation right after the upgrade: the token was not accepted
            return self.refused(f"closed with 1008{': ' + reason if reason else ''}")
        return ConnectionLost(f"Dialpad closed the connection (code {code}); fetching a fresh URL")

    def lost(self) -> List[Output]:
        self._rotating = False
        # Any close means "refresh + reconnect" (the issue, reference section 8): never reuse the URL.
        self.forget_url()
        return []

    def deadline(self) -> Optional[float]:
        due = self.liveness.deadline()
        return due if self._rotate_at is None else min(due, self._rotate_at)

    def tick(self, now: float) -> List[Output]:
        out = self.liveness.tick(now)
        if self._rotate_at is not None and now >= self._rotate_at:
            # If the new link cannot be opened, the runtime keeps the old one; ask again a bit later.
            self._rotate_at = now + self.retry_refresh
            self._rotating = True
            out.append(Rotate("websocket token refresh"))
        return out
