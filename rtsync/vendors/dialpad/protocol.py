"""Dialpad's event WebSocket, sans-I/O: token lifetimes, signed or plain frames, event naming and overlap dedupe.

From protocols/dialpad.md: the URL carries a one-hour token; the client
refreshes it over REST and replaces the connection make-before-break
`refresh_margin` seconds before expiry (`Rotate`), so events sent while both
links are open arrive twice and are dropped by `(type, id, state,
event_timestamp)`. Frames are plain event JSON, or HS256 JWS strings whose
claims are the event when the websocket has a secret (then unsigned or badly
signed frames are rejected and reported). Dialpad replays nothing: every
unplanned reconnect is an `rtsync.gap` (`missing` None: how many is unknown).

Decoding is contained per frame: a frame that cannot be decoded, or whose
identifying fields (`call_id`, `id`, `event_timestamp`, `state`, the
statuses, `target`) have the wrong type, is one `Report` with the frame cut
short, and leaves the dedupe memory untouched; no exception but an
`RtsyncError` leaves `received`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from typing import Any, Dict, List, Optional, Tuple

import jwt

from ... import hs256
from ...errors import AuthenticationError, ConnectionLost, ProtocolError, RtsyncError
from ...events import GAP, Event
from ...policy import close_error
from ...sansio import (
    BoundedSet,
    Connected,
    Handshake,
    Liveness,
    Output,
    Report,
    Rotate,
    WebSocketProtocol,
    contained,
    loads,
)

__all__ = ["DialpadProtocol", "dedupe_key", "event_name", "ill_typed", "token_lifetime"]

PROVIDER = "dialpad"
DEFAULT_LIFETIME = 3600.0
log = logging.getLogger("rtsync.dialpad")
_JWS = re.compile(r"^[\w-]+\.[\w-]+\.[\w-]*$")  # an empty signature is alg "none": rejected below
#: the `event` of a contact event (Dialpad writes them capitalised: "Created")
CONTACT_EVENTS = ("created", "updated", "deleted")
# Change-log actions are short codes (`updated_ivr`); anything else must not shape event names.
_ACTION = re.compile(r"^[A-Za-z0-9_]{1,64}$")


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
    except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
        return DEFAULT_LIFETIME
    exp, iat = claims.get("exp"), claims.get("iat")
    if not _finite(exp):
        return DEFAULT_LIFETIME
    assert isinstance(exp, (int, float))  # what _finite checked
    if not _finite(iat):
        iat = None
    left = exp - now
    if isinstance(iat, (int, float)) and exp > iat and not 0 < left <= exp - iat:
        return float(exp - iat)
    return float(left)


def _finite(value: Any) -> bool:
    """A number of seconds we can do arithmetic with (JSON allows 1e400, NaN and integers of any size)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value) and abs(value) < 1e15
    except OverflowError:  # an int too large for a float
        return False


def _quote(text: str) -> str:
    """A frame cut short for a report."""
    return repr(text[:60])[:120]


def event_name(data: Dict[str, Any]) -> Tuple[str, Any]:
    """(name, id) from the payload's shape: no type field is documented, so the fields decide.

    `call.<state>` (call_id + state), `sms`, `agent_status` (id: the agent's `target.id`),
    `contact.created|updated|deleted` (Dialpad's `{"event": "Created", "contact": {...}}`; id: the
    contact's), `changelog.<action>` (`{"action": "updated_ivr", "changed_by": ..., ...}`; an action
    that is not a short code gives `changelog`), else `dialpad.event`.
    """
    if "call_id" in data and isinstance(data.get("state"), str):
        return f"call.{data['state']}", data["call_id"]
    if "message_status" in data or ("from_number" in data and ("text" in data or "to_number" in data)):
        return "sms", data.get("id")
    if "on_duty_status" in data or "call_center_ids" in data:
        target = data.get("target")
        return "agent_status", target.get("id") if isinstance(target, dict) else None
    contact, kind = data.get("contact"), data.get("event")
    if isinstance(contact, dict) and isinstance(kind, str) and kind.lower() in CONTACT_EVENTS:
        return f"contact.{kind.lower()}", contact.get("id")
    action = data.get("action")
    if isinstance(action, str) and ("changed_by" in data or "note" in data or "additional_data" in data):
        return ("changelog." + action.lower() if _ACTION.match(action) else "changelog"), None
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


def _is_id(value: Any) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def _is_stamp(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, (str, int)) or isinstance(value, float) and math.isfinite(value)


def ill_typed(name: str, ident: Any, data: Dict[str, Any]) -> Optional[str]:
    """What is wrong with the fields that name an event and tell its repeats apart (None if
    nothing): the id (`call_id` of a call, `target.id` of an agent status, `contact.id` of a
    contact event, none for a change log, else `id`) a string or an integer, `event_timestamp` a
    finite number or a string, the statuses strings, an agent status's `target` an object. Other
    fields are the caller's business and pass as they are."""
    if name == "agent_status":
        target = data.get("target")
        if target is not None and not isinstance(target, dict):
            return f"target is a {type(target).__name__}, not an object"
    if name.startswith("contact."):
        contact = data["contact"]
        if contact.get("id") is not None and not _is_id(contact["id"]):
            return f"contact.id is a {type(contact['id']).__name__}, not a string or an integer"
    keys = {"call": ("call_id",), "agent_status": (), "contact": (), "changelog": ()}.get(
        name.split(".", 1)[0], ("id",))
    for key in keys:
        if data.get(key) is not None and not _is_id(data[key]):
            return f"{key} is a {type(data[key]).__name__}, not a string or an integer"
    if ident is not None and not _is_id(ident):
        return f"target.id is a {type(ident).__name__}, not a string or an integer"
    ts = data.get("event_timestamp")
    if ts is not None and not _is_stamp(ts):
        return f"event_timestamp is {'not finite' if isinstance(ts, float) else 'a ' + type(ts).__name__}"
    for key in ("message_status", "on_duty_status", "availability_status"):
        if data.get(key) is not None and not isinstance(data[key], str):
            return f"{key} is a {type(data[key]).__name__}, not a string"
    return None


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
        self.liveness = Liveness("Dialpad", interval=keepalive, timeout=pong_timeout)
        self.url: Optional[str] = None
        #: what a gap names as its channel: "websocket:<id>" or "<kind>:<subscription id>" (the client sets it)
        self.channel: Optional[str] = None
        self.expires_at: Optional[float] = None  # monotonic
        self._rotate_at: Optional[float] = None
        self._rotating = False
        self._opened_before = False  # after an unplanned reconnect, events may have been missed
        self.refusals = 0  # fresh URLs refused in a row (see refused())
        self._seen: BoundedSet[Tuple[Any, ...]] = BoundedSet(self.dedupe_size)

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
        self.liveness.opened(now)
        opened_before, self._opened_before = self._opened_before, True
        if self._rotating:  # a planned replacement: nothing was lost, nothing to announce
            self._rotating = False
            return []
        out: List[Output] = [Connected(detail={"gap_possible": opened_before})]
        if opened_before:
            # Dialpad replays nothing: what it sent while we were away is lost, and how much is unknown.
            out.append(Event.make(GAP, provider=PROVIDER, channel=self.channel, data={
                "channel": self.channel, "missing": None,
                "reason": "reconnected after an unplanned disconnect; Dialpad replays nothing, so any events "
                          "it sent meanwhile are lost: re-query the REST API for calls and messages you need"}))
        return out

    def heard(self, now: float) -> None:
        self.liveness.heard(now)
        self.refusals = 0  # a frame proves the URL works (an upgrade alone does not: see closed())

    def received(self, text: str, now: float) -> List[Output]:
        self.heard(now)
        return contained(self._received, text, now, _quote)

    def _received(self, text: str, now: float) -> List[Output]:
        data, problem = self._decode(text)
        if problem is not None:
            return [Report(problem)]
        assert data is not None
        name, ident = event_name(data)
        wrong = ill_typed(name, ident, data)
        if wrong is not None:
            return [Report(ProtocolError(f"skipped an ill-typed {name} event ({wrong}): {_quote(text)}"))]
        if not self._seen.add(dedupe_key(name, ident, data)):
            return []  # the same event on both links during a refresh
        return [Event.make(name, provider=PROVIDER, data=data, id=ident, raw=text)]

    def _decode(self, text: str) -> Tuple[Optional[Dict[str, Any]], Optional[RtsyncError]]:
        stripped = text.strip()
        if stripped.startswith("{"):
            if self.secret is not None:
                return None, ProtocolError(
                    "rejected an unsigned frame: a secret is configured, so every event must be an HS256 JWT")
            try:
                data = loads(stripped)  # json, or orjson with the `fast` extra
            except RecursionError:  # not a ValueError
                return None, ProtocolError(f"skipped a frame nested too deeply to decode: {_quote(text)}")
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
        except RecursionError:  # its header or claims nest deeper than json.loads can follow
            return None, ProtocolError("rejected a signed event: malformed (JSON nested too deeply)")

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
        return close_error("dialpad", code, reason)  # a retry fetches a fresh URL

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
            # If the new link cannot be opened, the engine keeps the old one; ask again a bit later.
            self._rotate_at = now + self.retry_refresh
            self._rotating = True
            out.append(Rotate("websocket token refresh"))
        return out
