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
- a `disconnect` frame is read as Rails means its reason (`unauthorized`,
  `invalid_request`, `server_restart`, `remote`): `reconnect: false` is
  final (`unauthorized` as an AuthenticationError), anything else is retried;
  `reject_subscription` is final too;
- `contact.merged` on a contact token's own subscription carries the token
  that replaces it (Chatwoot's widget reconnects with it): subscribe with the
  new token on the same connection, keep delivering the old subscription's
  frames until the new one is confirmed, then unsubscribe the old one, and
  use the new token on every later connection (make-before-break);
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
import re
from typing import Any, Dict, List, Mapping, Optional

from ...errors import (
    AuthenticationError,
    ConfigurationError,
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

__all__ = ["DISCONNECT_REASONS", "SUBPROTOCOLS", "SubscriptionTimeout", "VoxsigProtocol", "build_identifier"]

PROVIDER = "voxsig"
CHANNEL = "RoomChannel"
SUBPROTOCOLS = ("actioncable-v1-json", "actioncable-unsupported")
_PRESENCE = json.dumps({"action": "update_presence"}, separators=(",", ":"))
MERGED = "contact.merged"
_PLAUSIBLE_TOKEN = re.compile(r"[!#-~]{8,256}\Z")  # printable ASCII, no space or double quote
_KEEP_TOKENS = 4  # tokens (and identifiers) still masked in frames after merges replaced them

#: What each ActionCable disconnect reason means (`ActionCable::INTERNAL[:disconnect_reasons]`).
DISCONNECT_REASONS = {
    "unauthorized": "the server's connection-level authentication refused us (reject_unauthorized_connection)",
    "invalid_request": "the server found the connection request invalid (not a WebSocket upgrade, or an Origin "
                       "it does not allow)",
    "server_restart": "the ActionCable server is restarting",
    "remote": "the application cut this connection on purpose (RemoteConnections#disconnect)",
}


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
        self._params = {key: value for key, value in params.items() if key != "pubsub_token"}
        # Only a contact token follows `contact.merged`: for an agent it is news about someone else.
        self.contact = "user_id" not in params
        self.token: Optional[str] = None
        self.identifier = ""
        self.superseded: Dict[str, str] = {}  # token -> the token contact.merged replaced it with
        self._tokens: List[str] = []  # newest last: masked in frames and reports
        self._escaped: List[str] = []  # the identifiers as they appear escaped inside a frame
        self._subscribe = ""
        token = params.get("pubsub_token")
        if isinstance(token, str):
            self.use_token(token)
        self.presence_interval = presence_interval
        self.confirm_timeout = confirm_timeout
        # The server pings every 3 s and we never probe: any frame is life, `stale_after` s of none is stale.
        self.liveness = Liveness("Voxsig", timeout=stale_after, probe=None,
                                 stale="no frame from {vendor} for {seconds:.1f} s (it pings every 3 s); reconnecting")
        self.welcome_timeout = welcome_timeout
        self._silent_timeouts = 0  # consecutive connections that never got a confirm
        self._reset(0.0)

    def use_token(self, token: str) -> List[Output]:
        """The pubsub token for the next connection; one that `contact.merged` replaced is followed."""
        seen = {token}
        while token in self.superseded and self.superseded[token] not in seen:
            token = self.superseded[token]
            seen.add(token)
        if token != self.token:
            self._set_token(token)
        return []

    def _set_token(self, token: str) -> None:
        self.token = token
        self.identifier = build_identifier({"channel": CHANNEL, "pubsub_token": token, **self._params})
        # Frames echo the identifier, token included: events keep `raw` with it masked.
        self._escaped = [*self._escaped, json.dumps(self.identifier, ensure_ascii=False)[1:-1]][-_KEEP_TOKENS:]
        if len(token) >= 4:
            self._tokens = [*self._tokens, token][-_KEEP_TOKENS:]
        self._subscribe = self._command("subscribe", self.identifier)

    @staticmethod
    def _command(command: str, identifier: str, **fields: str) -> str:
        return json.dumps({"command": command, "identifier": identifier, **fields},
                          separators=(",", ":"), ensure_ascii=False)

    def _reset(self, now: float) -> None:
        self.welcomed = False
        self.confirmed = False
        self._opened_at = now
        self.liveness.opened(now)
        self._resend_at: Optional[float] = None
        self._resend_gap = 0.5
        self._confirm_by: Optional[float] = None
        self._presence_at: Optional[float] = None
        self._active: Optional[str] = None  # the confirmed identifier commands go to
        self._previous: Optional[str] = None  # the identifier a merge is replacing, until the new one confirms

    # -- commands --------------------------------------------------------
    def message(self, data: Mapping[str, Any]) -> Send:
        """A `message` command: `data` travels as a JSON string, as ActionCable requires."""
        try:
            text = json.dumps(dict(data), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"the action's data must be JSON (str, numbers, lists, dicts ...): {exc}") \
                from None
        return Send(self._command("message", self._active or self.identifier, data=text))

    def perform(self, action: str, data: Mapping[str, Any]) -> List[Output]:
        """ActionCable's `subscription.perform(action, data)`: runs the channel's public method `action`."""
        if not isinstance(action, str) or not action:
            raise ConfigurationError("action must be the name of a public RoomChannel method, e.g. 'update_presence'")
        if "action" in data:
            raise ConfigurationError("the action's data cannot hold a key named 'action': it names the method")
        if not self.confirmed:
            raise ConnectionLost(f"not subscribed to the {CHANNEL} right now, so {action!r} was not sent; "
                                 "wait_connected() first, or call again after the reconnect")
        return [self.message({"action": action, **data})]

    def update_presence(self, now: float) -> List[Output]:
        if not self.confirmed:
            raise ConnectionLost("not subscribed right now; presence is sent again after the reconnect")
        self._presence_at = now + self.presence_interval
        return [Send(self._command("message", self._active or self.identifier, data=_PRESENCE))]

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
        return contained(self._received, text, now, self._quoted)

    def _masked(self, text: str) -> str:
        """The frame with our identifiers (and so our tokens) masked, as events keep it in `raw`."""
        for escaped in self._escaped:
            text = text.replace(escaped, "***")
        for token in self._tokens:
            text = text.replace(token, "***")
        return text

    def _quoted(self, text: str) -> str:
        return quoted(self._masked(text))

    def _bad(self, what: str, text: str) -> Report:
        return Report(ProtocolError(f"skipped {what}: {self._quoted(text)}"))

    def _received(self, text: str, now: float) -> List[Output]:
        frame = json_object(text, quote=self._quoted)  # masked only for a report: masking every frame cost a fifth
        if isinstance(frame, Report):
            return [frame]
        kind = frame.get("type")
        if kind is not None and not isinstance(kind, str):
            return [self._bad(f"a frame whose type is a {type(kind).__name__}, not a string", text)]
        if kind == "ping":
            return []
        identifier = frame.get("identifier")
        if identifier is not None and identifier != self.identifier and not _is_identifier(identifier):
            return [self._bad("a frame whose identifier is not a JSON string", text)]
        if kind is None and "message" in frame:
            if identifier != self.identifier and (identifier is None or identifier != self._previous):
                return []  # not ours (we subscribe with one spelling; a merge's old one until the new confirms)
            message = frame["message"]
            if isinstance(message, dict) and "event" in message and not isinstance(message["event"], str):
                return [self._bad(f"a message whose event is a {type(message['event']).__name__}, not a string",
                                  text)]
            event = self._event(message, self._masked(text))
            if event.name == MERGED and self.contact and identifier == self.identifier:
                data = message.get("data")
                return [event, *self._merged(data.get("pubsub_token") if isinstance(data, dict) else None, now)]
            return [event]
        if kind == "welcome":
            self.welcomed = True
            return self._send_subscribe(now, first=True)
        if kind == "confirm_subscription" and identifier == self.identifier:
            return self._switched(now) if self._previous is not None else self._confirmed(now)
        if kind == "reject_subscription" and identifier == self.identifier:
            return [Fail(AuthenticationError(
                "Voxsig rejected the subscription: the pubsub_token, account_id or user_id is not valid. "
                "rtsync will not retry."))]
        if kind == "disconnect":
            return [Fail(self._disconnect(frame))]
        return []

    def _event(self, message: Any, raw: str) -> Event:
        if isinstance(message, dict) and isinstance(message.get("event"), str):
            name: str = message["event"]
            name, data = ALIASES.get(name, name), message.get("data")
            if isinstance(data, dict) and isinstance(data.get("pubsub_token"), str):
                # A credential wherever it shows (contact.merged's is held by the client:
                # `VoxsigClient.pubsub_token`): masked here.
                raw = raw.replace(json.dumps(data["pubsub_token"], ensure_ascii=False)[1:-1] or '""', "***")
                data = {**data, "pubsub_token": "***"}
            return Event.make(name, provider=PROVIDER, channel=CHANNEL, data=data, raw=raw)
        return Event.make("message", provider=PROVIDER, channel=CHANNEL, data=message, raw=raw)

    def _merged(self, token: Any, now: float) -> List[Output]:
        """Subscribe with the token `contact.merged` gave us, beside the old subscription."""
        if not isinstance(token, str) or token == self.token:
            return []
        if not _PLAUSIBLE_TOKEN.match(token):
            # Chatwoot's tokens are 24 characters of base58; switching to anything else would lose the
            # subscription for good, so the one that works is kept.
            return [Report(ProtocolError("contact.merged carried a pubsub_token that cannot be one "
                                         "(too short, or spaces or quotes); the current token is kept"))]
        assert self.token is not None
        self.superseded[self.token] = token
        previous = self.identifier
        self._set_token(token)
        self._previous = previous
        return self._send_subscribe(now, first=True)

    def _switched(self, now: float) -> List[Output]:
        """The merged token's subscription is confirmed: drop the old one (no ack ever comes)."""
        assert self._previous is not None
        out: List[Output] = [Send(self._command("unsubscribe", self._previous))]
        self._previous = None
        if not self.confirmed:
            return [*self._confirmed(now), *out]
        self._resend_at = self._confirm_by = None
        self._active = self.identifier
        return [*out, *self.update_presence(now)]

    def _disconnect(self, frame: Mapping[str, Any]) -> RtsyncError:
        raw = frame.get("reason", "")
        reason = raw[:80] if isinstance(raw, str) else "(not a string)"
        meaning = DISCONNECT_REASONS.get(reason, "a reason ActionCable does not define")
        flag = frame.get("reconnect")
        # Rails always sends the flag; without one, only `unauthorized` keeps its Rails meaning (final).
        if flag is True or (flag is not False and reason != "unauthorized"):
            return ConnectionLost(f"Voxsig disconnected us: {meaning} (reason {reason!r}); reconnecting")
        said = f"Voxsig closed the connection with reason {reason!r} and asked us not to reconnect (reconnect: false)"
        if reason == "unauthorized":
            return AuthenticationError(f"{said}: {meaning}; check the pubsub_token and what else your deployment "
                                       "authenticates connections with (cookies, headers). rtsync will not retry.")
        if reason == "invalid_request":
            return RequestRejected(f"{said}: {meaning}; check url= and origin=. rtsync will not retry.")
        return RequestRejected(f"{said}: {meaning}. rtsync honours it and will not retry; start the client "
                               "again when the server says it may.")

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
        self._active = self.identifier
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
        self._active = self._previous = None  # the next connection subscribes the newest token only
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


#: The vendor doc spells one event name differently from the wire; events carry the wire's name.
ALIASES = {"notification_created": "notification.created"}


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
