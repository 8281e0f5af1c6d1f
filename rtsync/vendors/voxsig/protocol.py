"""Voxsig's ActionCable `RoomChannel` protocol, sans-I/O: frames in, events and commands out.

Rules from protocols/voxsig-actioncable.md that this module enforces:

- the identifier is one JSON string built once (`JSON.stringify` style) and
  reused byte for byte: a second spelling would be a second subscription and
  duplicate delivery;
- subscribe on every `welcome`; resend it (0.5, 1, 2, 4 s ...) until confirmed,
  like the official client's guarantor, but only for `confirm_timeout`
  seconds: Chatwoot never answers for an invalid token, so silence means
  "probably a bad pubsub_token or ids". The first silent timeout retries on a
  fresh connection (a lost confirm is possible), the second is final;
- any frame counts as life; `stale_after` seconds of silence (two 3 s pings)
  means the link is dead;
- `disconnect` with `reconnect: false` is final; `reject_subscription` too;
- presence: `update_presence` right after confirm, then every
  `presence_interval` seconds while subscribed;
- decoding is contained per frame: a frame that is not JSON, or whose
  `type`/`identifier`/`message.event` has the wrong type, is one `Report`
  (the frame cut short, our token masked) and changes nothing; no exception
  but an `RtsyncError` leaves `received`. A `message` may be any JSON value
  (ActionCable broadcasts whatever it is given): a non-object is delivered
  as a `message` event.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional

from ...errors import (
    AuthenticationError,
    ConnectionLost,
    ProtocolError,
    RequestRejected,
    RtsyncError,
)
from ...events import Event
from ...policy import close_error
from ...sansio import (
    Connected,
    Fail,
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

__all__ = ["SUBPROTOCOLS", "SubscriptionTimeout", "VoxsigProtocol", "build_identifier"]

PROVIDER = "voxsig"
CHANNEL = "RoomChannel"
SUBPROTOCOLS = ("actioncable-v1-json", "actioncable-unsupported")
_PRESENCE = json.dumps({"action": "update_presence"}, separators=(",", ":"))


class SubscriptionTimeout(ConnectionLost):
    """No confirm_subscription in time on one connection; retried once on a fresh one."""


def build_identifier(params: Mapping[str, Any]) -> str:
    """The identifier exactly as `JSON.stringify(params)` writes it: insertion order, no spaces."""
    return json.dumps(dict(params), separators=(",", ":"), ensure_ascii=False)


class VoxsigProtocol(WebSocketProtocol):
    """One RoomChannel subscription over one ActionCable connection at a time."""

    def __init__(
        self,
        url: str,
        origin: str,
        params: Mapping[str, Any],
        *,
        presence_interval: float,
        confirm_timeout: float = 10.0,
        stale_after: float = 6.0,
        welcome_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.origin = origin
        self.identifier = build_identifier({"channel": CHANNEL, **params})
        self.presence_interval = presence_interval
        self.confirm_timeout = confirm_timeout
        # The server pings every 3 s and we never probe: any frame is life, `stale_after` s of none is stale.
        self.liveness = Liveness("Voxsig", timeout=stale_after, probe=None,
                                 stale="no frame from {vendor} for {seconds:.1f} s (it pings every 3 s); reconnecting")
        self.welcome_timeout = welcome_timeout
        self._silent_timeouts = 0  # consecutive connections that never got a confirm
        # Frames echo the identifier, token included: events keep `raw` with it masked.
        self._escaped_identifier = json.dumps(self.identifier, ensure_ascii=False)[1:-1]
        token = params.get("pubsub_token")
        self._token = token if isinstance(token, str) and len(token) >= 4 else None
        self._subscribe = json.dumps({"command": "subscribe", "identifier": self.identifier},
                                     separators=(",", ":"), ensure_ascii=False)
        self._reset(0.0)

    def _reset(self, now: float) -> None:
        self.welcomed = False
        self.confirmed = False
        self._opened_at = now
        self.liveness.opened(now)
        self._resend_at: Optional[float] = None
        self._resend_gap = 0.5
        self._confirm_by: Optional[float] = None
        self._presence_at: Optional[float] = None

    # -- commands --------------------------------------------------------
    def message(self, data: Mapping[str, Any]) -> Send:
        """A `message` command: `data` travels as a JSON string, as ActionCable requires."""
        return Send(json.dumps({"command": "message", "identifier": self.identifier,
                                "data": json.dumps(dict(data), separators=(",", ":"))},
                               separators=(",", ":"), ensure_ascii=False))

    def update_presence(self, now: float) -> List[Output]:
        if not self.confirmed:
            raise ConnectionLost("not subscribed right now; presence is sent again after the reconnect")
        self._presence_at = now + self.presence_interval
        return [Send(json.dumps({"command": "message", "identifier": self.identifier, "data": _PRESENCE},
                                separators=(",", ":"), ensure_ascii=False))]

    # -- the link ------------------------------------------------------------
    def handshake(self) -> Handshake:
        return Handshake(self.url, subprotocols=SUBPROTOCOLS, origin=self.origin,
                         status_hints={404: "the server refused our Origin header or the URL path is wrong "
                                            "(ActionCable answers 404 to both)"})

    def accepted(self, subprotocol: Optional[str]) -> Optional[RtsyncError]:
        # The official client treats any protocol but the first as "unsupported" and does not
        # reconnect; no protocol at all is fine (a non-Rails server).
        if subprotocol is not None and subprotocol != SUBPROTOCOLS[0]:
            return RequestRejected(
                f"the server chose the WebSocket subprotocol {subprotocol!r}, not {SUBPROTOCOLS[0]!r}: "
                "it does not speak this version of ActionCable. rtsync will not retry.")
        return None

    def opened(self, now: float) -> List[Output]:
        self._reset(now)
        return []

    def heard(self, now: float) -> None:
        self.liveness.heard(now)

    def received(self, text: str, now: float) -> List[Output]:
        self.liveness.heard(now)
        return contained(lambda: self._received(text, now), text, lambda t: quoted(self._masked(t)))

    def _masked(self, text: str) -> str:
        """The frame with our identifier (and so our token) masked, as events keep it in `raw`."""
        text = text.replace(self._escaped_identifier, "***")
        return text.replace(self._token, "***") if self._token else text

    def _bad(self, what: str, text: str) -> Report:
        return Report(ProtocolError(f"skipped {what}: {quoted(self._masked(text))}"))

    def _received(self, text: str, now: float) -> List[Output]:
        frame = json_object(text)
        if isinstance(frame, Report):  # masked only now: masking every good frame twice cost a fifth
            masked = json_object(text, shown=self._masked(text))
            return [masked] if isinstance(masked, Report) else [frame]
        kind = frame.get("type")
        if kind is not None and not isinstance(kind, str):
            return [self._bad(f"a frame whose type is a {type(kind).__name__}, not a string", text)]
        if kind == "ping":
            return []
        identifier = frame.get("identifier")
        if identifier is not None and identifier != self.identifier and not _is_identifier(identifier):
            return [self._bad("a frame whose identifier is not a JSON string", text)]
        if kind is None and "message" in frame:
            if identifier != self.identifier:
                return []  # not ours (we only ever subscribe once, with one spelling)
            message = frame["message"]
            if isinstance(message, dict) and "event" in message and not isinstance(message["event"], str):
                return [self._bad(f"a message whose event is a {type(message['event']).__name__}, not a string",
                                  text)]
            return [self._event(message, self._masked(text))]
        if kind == "welcome":
            self.welcomed = True
            return self._send_subscribe(now, first=True)
        if kind == "confirm_subscription" and identifier == self.identifier:
            return self._confirmed(now)
        if kind == "reject_subscription" and identifier == self.identifier:
            return [Fail(AuthenticationError(
                "Voxsig rejected the subscription: the pubsub_token, account_id or user_id is not valid. "
                "rtsync will not retry."))]
        if kind == "disconnect":
            return [Fail(self._disconnect(frame))]
        return []

    def _event(self, message: Any, raw: str) -> Event:
        if isinstance(message, dict) and isinstance(message.get("event"), str):
            return Event.make(message["event"], provider=PROVIDER, channel=CHANNEL,
                              data=message.get("data"), raw=raw)
        return Event.make("message", provider=PROVIDER, channel=CHANNEL, data=message, raw=raw)

    def _disconnect(self, frame: Mapping[str, Any]) -> RtsyncError:
        reason = frame.get("reason", "")
        reason = reason[:80] if isinstance(reason, str) else "(not a string)"
        if frame.get("reconnect") is False:
            return AuthenticationError(
                f"Voxsig closed the connection with reason {reason!r} and asked us not to reconnect "
                "(reconnect: false); check the pubsub_token. rtsync will not retry.")
        return ConnectionLost(f"Voxsig asked us to reconnect (reason {reason!r})")

    def _send_subscribe(self, now: float, first: bool = False) -> List[Output]:
        if first:
            self._confirm_by = now + self.confirm_timeout
            self._resend_gap = 0.5
        else:
            self._resend_gap = min(self._resend_gap * 2, 4.0)
        self._resend_at = now + self._resend_gap
        return [Send(self._subscribe)]

    def _confirmed(self, now: float) -> List[Output]:
        if self.confirmed:
            return []
        self.confirmed = True
        self._silent_timeouts = 0
        self._resend_at = self._confirm_by = None
        # The presence broadcast Chatwoot makes inside `subscribed` races the stream and is
        # usually lost, so we ask for our own snapshot right away.
        return [Connected(), *self.update_presence(now)]

    def closed(self, code: Optional[int], reason: str) -> RtsyncError:
        return close_error("voxsig", code, reason)

    def lost(self) -> List[Output]:
        self.welcomed = self.confirmed = False
        self._resend_at = self._confirm_by = self._presence_at = None
        return []

    # -- timers ------------------------------------------------------------
    def deadline(self) -> Optional[float]:
        times = [self.liveness.deadline()]
        if not self.welcomed:
            times.append(self._opened_at + self.welcome_timeout)
        for t in (self._resend_at, self._confirm_by, self._presence_at):
            if t is not None:
                times.append(t)
        return min(times)

    def tick(self, now: float) -> List[Output]:
        stale = self.liveness.tick(now)  # no probe: only ever the Fail
        if stale:
            return stale
        if not self.welcomed and now - self._opened_at >= self.welcome_timeout:
            return [Fail(ConnectionLost(f"no welcome from the server within {self.welcome_timeout:g} s"))]
        if self._confirm_by is not None and now >= self._confirm_by:
            self._silent_timeouts += 1
            if self._silent_timeouts >= 2:
                return [Fail(AuthenticationError(
                    f"the subscription was never confirmed (waited {self.confirm_timeout:g} s on two connections). "
                    "Voxsig gives no answer at all for an invalid pubsub_token, or an account_id/user_id that "
                    "does not belong to it: check them. rtsync will not retry."))]
            return [Fail(SubscriptionTimeout(
                f"no confirm_subscription within {self.confirm_timeout:g} s; trying once more on a new connection"))]
        out: List[Output] = []
        if self._resend_at is not None and now >= self._resend_at:
            out.extend(self._send_subscribe(now))
        if self._presence_at is not None and now >= self._presence_at:
            out.extend(self.update_presence(now))
        return out


def _is_identifier(value: Any) -> bool:
    """An ActionCable identifier: a string holding a JSON object (someone else's, if not ours)."""
    if not isinstance(value, str):
        return False
    try:
        return isinstance(json.loads(value), dict)
    except (ValueError, RecursionError):
        return False


def identifier_params(pubsub_token: str, account_id: Any, user_id: Any) -> Dict[str, Any]:
    """Agent tokens carry account and user ids; contact tokens carry the token alone."""
    params: Dict[str, Any] = {"pubsub_token": pubsub_token}
    if account_id is not None:
        params["account_id"] = account_id
    if user_id is not None:
        params["user_id"] = user_id
    return params
