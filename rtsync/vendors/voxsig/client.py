"""`VoxsigClient`: Voxsig's real-time events (a Chatwoot-style ActionCable RoomChannel)."""

from __future__ import annotations

import time
from typing import Any, Callable, Optional, TypeVar, Union
from urllib.parse import urlsplit

from ...errors import ConfigurationError, ConnectionLost
from ...client import Client
from ...compat import renamed_arguments
from ...credentials import Credential, CredentialSource
from ...engine import Vendor
from ...events import Event
from ...policy import Backoff
from ...redact import Secrets
from ...events import register_views
from ...sansio import Handshake
from ...state import State
from .protocol import ALIASES, VoxsigProtocol, identifier_params

register_views(__package__ + ".models")  # typed views: pydantic loads at the first `typed`

__all__ = ["VoxsigClient"]

DEFAULT_URL = "wss://app.voxsig.com/cable"
Id = Union[int, str]
F = TypeVar("F", bound=Callable[[Event], Any])


def default_origin(url: str) -> str:
    """ActionCable accepts an Origin equal to the scheme and host it serves (else: HTTP 404)."""
    parts = urlsplit(url)
    scheme = {"wss": "https", "ws": "http"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}"


class VoxsigClient(Client):
    """Listen to a Voxsig account (agent token with `account_id` and `user_id`) or a
    conversation (contact token alone).

        client = rtsync.VoxsigClient(pubsub_token=..., account_id=1, user_id=7)
        client.on("message.created", lambda e: print(e.data["content"]))
        client.run_forever()

    `pubsub_token` may also be a zero-argument callable returning the token,
    called before every connection attempt (a vault, a token you refresh).

    Events are named by the payload's `event` (`message.created`,
    `conversation.typing_on`, `presence.update`, `notification.created`, ...);
    `event.data` is its `data`, and `event.typed` a pydantic view (Message,
    Conversation, Contact, Notification, Presence, Typing). The vendor doc's
    `notification_created` is the wire's `notification.created`: `on()` takes
    either name. ActionCable keeps nothing for you while disconnected: after a
    reconnect, `rtsync.connected` comes with `data["reconnect"] = True`, the
    moment to re-sync over the REST API.

    `contact.merged` on a contact token's subscription carries the token that
    replaces it (the old one stops working): the client subscribes with the new
    token on the same connection, keeps the old subscription until the new one
    is confirmed, and uses the new token from then on (a callable's value too,
    while it returns the old one). `client.pubsub_token` is the token in use:
    store it. In the event's `data` the token is masked. Broadcasts to the new
    token in the one round trip before its confirm are not seen (ActionCable
    keeps nothing).

    `perform(action, **data)` runs any public RoomChannel method, as
    `subscription.perform` does in Rails' JavaScript client.

    A `disconnect` frame is read as Rails means it: `reconnect: false` ends the
    client (`unauthorized` with AuthenticationError, `invalid_request`,
    `server_restart` or `remote` with RequestRejected); otherwise it reconnects.

    `presence_interval`: the vendor doc says 30 s, but Chatwoot counts an agent
    online for only 20 s after each update, so 30 s shows agents offline a third
    of the time. The default is 15 s for agent tokens (5 s of margin inside the
    20 s window) and 60 s for contact tokens (whose window is 90 s). Presence is
    sent right after each confirmation, then on that cadence.

    `confirm_timeout`: Voxsig never answers a subscription with an invalid
    token or ids. rtsync resends the subscribe (0.5, 1, 2, 4 s ...) until
    confirmed; after `confirm_timeout` s it tries one fresh connection, and a
    second silence stops the client with `AuthenticationError`.

    `ping_timeout`: the server pings every 3 s; 6 s without any frame is a dead
    link: reconnect with backoff and jitter, resubscribe, resume presence.

    Threading: see `rtsync.Client`; callbacks run on one dispatcher thread.
    """

    @renamed_arguments(1, ("account_id", "user_id", "url", "presence_interval", "origin"),
                       {"stale_after": "ping_timeout"})
    def __init__(
        self,
        pubsub_token: Credential,
        *,
        account_id: Optional[Id] = None,
        user_id: Optional[Id] = None,
        url: str = DEFAULT_URL,
        presence_interval: Optional[float] = None,
        origin: Optional[str] = None,
        confirm_timeout: float = 10.0,
        ping_timeout: float = 6.0,
        backoff: Optional[Backoff] = None,
        **options: Any,
    ) -> None:
        secrets = Secrets()
        self._token = CredentialSource("pubsub_token", pubsub_token, secrets,
                                       hint="the token comes from Voxsig's profile API")
        if (account_id is None) != (user_id is None):
            raise ConfigurationError(
                "give both account_id and user_id (agent token) or neither (contact token)")
        if not url.startswith(("wss://", "ws://")):
            raise ConfigurationError(f"url must be a wss:// (or ws://) URL such as {DEFAULT_URL}, got {url!r}")
        if presence_interval is None:
            presence_interval = 15.0 if user_id is not None else 60.0
        if presence_interval <= 0:
            raise ConfigurationError("presence_interval must be positive")
        self.account_id, self.user_id = account_id, user_id
        self.url = url
        params = identifier_params(self._token.current or "", account_id, user_id)
        if self._token.dynamic:
            del params["pubsub_token"]  # known at the first connection attempt
        self.protocol = VoxsigProtocol(
            url, origin or default_origin(url), params,
            presence_interval=presence_interval, confirm_timeout=confirm_timeout, stale_after=ping_timeout,
        )
        protocol = self.protocol
        secrets.watch("pubsub_token", lambda: protocol.token)  # a merged token is as secret as the first
        # Readiness a perform() waits for: a connect, then a confirm.
        self._ready_wait = float(options.get("connect_timeout", 10.0)) + confirm_timeout
        vendor = Vendor("voxsig", self.protocol, secrets, prepare=self._prepare)
        super().__init__(vendor, backoff=backoff or Backoff(base=1.0, cap=30.0), **options)

    def _prepare(self) -> Handshake:
        token = self._token.get()  # outside the protocol lock: a vault may be slow
        self._exchange(lambda protocol: protocol.use_token(token))
        return self.protocol.handshake()

    @property
    def pubsub_token(self) -> Optional[str]:
        """The token in use (after a `contact.merged`, the merged one); None before a callable's first call."""
        return self.protocol.token

    def _register(self, pattern: str, fn: Optional[F], once: bool) -> Any:
        return super()._register(ALIASES.get(pattern, pattern), fn, once)

    def off(self, pattern: str, fn: Optional[Callable[[Event], Any]] = None) -> int:
        """Remove `fn` (or every callback) registered under exactly `pattern`; return how many."""
        return super().off(ALIASES.get(pattern, pattern), fn)

    def __repr__(self) -> str:
        who = f"account_id={self.account_id!r} user_id={self.user_id!r}" if self.user_id is not None else "contact"
        return f"<VoxsigClient {who} {self.state.value}>"

    @property
    def subscribed(self) -> bool:
        """True while the RoomChannel subscription is confirmed on a live connection."""
        return self.protocol.confirmed

    def update_presence(self) -> None:
        """Tell Voxsig we are online now (also sent automatically every `presence_interval` s).

        The server answers with a `presence.update` event. Raises ConnectionLost while
        not subscribed; presence resumes by itself after the reconnect.
        """
        self._exchange(lambda protocol: protocol.update_presence(time.monotonic()))

    def perform(self, action: str, /, **data: Any) -> None:
        """Run the RoomChannel's public method `action` with `data`, as Rails' `subscription.perform` does.

            client.perform("update_presence")

        Sends `{"command":"message","data":"{\"action\":...}"}` on the subscription. ActionCable
        answers nothing (a reply, if any, is an event), and silently drops an unknown action. While
        connecting or reconnecting it waits for the subscription (up to `connect_timeout` +
        `confirm_timeout` s); raises ConnectionLost if it is still not subscribed then, or if the
        client is not running (the error that ended it, if one did), and ConfigurationError for
        data that is not JSON.
        """
        if not self.running:
            if self.error is not None:
                raise self.error  # it ended (e.g. AuthenticationError): that is the reason, not "not running"
            raise ConnectionLost(f"the client is not running, so {action!r} was not sent: start() it "
                                 "(or use `with client:`) first")
        if self.state is not State.CONNECTED:
            self.wait_connected(self._ready_wait)
        self._exchange(lambda protocol: protocol.perform(action, data))
