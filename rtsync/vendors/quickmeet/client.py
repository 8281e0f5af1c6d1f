"""`QuickMeetClient`: QuickMeet.Chat's realtime API (Rocket.Chat over Meteor DDP) as a blocking client."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Dict, Optional

from ...errors import ConfigurationError
from ...events import Event
from ...client import Client
from ...compat import renamed_arguments
from ...engine import Vendor
from ...policy import Backoff
from ...redact import Secrets
from .protocol import ROOM_MESSAGES, QuickMeetProtocol

if TYPE_CHECKING:  # pydantic loads when a view is first asked for, not by `import rtsync`
    from .models import Message, Notification

__all__ = ["QuickMeetClient"]


class QuickMeetClient(Client):
    """Log in to QuickMeet.Chat, subscribe to streams, call methods.

        client = rtsync.QuickMeetClient("ann", "...", url="wss://chat.example/websocket")
        client.on("stream-room-messages", lambda e: print(e.channel, e.data[0]["msg"]))
        with client:
            client.subscribe_room_messages("GENERAL")
            client.call("sendMessage", {"rid": "GENERAL", "msg": "hello"})

    Stream events: `event.name` is the stream (`stream-room-messages`,
    `stream-notify-room`, `stream-notify-user`, ...), `event.channel` the
    stream's event name (a room id, `<rid>/typing`, `<uid>/notification`),
    `event.data` the args list with EJSON dates as UTC datetimes.
    `room_message(event)` / `notification(event)` give pydantic views.

    Login: the password goes out only as its SHA-256 digest; the resume token
    the server returns is kept (`resume_token`) and used on every reconnect
    (falling back to the password if it is refused). A refused login is
    `AuthenticationError` (final); `too-many-requests` waits `timeToReset`.

    After a reconnect the client logs in again before anything else,
    resubscribes with the same ids, then fills the gap of each subscribed
    room with `loadMissedMessages` from the newest message it had delivered
    (`loadHistory` pages on servers without it): missed messages come in
    order, live ones that arrive meanwhile wait behind them (30 s at most),
    repeats are dropped; what cannot be fetched is an `rtsync.gap` event.
    Room and subscription changes (`subscribe_room_changes()`,
    `subscribe_subscription_changes()`) missed meanwhile are fetched with
    `rooms/get` / `subscriptions/get` since the newest change known.

    Liveness: every server ping is answered; after `ping_interval` s of silence
    we ping, and `ping_timeout` s more without any frame is a stale link. A
    server that keeps the socket but never completes connect and login within
    `handshake_timeout` s is dropped and retried too.

    Both servers Rocket.Chat puts behind `/websocket` work: the Meteor
    monolith and the ddp-streamer (`connect` always goes first, before even
    the streamer's early ping is answered; its close codes 4000, 1002, 1007
    and 1013 are explained in `rtsync.disconnected` and retried; a missing
    `result` is None; broker-mangled errors such as `"User not found [403]"`
    are still read as 403).

    Threading: `call()` and `subscribe()` block the calling thread (never a
    callback's: they would wait for the dispatcher they run on); calls made
    while the login is under way wait for it; calls in flight when the link
    drops fail at once with ConnectionLost.
    """

    @renamed_arguments(2, ("username", "password", "resume_token"),
                       {"ping_after": "ping_interval", "dead_after": "ping_timeout"},
                       first_was=("url", ("ws://", "wss://")))
    def __init__(
        self,
        username: Optional[str] = None,
        password: Optional[str] = None,
        *,
        url: str,
        resume_token: Optional[str] = None,
        email: Optional[str] = None,
        ping_interval: float = 25.0,
        ping_timeout: float = 15.0,
        handshake_timeout: float = 15.0,
        backoff: Optional[Backoff] = None,
        **options: Any,
    ) -> None:
        if not url.startswith(("wss://", "ws://")):
            raise ConfigurationError(f"url must be the wss://<host>/websocket endpoint, got {url!r}")
        if password is not None and not (username or email):
            raise ConfigurationError("a password needs a username (or email)")
        if password is None and not resume_token:
            raise ConfigurationError("give username and password, or resume_token (a login or personal token)")
        secrets = Secrets()
        login: Dict[str, Any] = {}
        if password is not None:
            digest = hashlib.sha256(password.encode("utf-8")).hexdigest()
            secrets.add(password, digest)
            user = {"username": username} if username else {"email": email}
            login = {"user": user, "password": {"digest": digest, "algorithm": "sha-256"}}
        if resume_token:
            secrets.add(resume_token)
        self.url, self.username = url, username or email
        self.protocol = QuickMeetProtocol(
            url, login, resume_token=resume_token, ping_after=ping_interval, dead_after=ping_timeout,
            handshake_timeout=handshake_timeout)
        secrets.watch("resume token", lambda: self.protocol.resume_token)  # the server issues new ones
        super().__init__(Vendor("quickmeet", self.protocol, secrets),
                         backoff=backoff or Backoff(base=1.0, cap=30.0), **options)

    def __repr__(self) -> str:
        return f"<QuickMeetClient {self.url} user={self.username!r} {self.state.value}>"

    @property
    def resume_token(self) -> Optional[str]:
        """The login token the server issued (a secret: store it like a password)."""
        return self.protocol.resume_token

    @property
    def user_id(self) -> Optional[str]:
        return self.protocol.user_id

    # -- methods -----------------------------------------------------------
    def call(self, method: str, *params: Any, timeout: float = 30.0) -> Any:
        """Call a server method and return its result (None when the server sends none).

        Raises CallError (with the server's `error`, `reason`, `details`), RateLimited,
        ConnectionLost (not connected, or the link dropped: the outcome is unknown) or
        CallTimeout.
        """
        return self._request(lambda protocol: protocol.call(method, list(params)), timeout)

    def subscribe(self, stream: str, event_name: str, timeout: float = 15.0, wait: bool = True) -> str:
        """Subscribe to `stream` for `event_name` and wait for `ready`; return the subscription id.

        Raises SubscriptionError if the server refuses it (`nosub`). The subscription is
        renewed by itself after every reconnect. With `wait=False` it is only registered
        (allowed before `start()`): it goes out with the next login, and a refusal is
        reported as an `rtsync.error` event.
        """
        if wait:
            return str(self._request(lambda protocol: protocol.subscribe(stream, event_name), timeout))
        ids = []

        def register(protocol: QuickMeetProtocol) -> Any:
            sub_id, outputs = protocol.subscribe(stream, event_name)
            ids.append(sub_id)
            return outputs

        self._exchange(register)
        return ids[0]

    def unsubscribe(self, sub_id: str) -> None:
        self._exchange(lambda protocol: protocol.unsubscribe(sub_id))

    # -- helpers for the common streams ---------------------------------------
    def subscribe_room_messages(self, rid: str, wait: bool = True) -> str:
        """New (and edited) messages of a room: `stream-room-messages` events with channel `rid`."""
        return self.subscribe(ROOM_MESSAGES, rid, wait=wait)

    def subscribe_typing(self, rid: str, wait: bool = True) -> str:
        """Typing in a room: `stream-notify-room` events, channel `<rid>/typing`, data `[username, bool]`."""
        return self.subscribe("stream-notify-room", f"{rid}/typing", wait=wait)

    def subscribe_notifications(self) -> str:
        """The logged-in user's notifications: `stream-notify-user` events, channel `<uid>/notification`."""
        return self._subscribe_own("notification")

    def subscribe_room_changes(self) -> str:
        """The user's rooms changing: `stream-notify-user` events, channel `<uid>/rooms-changed`, data
        `[action, room]`. Changes made while disconnected are fetched with `rooms/get` after a reconnect
        and delivered the same way."""
        return self._subscribe_own("rooms-changed")

    def subscribe_subscription_changes(self) -> str:
        """The user's subscriptions (unread counts, open/alert flags) changing: channel
        `<uid>/subscriptions-changed`; recovered after a reconnect with `subscriptions/get`."""
        return self._subscribe_own("subscriptions-changed")

    def _subscribe_own(self, what: str) -> str:
        if not self.user_id:
            raise ConfigurationError("not logged in yet: wait for rtsync.connected")
        return self.subscribe("stream-notify-user", f"{self.user_id}/{what}")

    def send_message(self, rid: str, text: str, timeout: float = 30.0) -> Message:
        from .models import Message

        return Message.model_validate(self.call("sendMessage", {"rid": rid, "msg": text}, timeout=timeout))

    @staticmethod
    def room_message(event: Event) -> Message:
        """The message carried by a `stream-room-messages` event."""
        from .models import Message

        return Message.model_validate(event.data[0])

    @staticmethod
    def notification(event: Event) -> Notification:
        from .models import Notification

        return Notification.model_validate(event.data[0])

