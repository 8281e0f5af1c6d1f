"""`VoxsigClient`: Voxsig's real-time events (a Chatwoot-style ActionCable RoomChannel)."""

from __future__ import annotations

import time
from typing import Any, Optional, Union
from urllib.parse import urlsplit

from ...errors import ConfigurationError
from ...client import Client
from ...compat import renamed_arguments
from ...engine import Vendor
from ...policy import Backoff
from ...redact import Secrets
from ...events import register_views
from .protocol import VoxsigProtocol, identifier_params

register_views(__package__ + ".models")  # typed views: pydantic loads at the first `typed`

__all__ = ["VoxsigClient"]

DEFAULT_URL = "wss://app.voxsig.com/cable"
Id = Union[int, str]


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

    Events are named by the payload's `event` (`message.created`,
    `conversation.typing_on`, `presence.update`, `notification.created`, ...);
    `event.data` is its `data`, and `event.typed` a pydantic view (Message,
    Conversation, Contact, Notification, Presence). ActionCable keeps nothing
    for you while disconnected: after a reconnect, `rtsync.connected` comes
    with `data["reconnect"] = True`, the moment to re-sync over the REST API.

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
        pubsub_token: str,
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
        if not isinstance(pubsub_token, str) or not pubsub_token.strip():
            raise ConfigurationError("pubsub_token must be the non-empty token from Voxsig's profile API")
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
        self.protocol = VoxsigProtocol(
            url, origin or default_origin(url), identifier_params(pubsub_token, account_id, user_id),
            presence_interval=presence_interval, confirm_timeout=confirm_timeout, stale_after=ping_timeout,
        )
        vendor = Vendor("voxsig", self.protocol, Secrets(pubsub_token))
        super().__init__(vendor, backoff=backoff or Backoff(base=1.0, cap=30.0), **options)

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
