"""`QuickMeetClient`: QuickMeet.Chat's realtime API (Rocket.Chat over Meteor DDP) as a blocking client."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Protocol, Tuple

from ...checkpoint import CheckpointWriter
from ...client import Client
from ...compat import renamed_arguments
from ...credentials import Credential, CredentialSource
from ...engine import Vendor
from ...errors import ConfigurationError
from ...events import Event
from ...policy import Backoff
from ...redact import Secrets
from ...sansio import Handshake
from .ejson import encode_ejson
from .methods import BotMethods
from .protocol import MY_MESSAGES, ROOM_MESSAGES, QuickMeetProtocol

if TYPE_CHECKING:  # pydantic loads when a view is first asked for, not by `import rtsync`
    from .models import Message, Notification

__all__ = ["QuickMeetClient"]


class Checkpoint(Protocol):
    """What `checkpoint=` takes: `rtsync.FileCheckpoint`, a Redis one, or your own."""

    def load(self) -> Optional[Dict[str, Any]]: ...

    def save(self, state: Dict[str, Any]) -> None: ...


class QuickMeetClient(BotMethods, Client):
    """Log in to QuickMeet.Chat, subscribe to streams, call methods.

        client = rtsync.QuickMeetClient("ann", "...", url="wss://chat.example/websocket")
        client.on("stream-room-messages", lambda e: print(e.channel, e.typed.msg))
        with client:
            client.subscribe_room_messages("GENERAL")
            client.send_message("GENERAL", "hello", tmid=None)

    Stream events: `event.name` is the stream (`stream-room-messages`,
    `stream-notify-room`, `stream-notify-user`, ...), `event.channel` the
    stream's event name (a room id, `__my_messages__`, `<rid>/user-activity`,
    `<uid>/notification`), `event.data` the args list decoded from EJSON
    (dates as aware UTC datetimes, `$binary` as bytes). `event.typed` is the
    pydantic view: `Message`, `Notification`, `RoomChange`,
    `SubscriptionChange`, `Activity` (typing) or `DeletedMessage`.

    Credentials: `password` and `resume_token` may be zero-argument callables,
    called before every connection attempt (a vault, a rotating personal access
    token); `email=` logs in by email instead of username. The password goes
    out only as its SHA-256 digest; the resume token the server returns is kept
    (`resume_token`, expiring at `token_expires`) and used on every reconnect
    (falling back to the password if it is refused); with a password, the login
    is renewed `refresh_before` s before the token lapses. A refused login is
    `AuthenticationError`, and a server without DDP 1 `VersionMismatch` (both
    final); `too-many-requests` waits `timeToReset`, for a subscription too.
    `logout()` revokes the token and stops.

    After a reconnect the client logs in again before anything else,
    resubscribes with the same ids and parameters, then fills each gap it can:
    a subscribed room with `loadMissedMessages` from the newest message it had
    delivered (a room that was quiet gets a starting point when subscribed),
    then its older messages edited meanwhile with `messages/get`;
    `__my_messages__` room by room, listed with `rooms/get`; deletions
    (`subscribe_deleted_messages`) with `messages/get`; room and subscription
    changes with `rooms/get` / `subscriptions/get`. Missed messages come in
    order, live ones that arrive meanwhile wait behind them (30 s at most),
    repeats are dropped. What cannot be fetched (notifications, presence and
    other streams: DDP replays nothing; edits on servers without
    `messages/get`) is an `rtsync.gap` event
    (`channel`, `missing`, `reason`), and `rtsync.connected` then says
    `resumed=False`. With `checkpoint=` (`rtsync.FileCheckpoint(path)` or any
    object with `load()` and `save(dict)`), each room's newest message that
    callbacks finished with is saved (at most every `checkpoint_interval` s,
    and on stop), so a new process fills what it missed the same way.

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

    Threading: `call()`, `subscribe()` and the helpers (`join_room`,
    `send_message`, `react`, ...) block the calling thread (never a callback's:
    they would wait for the dispatcher they run on); calls made while the
    login is under way wait for it; calls in flight when the link drops fail
    at once with ConnectionLost.
    """

    @renamed_arguments(2, ("username", "password", "resume_token"),
                       {"ping_after": "ping_interval", "dead_after": "ping_timeout"},
                       first_was=("url", ("ws://", "wss://")))
    def __init__(
        self,
        username: Optional[str] = None,
        password: Optional[Credential] = None,
        *,
        url: str,
        resume_token: Optional[Credential] = None,
        email: Optional[str] = None,
        ping_interval: float = 25.0,
        ping_timeout: float = 15.0,
        handshake_timeout: float = 15.0,
        refresh_before: float = 24 * 3600.0,
        checkpoint: Optional[Checkpoint] = None,
        checkpoint_interval: float = 1.0,
        backoff: Optional[Backoff] = None,
        **options: Any,
    ) -> None:
        if not url.startswith(("wss://", "ws://")):
            raise ConfigurationError(f"url must be the wss://<host>/websocket endpoint, got {url!r}")
        if password is not None and not (username or email):
            raise ConfigurationError("a password needs a username (or email)")
        if password is None and not resume_token:
            raise ConfigurationError("give username and password, or resume_token (a login or personal token)")
        self._vault = secrets = Secrets()
        self._password = CredentialSource("password", password, secrets) if password is not None else None
        self._token = CredentialSource("resume_token", resume_token, secrets,
                                       hint="a login token or a personal access token") if resume_token else None
        self._user = {"username": username} if username else {"email": email}
        self.url, self.username = url, username or email
        self.protocol = QuickMeetProtocol(
            url, self._login_params(), resume_token=self._token.current if self._token else None,
            ping_after=ping_interval, dead_after=ping_timeout, handshake_timeout=handshake_timeout,
            wall_clock=time.time, refresh_before=refresh_before)
        secrets.watch("resume token", lambda: self.protocol.resume_token)  # the server issues new ones
        self.checkpoint = checkpoint
        self._done: Dict[str, Tuple[int, List[str]]] = {}  # rid -> (newest ts callbacks finished, ids at it)
        self._writer = CheckpointWriter(checkpoint, checkpoint_interval, snapshot=self._snapshot)
        self._done_lock = self._writer.lock
        if checkpoint is not None:
            self._restore(checkpoint.load())
        super().__init__(Vendor("quickmeet", self.protocol, secrets, prepare=self._prepare,
                                delivered=self._delivered if checkpoint is not None else None,
                                stopped=self.save_checkpoint,
                                resume=self._resume if checkpoint is not None else None),
                         backoff=backoff or Backoff(base=1.0, cap=30.0), **options)

    def __repr__(self) -> str:
        return f"<QuickMeetClient {self.url} user={self.username!r} {self.state.value}>"

    def _login_params(self) -> Dict[str, Any]:
        """The password login's parameters, with the password last resolved."""
        password = self._password.current if self._password is not None else None
        if password is None:
            return {}  # none, or a callable not called yet (`_prepare` calls it before each connection)
        digest = hashlib.sha256(password.encode("utf-8")).hexdigest()
        self._vault.rotate("password digest", digest)
        return {"user": self._user, "password": {"digest": digest, "algorithm": "sha-256"}}

    def _prepare(self) -> Handshake:
        # Before every connection attempt: callables give the credentials of the moment.
        if self._password is not None and self._password.dynamic:
            self._password.get()
        token = self._token.get() if self._token is not None and self._token.dynamic else None
        self.protocol.credentials(self._login_params(), token)
        return self.protocol.handshake()

    @property
    def resume_token(self) -> Optional[str]:
        """The login token the server issued (a secret: store it like a password)."""
        return self.protocol.resume_token

    @property
    def token_expires(self) -> Optional[datetime]:
        """When the login token lapses (UTC), as the server said; renewed `refresh_before` s ahead
        of it by logging in with the password again (without a password: an `rtsync.error` warns)."""
        return self.protocol.token_expires

    @property
    def user_id(self) -> Optional[str]:
        return self.protocol.user_id

    @property
    def login_name(self) -> Optional[str]:
        """The logged-in user's username (from the server once logged in; else the one given)."""
        return self.protocol.username or (self.username if "username" in self._user else None)

    # -- methods -----------------------------------------------------------
    def call(self, method: str, *params: Any, timeout: float = 30.0) -> Any:
        """Call a server method and return its result (None when the server sends none).

        Params are sent as EJSON: `datetime` (naive ones are taken as UTC), `bytes`, NaN and
        infinities travel as `$date`, `$binary` and `$InfNaN`; a dict already in an EJSON form
        (`{"$date": ms}`) goes as it is. Raises TypeError for a value EJSON cannot hold, CallError
        (with the server's `error`, `reason`, `details`), RateLimited, ConnectionLost (not
        connected, or the link dropped: the outcome is unknown) or CallTimeout.
        """
        encode_ejson(list(params))  # TypeError here, in the caller's thread
        return self._request(lambda protocol: protocol.call(method, list(params)), timeout)

    def subscribe(self, stream: str, event_name: str, *args: Any, timeout: float = 15.0,
                  wait: bool = True) -> str:
        """Subscribe to `stream` for `event_name` and wait for `ready`; return the subscription id.

        `args` are the stream's own parameters: `{"token": visitor_token}` for the livechat
        streams, `{"added": [user ids]}` for `stream-user-presence` (whose event name is "").
        Raises SubscriptionError if the server refuses it (`nosub`); a rate limit
        (`too-many-requests`) is an `rtsync.error` event and the sub goes out again after the
        server's `timeToReset`. The subscription is renewed after every reconnect. With
        `wait=False` it is only registered (allowed before `start()`): it goes out with the next
        login, and a refusal is reported as an `rtsync.error` event.
        """
        params = list(args)
        if wait:
            return str(self._request(lambda protocol: protocol.subscribe(stream, event_name, params), timeout))
        ids = []

        def register(protocol: QuickMeetProtocol) -> Any:
            sub_id, outputs = protocol.subscribe(stream, event_name, params)
            ids.append(sub_id)
            return outputs

        self._exchange(register)
        return ids[0]

    def unsubscribe(self, sub_id: str) -> None:
        self._exchange(lambda protocol: protocol.unsubscribe(sub_id))

    def logout(self, timeout: float = 30.0) -> None:
        """Log out (`logout`: the server revokes the login token) and stop the client."""
        try:
            self.call("logout", timeout=timeout)
        finally:
            self.protocol.resume_token = None
            self.stop()

    # -- helpers for the common streams ---------------------------------------
    def subscribe_room_messages(self, rid: str, wait: bool = True) -> str:
        """New (and edited) messages of a room: `stream-room-messages` events with channel `rid`."""
        return self.subscribe(ROOM_MESSAGES, rid, wait=wait)

    def subscribe_my_messages(self, wait: bool = True) -> str:
        """New messages in every room of the user: `stream-room-messages` events with channel
        `__my_messages__`; `data[1]` describes the room (`roomName`, `roomType`, ...)."""
        return self.subscribe(ROOM_MESSAGES, MY_MESSAGES, wait=wait)

    def subscribe_typing(self, rid: str, wait: bool = True) -> str:
        """Typing in a room, legacy form: `stream-notify-room` events, channel `<rid>/typing`, data `[username, bool]`."""
        return self.subscribe("stream-notify-room", f"{rid}/typing", wait=wait)

    def subscribe_user_activity(self, rid: str, wait: bool = True) -> str:
        """What users are doing in a room (current servers): channel `<rid>/user-activity`, data
        `[username, ["user-typing"], {}]` (an empty list: stopped); `event.typed` is an `Activity`."""
        return self.subscribe("stream-notify-room", f"{rid}/user-activity", wait=wait)

    def subscribe_deleted_messages(self, rid: str, wait: bool = True) -> str:
        """Messages deleted in a room: channel `<rid>/deleteMessage`, data `[{"_id"}]`."""
        return self.subscribe("stream-notify-room", f"{rid}/deleteMessage", wait=wait)

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

    def subscribe_presence(self, *user_ids: str) -> str:
        """Status changes of these users: `stream-user-presence` events, channel the user's id."""
        return self.subscribe("stream-user-presence", "", {"added": list(user_ids)})

    def _subscribe_own(self, what: str) -> str:
        if not self.user_id:
            raise ConfigurationError("not logged in yet: wait for rtsync.connected")
        return self.subscribe("stream-notify-user", f"{self.user_id}/{what}")

    @staticmethod
    def room_message(event: Event) -> Message:
        """The message carried by a `stream-room-messages` event (the same as `event.typed`)."""
        from .models import Message

        return Message.model_validate(event.data)

    @staticmethod
    def notification(event: Event) -> Notification:
        """The same as `event.typed` for a `<uid>/notification` event."""
        from .models import Notification

        return Notification.model_validate(event.data)

    # -- checkpoints --------------------------------------------------------
    def _restore(self, saved: Optional[Dict[str, Any]]) -> None:
        if saved is None:
            return
        rooms = saved.get("rooms")
        if not (saved.get("vendor") == "quickmeet" and isinstance(rooms, dict) and all(
                isinstance(v, list) and len(v) == 2 and isinstance(v[0], int) and isinstance(v[1], list)
                for v in rooms.values())):
            raise ConfigurationError(f"checkpoint {self.checkpoint!r} does not hold QuickMeet's per-room "
                                     "positions; give another one, or clear it to start from now")
        self._done = {rid: (ms, [str(i) for i in ids]) for rid, (ms, ids) in rooms.items()}
        mine = saved.get("mine")
        self.protocol.restore({rid: ms for rid, (ms, _) in self._done.items()},
                              mine if isinstance(mine, int) else None,
                              {i for _, ids in self._done.values() for i in ids})

    def _resume(self) -> None:
        """A lease was (re)gained: fill from the newer, per room, of the checkpoint (another replica
        may have moved it) and what our own callbacks finished (a save may have failed meanwhile)."""
        assert self.checkpoint is not None
        saved = self.checkpoint.load()
        with self._done_lock:
            mine = dict(self._done)
        if saved is not None:
            self._restore(saved)
        with self._done_lock:
            for rid, (ms, ids) in mine.items():
                held = self._done.get(rid)
                if held is None or ms > held[0]:
                    self._done[rid] = (ms, ids)
            merged = dict(self._done)
        self.protocol.restore({rid: ms for rid, (ms, _) in merged.items()},
                              max((ms for ms, _ in merged.values()), default=None),
                              {i for _, ids in merged.values() for i in ids})

    def _delivered(self, event: Event) -> None:
        # What callbacks have finished with, not what was read, is what a checkpoint saves.
        if event.name != ROOM_MESSAGES or not isinstance(event.data, list) or not event.data:
            return
        message = event.data[0]
        ts = message.get("ts") if isinstance(message, dict) else None
        rid = message.get("rid") if isinstance(message, dict) else None
        if not isinstance(ts, datetime) or not isinstance(rid, str):
            return
        ms = encode_ejson(ts)["$date"]
        with self._done_lock:
            held, ids = self._done.get(rid, (-1, []))
            if ms > held:
                self._done[rid] = (ms, [str(message.get("_id"))])
            elif ms == held:
                ids.append(str(message.get("_id")))
            self._writer.dirty = True
        self._writer.due()

    def save_checkpoint(self) -> None:
        """Write each room's newest message callbacks have finished with (no-op without a checkpoint)."""
        self._writer.save()

    def _snapshot(self) -> Dict[str, Any]:
        rooms: Dict[str, Any] = {rid: [ms, ids[-50:]] for rid, (ms, ids) in self._done.items()}
        mine = max((ms for ms, _ in self._done.values()), default=None)
        return {"vendor": "quickmeet", "rooms": rooms, "mine": mine}
