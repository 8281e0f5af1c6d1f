"""`DialpadClient`: Dialpad event subscriptions over a REST-issued, hourly-refreshed WebSocket URL."""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, List, Optional, Union

from ...errors import (
    AuthenticationError,
    ConfigurationError,
    ProtocolError,
    RequestRejected,
    RtsyncError,
)
from ...client import Client
from ...compat import renamed_arguments
from ...credentials import Credential, CredentialSource
from ...engine import Vendor
from ...policy import Backoff
from ...redact import Secrets
from ...sansio import Handshake
from ...events import register_views
from ...wire.network import Network
from .protocol import DialpadProtocol, token_lifetime
from .rest import DialpadRest

register_views(__package__ + ".models")  # typed views: pydantic loads at the first `typed`

__all__ = ["DialpadClient"]

DEFAULT_BASE_URL = "https://dialpad.com"
#: `environment=` -> the REST base URL (the socket URLs come from it)
ENVIRONMENTS = {"production": DEFAULT_BASE_URL, "sandbox": "https://sandbox.dialpad.com"}
SUBSCRIPTION_TYPES = ("call", "sms", "agent_status", "contact", "changelog")
Id = Union[int, str]
log = logging.getLogger("rtsync.dialpad")


class DialpadClient(Client):
    """Listen to Dialpad events through a websocket endpoint.

        client = rtsync.DialpadClient(api_key, websocket_id=5071678191976448, secret="...")
        client.on("call.ringing", lambda e: print(e.data["external_number"]))
        client.run_forever()

    Event names follow the payload (Dialpad sends no type field):
    `call.<state>` (`call.ringing`, `call.connected`, `call.hangup`, ...),
    `sms`, `agent_status`, `contact.created|updated|deleted`,
    `changelog.<action>` (`changelog.updated_ivr`, ...), else `dialpad.event`;
    `event.id` is the call, SMS, agent (`target.id`) or contact id, and
    `event.typed` a Call, Sms, AgentStatus, ContactEvent or ChangeLog view.

    `url` is the REST base; `environment="sandbox"` picks
    `https://sandbox.dialpad.com` and "production" (the default)
    `https://dialpad.com`; a `url` wins over both. `api_key` (and `secret`)
    may be zero-argument callables: called before each connection attempt
    and each REST call, so a rotated key is picked up at the next reconnect.

    Without `websocket_id` or `subscription_id` a websocket is created once
    (`POST /api/v2/websockets`, with `secret` if given) and logged;
    `websocket_id` then tells you which. It has no subscription until you
    create one (`create_subscription("call", ...)`), so nothing arrives
    before (a warning says so); delete it with `delete_websocket()` when done.
    A `subscription_id` (with `subscription_type`) listens to that
    subscription only.

    The URL's token lives an hour. Before every connect the client GETs a
    fresh URL unless the current one has more than `refresh_margin` (300 s)
    left, and after any close or drop it always GETs one; `refresh_margin`
    s before expiry (measured by the token's own `exp - iat` if the local
    clock disagrees with it) it replaces the connection make-before-break
    (new socket first, old one drained and closed), and repeats on both are
    dropped. A URL the event socket refuses (403 at the upgrade, or close
    1008) means a fresh one; three fresh ones refused in a row are final. A
    REST 401/403 is `AuthenticationError` (final), 404 (the websocket or
    subscription was deleted) `RequestRejected` (final), 429 waits
    Retry-After, 5xx and network errors back off with jitter (1-60 s). The
    REST helpers wait out a 429 too (Retry-After, up to `client.rest.max_wait`,
    60 s, in all; `stop()` ends the wait) before sending the call again.
    Dialpad replays nothing: after an unplanned reconnect `rtsync.connected`
    has `data["gap_possible"]` true and an `rtsync.gap` (`missing` None: how
    many is unknown) says to re-query the REST API for what you missed.
    Dialpad sends nothing on a quiet line, so after `ping_interval` (30 s) of
    silence we send an RFC 6455 ping; no frame `ping_timeout` (15 s) later is
    a stale link, replaced like a drop.

    With a secret, every frame must be an HS256 JWT signed with it: unsigned
    or badly signed frames are dropped and reported as `rtsync.error`. The
    secret is `secret`, or the one Dialpad's answer carries (its
    `signature.secret`), which wins: a websocket given a new secret with PATCH
    is followed at the next connect.
    """

    @renamed_arguments(1, ("websocket_id", "subscription_id", "url", "secret"),
                       {"base_url": "url", "keepalive": "ping_interval", "pong_timeout": "ping_timeout"})
    def __init__(
        self,
        api_key: Credential,
        *,
        websocket_id: Optional[Id] = None,
        subscription_id: Optional[Id] = None,
        url: Optional[str] = None,
        environment: str = "production",
        secret: Optional[Credential] = None,
        subscription_type: str = "call",
        refresh_margin: float = 300.0,
        ping_interval: float = 30.0,
        ping_timeout: float = 15.0,
        backoff: Optional[Backoff] = None,
        **options: Any,
    ) -> None:
        if websocket_id is not None and subscription_id is not None:
            raise ConfigurationError("give websocket_id or subscription_id, not both")
        if subscription_type not in SUBSCRIPTION_TYPES:
            raise ConfigurationError(f"subscription_type must be one of {', '.join(SUBSCRIPTION_TYPES)}")
        if url is None:
            if environment not in ENVIRONMENTS:
                raise ConfigurationError(f"environment must be one of {', '.join(ENVIRONMENTS)}, "
                                         f"got {environment!r} (or pass url=)")
            url = ENVIRONMENTS[environment]
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ConfigurationError(f"url must be the https://... REST base (e.g. {DEFAULT_BASE_URL}), got {url!r}")
        if ping_interval <= 0 or ping_timeout <= 0:
            raise ConfigurationError("ping_interval and ping_timeout must be positive (seconds)")
        secrets = Secrets()
        self._api_key = CredentialSource("api_key", api_key, secrets,
                                         hint="your Dialpad API key or OAuth token")
        self._secret = None if secret is None else CredentialSource(
            "secret", secret, secrets, hint="the websocket's HS256 signing secret")
        self.url = url.rstrip("/")
        self.environment = environment
        self.rest = DialpadRest(self.url, self._api_key.get, network=Network.from_options(options))
        self.websocket_id = websocket_id
        self.subscription_id = subscription_id
        self.subscription_type = subscription_type
        self._subscribed = websocket_id is not None or subscription_id is not None
        fixed = None if self._secret is None or self._secret.dynamic else self._secret.current
        self.protocol = DialpadProtocol(
            fixed, refresh_margin=refresh_margin, keepalive=ping_interval, pong_timeout=ping_timeout)
        self._socket_attempt = False
        vendor = Vendor("dialpad", self.protocol, secrets, prepare=self._prepare, classify=self._classify,
                        interrupt=[self.rest.http])
        super().__init__(vendor, backoff=backoff or Backoff(base=1.0, cap=60.0), **options)

    def __repr__(self) -> str:
        target = (f"websocket_id={self.websocket_id!r}" if self.subscription_id is None
                  else f"subscription={self.subscription_type}/{self.subscription_id!r}")
        return f"<DialpadClient {target} {self.state.value}>"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop as every client does, and end any REST call waiting out a 429 (also before `start()`)."""
        self.rest.interrupt()
        try:
            super().stop(timeout)
        finally:
            self.rest.resume()

    # -- REST ---------------------------------------------------------------
    def _learn(self, proto: Dict[str, Any]) -> str:
        url = proto.get("websocket_url")
        if not isinstance(url, str):
            raise ProtocolError("Dialpad's answer has no websocket_url")
        self._secrets.rotate("url token", url.rstrip("/").rsplit("/", 1)[-1])  # the URL token is a credential
        secret = (proto.get("signature") or {}).get("secret")
        if isinstance(secret, str) and secret:
            self._secrets.add(secret)
            self.protocol.use_secret(secret)  # Dialpad's own word on what signs the frames
        return url

    def _signing_secret(self) -> Optional[str]:
        return None if self._secret is None else self._secret.get()

    def create_websocket(self, secret: Optional[str] = None) -> Dict[str, Any]:
        """`POST /api/v2/websockets`: a new websocket endpoint (rate limited to 250/min: create once)."""
        result = self.rest.call("POST", "websockets", {"secret": secret} if secret else {})
        self._learn(result)
        return result

    def get_websocket(self, websocket_id: Id) -> Dict[str, Any]:
        """`GET /api/v2/websockets/{id}`: the endpoint with a fresh `websocket_url`."""
        result = self.rest.call("GET", f"websockets/{_id(websocket_id)}")
        self._learn(result)
        return result

    def create_subscription(self, kind: str, **fields: Any) -> Dict[str, Any]:
        """`POST /api/v2/subscriptions/<kind>` linked to this client's websocket (`endpoint_id`).

        `kind` is call, sms, agent_status, contact or changelog; `fields` are the
        vendor's (e.g. `call_states=["ringing", "hangup"]`, `direction="inbound"`;
        agent_status needs `agent_type="callcenter"`, contact `contact_type="shared"`
        or "local"). Without a websocket, one is created first (see `websocket_id`).
        """
        _kind(kind)
        if self.websocket_id is None:
            self.websocket_id = self.create_websocket(self._signing_secret())["id"]
            log.info("created Dialpad websocket %s for the subscription", self.websocket_id)
        body = {"endpoint_id": self.websocket_id, "enabled": True, **fields}
        result = self.rest.call("POST", f"subscriptions/{kind}", body)
        self._subscribed = True
        return result

    def get_subscription(self, kind: str, subscription_id: Id) -> Dict[str, Any]:
        """`GET /api/v2/subscriptions/<kind>/{id}`: its settings, and its `websocket` with a fresh,
        subscription-scoped `websocket_url`."""
        return self.rest.call("GET", f"subscriptions/{_kind(kind)}/{_id(subscription_id)}")

    def list_subscriptions(self, kind: str) -> List[Dict[str, Any]]:
        """Every subscription of `kind`, following the `cursor` pages."""
        return self.rest.pages(f"subscriptions/{_kind(kind)}")

    def update_subscription(self, kind: str, subscription_id: Id, **fields: Any) -> Dict[str, Any]:
        """`PATCH /api/v2/subscriptions/<kind>/{id}` (e.g. `enabled=False`, new `call_states`)."""
        return self.rest.call("PATCH", f"subscriptions/{_kind(kind)}/{_id(subscription_id)}", fields)

    def delete_subscription(self, kind: str, subscription_id: Id) -> Dict[str, Any]:
        """`DELETE /api/v2/subscriptions/<kind>/{id}`."""
        return self.rest.call("DELETE", f"subscriptions/{_kind(kind)}/{_id(subscription_id)}")

    def list_websockets(self) -> List[Dict[str, Any]]:
        """Every websocket endpoint of the account, following the `cursor` pages."""
        return self.rest.pages("websockets")

    def update_websocket(self, websocket_id: Id, secret: Optional[str]) -> Dict[str, Any]:
        """`PATCH /api/v2/websockets/{id}`: a new signing secret (events are signed with it from now on)."""
        if secret:
            self._secrets.add(secret)
        return self.rest.call("PATCH", f"websockets/{_id(websocket_id)}", {"secret": secret})

    def delete_websocket(self, websocket_id: Id) -> Dict[str, Any]:
        """`DELETE /api/v2/websockets/{id}`."""
        return self.rest.call("DELETE", f"websockets/{_id(websocket_id)}")

    def _fresh_url(self) -> str:
        # wait=False: a 429 goes to the reconnect policy, which waits Retry-After and can be stopped.
        try:
            if self.subscription_id is not None:
                self.protocol.channel = f"{self.subscription_type}:{self.subscription_id}"
                path = f"subscriptions/{self.subscription_type}/{_id(self.subscription_id)}"
                websocket = self.rest.call("GET", path, wait=False).get("websocket")
                if not isinstance(websocket, dict):
                    raise RequestRejected(
                        f"Dialpad's {self.subscription_type} subscription {self.subscription_id} has no websocket "
                        "(was its websocket deleted?): point it at one with update_subscription(endpoint_id=...). "
                        "rtsync will not retry.", status=404)
                return self._learn(websocket)
            if self.websocket_id is None:
                created = self.rest.call("POST", "websockets", _secret_body(self._signing_secret()), wait=False)
                self.websocket_id = created["id"]
                self._created(created["id"])
                self.protocol.channel = f"websocket:{self.websocket_id}"
                return self._learn(created)
            self.protocol.channel = f"websocket:{self.websocket_id}"
            return self._learn(self.rest.call("GET", f"websockets/{_id(self.websocket_id)}", wait=False))
        except RequestRejected as exc:
            if exc.status != 404:
                raise
            what = (f"{self.subscription_type} subscription {self.subscription_id}" if self.subscription_id
                    is not None else f"websocket {self.websocket_id}")
            raise RequestRejected(f"Dialpad has no {what} (HTTP 404: deleted, or another account's); "
                                  "rtsync will not retry.", status=404) from None

    def _created(self, websocket_id: Any) -> None:
        if self._subscribed:
            log.info("created Dialpad websocket %s", websocket_id)
            return
        log.warning("created Dialpad websocket %s, which has no event subscription: nothing will arrive until "
                    "you create one (client.create_subscription(...)); delete the websocket with "
                    "client.delete_websocket(%s) when you are done", websocket_id, websocket_id)

    # -- what the engine is configured with ----------------------------------
    def _classify(self, error: RtsyncError) -> RtsyncError:
        if not (isinstance(error, AuthenticationError) and self._socket_attempt):
            return error  # REST refused the key (or anything else): as classified
        return self.protocol.refused("HTTP 403 at the upgrade")

    def _prepare(self) -> Handshake:
        self._socket_attempt = False
        protocol = self.protocol
        if self._secret is not None and self._secret.dynamic:
            protocol.use_secret(self._secret.get())  # before the refresh: Dialpad's echo still wins
        now = time.monotonic()
        if protocol.rotating or protocol.url is None or protocol.time_left(now) < protocol.refresh_margin:
            url = self._fresh_url()
            protocol.use_url(url, token_lifetime(url, time.time()), time.monotonic())
        self._socket_attempt = True  # what fails from here on is the event socket, not REST
        return protocol.handshake()


def _kind(kind: str) -> str:
    if kind not in SUBSCRIPTION_TYPES:
        raise ConfigurationError(f"kind must be one of {', '.join(SUBSCRIPTION_TYPES)}")
    return kind


def _id(value: Id) -> str:
    """An id for a URL path: Dialpad's are integers (its examples strings), never a path of their own."""
    text = str(value)
    if isinstance(value, bool) or not text.isdigit():
        raise ConfigurationError(f"a Dialpad id is a number (an int or a string of digits), got {value!r}")
    return text


def _secret_body(secret: Optional[str]) -> Dict[str, Any]:
    return {"secret": secret} if secret else {}
