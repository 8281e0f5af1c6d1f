"""A local ActionCable server running a Chatwoot-style RoomChannel, as Voxsig does.

It reproduces the vendor's reference behaviour: `/cable` with subprotocol
negotiation in the client's order, the Origin check (404 `Page not found`),
`welcome`, a `ping` every 3 s from one global timer, subscriptions keyed by
the exact identifier string (a duplicate string is a silent no-op, another
spelling a second subscription), silence for an invalid token or ids (the
dead subscription stays registered), per-token and per-account streams,
`update_presence` answered to the caller's token stream, malformed input only
logged, no replay, and controls: `server_restart()` (ActionCable's restart
frame), `disconnect(reason, reconnect)` (any disconnect frame),
`merge_contact()` (Chatwoot's contact merge: `contact.merged` with the new
token to the old one's stream, after which the old token stops working),
`reject_connections`, `remote_disconnect()`, `drop()`, `restart()`,
`silence()`, `pause_pings`, and the RoomChannel variants `reject_mode`
(forks) and `old_shape` (stream first), with `hold_lookups` to widen the
window before a confirm.

Tokens (override with `users=` / `contacts=`): `good-user-token` is user 1 in
account 1; `good-contact-token` is contact 7 in account 1.

    with VoxsigServer() as server:
        client = rtsync.VoxsigClient("good-user-token", account_id=1, user_id=1, url=server.url)
        server.publish("account_1", "message.created", {"id": 1, "content": "hi"})

The shared shape: `url` (the cable URL, `ws://host:port/cable`),
`publish(stream, event, data)` (a broadcast to a stream), `drop()`, and
`restart()` (the Rails process restarting: every connection cut, its
subscriptions gone; presence lives in Redis and stays). `cable_url` and
`broadcast()` are deprecated aliases of `url` and `publish()`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from aiohttp import WSMsgType, web

from ._server import LocalServer, deprecated

__all__ = ["VoxsigServer"]

log = logging.getLogger("rtsync.testing.voxsig")

SUPPORTED = ("actioncable-v1-json", "actioncable-unsupported")


@dataclass(eq=False)
class _Connection:
    ws: web.WebSocketResponse
    subscriptions: Dict[str, Optional[Tuple[str, ...]]] = field(default_factory=dict)  # identifier -> streams
    owners: Dict[str, Tuple[str, int, int]] = field(default_factory=dict)  # identifier -> (kind, id, account)


class VoxsigServer(LocalServer):
    """The local ActionCable + RoomChannel server. Knobs are attributes tests may change at run time.

    ping_interval: seconds between `ping` frames (3, like Rails).
    check_origin: refuse a foreign Origin with 404, as Rails does.
    reject_mode: answer bad subscriptions with reject_subscription (forks) instead of silence (Chatwoot).
    old_shape: older Chatwoot's `subscribed` (before the lookups moved first), which runs `stream_from pubsub_token` before
        the user/account lookups: the token stream is live before any confirm, so its broadcasts reach
        the client first, and when the lookups fail (bad token, wrong account_id or user_id) it stays
        live with no confirm ever: broadcasts leak to a subscription that is never confirmed. The
        `account_<A>` stream still needs the lookups. With reject_mode too, the reject stops it first.
    hold_lookups: park each new subscription after its early streams and before its lookups (and so
        before its confirm) until `release_lookups()`: a slow `subscribed`, the window in which an
        old-shape token stream delivers ahead of the confirm. Resends of a parked identifier are no-ops.
    reject_connections: refuse every new connection with `disconnect unauthorized, reconnect: false`.
    presence_window: seconds a user counts as online after update_presence (Chatwoot's 20).
    """

    def __init__(
        self,
        *,
        users: Optional[Mapping[str, Tuple[int, Iterable[int]]]] = None,
        contacts: Optional[Mapping[str, Tuple[int, int]]] = None,
        ping_interval: float = 3.0,
        check_origin: bool = True,
        allowed_origins: Iterable[str] = (),
        presence_window: float = 20.0,
        contact_presence_window: float = 90.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        raw_users = users if users is not None else {"good-user-token": (1, [1])}
        self.users = {token: (uid, set(accounts)) for token, (uid, accounts) in raw_users.items()}
        self.contacts = dict(contacts if contacts is not None else {"good-contact-token": (7, 1)})
        self.ping_interval = ping_interval
        self.check_origin = check_origin
        self.allowed_origins = set(allowed_origins)
        self.presence_window = presence_window
        self.contact_presence_window = contact_presence_window
        self.reject_mode = False
        self.old_shape = False
        self.hold_lookups = False
        self.protocols: Tuple[str, ...] = SUPPORTED  # what the server supports, in the client's order
        self.reject_connections = False
        self.pause_pings = False
        self.commands: List[Dict[str, Any]] = []  # every well-formed command, for tests
        self.actions: List[Tuple[str, Dict[str, Any]]] = []  # (identifier, data) of every action performed
        self.dead_streams: Set[str] = set()  # tokens merged away: nothing reaches their streams
        self._connections: Set[_Connection] = set()
        self._online: Dict[Tuple[str, int], float] = {}
        self._pinger: Optional["asyncio.Task[None]"] = None
        self._held: List[Tuple[_Connection, str, Dict[str, Any]]] = []  # subscriptions parked by hold_lookups

    @property
    def url(self) -> str:
        """What `VoxsigClient(url=...)` takes: the cable URL, `ws://host:port/cable`."""
        return f"{self.ws_url}/cable"

    @property
    def cable_url(self) -> str:
        """Deprecated alias of `url`."""
        deprecated(".cable_url", ".url")
        return self.url

    # -- test-thread API ---------------------------------------------------
    def publish(self, stream: str, event: str, data: Mapping[str, Any], account_id: int = 1) -> int:
        """Broadcast one event to a stream, as Chatwoot's `ActionCable.server.broadcast(stream, ...)` does:
        `{event, data + account_id}` goes to every subscription streaming `stream` (a pubsub token, or
        `account_<id>`). Returns how many subscriptions got it."""
        return self.broadcast_raw(stream, {"event": event, "data": {**data, "account_id": account_id}})

    def broadcast(self, stream: str, event: str, data: Mapping[str, Any], account_id: int = 1) -> int:
        """Deprecated alias of `publish()`."""
        deprecated(".broadcast()", ".publish()")
        return self.publish(stream, event, data, account_id)

    def broadcast_raw(self, stream: str, message: Any, count: int = 1) -> int:
        """Broadcast `message` exactly as given, `count` times, to every subscription streaming `stream`."""

        async def go() -> int:
            return await self._broadcast(stream, message, count)

        return self.call(go)

    def subscribers(self, stream: str) -> int:
        return sum(1 for c in self._connections for s in c.subscriptions.values() if s and stream in s)

    @property
    def parked(self) -> int:
        """How many subscriptions `hold_lookups` parked and `release_lookups()` has not yet run."""
        return len(self._held)

    def release_lookups(self) -> int:
        """Run the lookups (then confirm, reject or silence) of every parked subscription; return how many."""

        async def go() -> int:
            held, self._held = self._held, []
            for conn, identifier, params in held:
                await self._lookup(conn, identifier, params)
            return len(held)

        return self.call(go)

    def server_restart(self) -> None:
        """What `ActionCable.server.restart` does: a disconnect frame (reconnect: true), then close 1000.

        This is the restart *frame* a live server sends; `restart()` is the process restarting."""
        self._disconnect_all({"type": "disconnect", "reason": "server_restart", "reconnect": True})

    def disconnect(self, reason: str, reconnect: Any = True) -> None:
        """Send every connection `{"type":"disconnect","reason":reason,"reconnect":reconnect}`, then close 1000
        (`reconnect=None` leaves the flag out, as no Rails version does)."""
        frame: Dict[str, Any] = {"type": "disconnect", "reason": reason}
        if reconnect is not None:
            frame["reconnect"] = reconnect
        self._disconnect_all(frame)

    def merge_contact(self, token: str, new_token: str, contact_id: Optional[int] = None) -> int:
        """Chatwoot's contact merge: the contact of `token` is merged into another (`contact_id`, by default
        the same id) reachable with `new_token`. `contact.merged` with the new `pubsub_token` goes to the old
        token's stream (as Chatwoot's listener sends it to the merged contact's tokens); then the old
        token stops working: its contact inbox is gone, so a subscription with it gets no answer, a
        presence update on it fails, and nothing is broadcast to it any more. Returns how many
        subscriptions got the event."""
        if token not in self.contacts:
            raise ValueError(f"merge_contact() takes a contact token of this server ({sorted(self.contacts)})")
        old_id, account = self.contacts[token]
        merged_id = old_id if contact_id is None else contact_id
        self.contacts[new_token] = (merged_id, account)
        data = {"id": merged_id, "name": "Merged Contact", "email": "merged@example.com", "phone_number": None,
                "identifier": None, "thumbnail": "", "additional_attributes": {}, "custom_attributes": {},
                "pubsub_token": new_token}
        sent = self.publish(token, "contact.merged", data, account_id=account)
        del self.contacts[token]
        self.dead_streams.add(token)
        return sent

    def remote_disconnect(self, style: str = "7.1") -> None:
        """A remote disconnect: Rails 7.1+ sends a frame first, 6.1 just closes with 1000."""
        frame = {"type": "disconnect", "reason": "remote", "reconnect": True} if style == "7.1" else None
        self._disconnect_all(frame)

    def _disconnect_all(self, frame: Optional[Dict[str, Any]]) -> None:
        async def go() -> None:
            for conn in list(self._connections):
                if frame is not None:
                    await conn.ws.send_str(json.dumps(frame))
                await conn.ws.close(code=1000)

        self.call(go)

    async def on_restart(self) -> None:
        # Connections and their subscriptions live in the process; presence (`_online`) is in Redis.
        self._connections.clear()
        self._held.clear()

    # -- the server --------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.router.add_get("/cable", self._cable)
        app.router.add_post("/_rtsync/broadcast", self._control_broadcast)
        app.on_startup.append(self._start_pinger)
        app.on_cleanup.append(self._stop_pinger)

    async def _start_pinger(self, app: web.Application) -> None:
        self._pinger = asyncio.ensure_future(self._ping_forever())

    async def _stop_pinger(self, app: web.Application) -> None:
        if self._pinger is not None:
            self._pinger.cancel()

    async def _ping_forever(self) -> None:
        # One server-wide timer, as in Rails: a new connection's first ping comes 0-3 s after welcome.
        while True:
            await asyncio.sleep(self.ping_interval)
            if self.silent or self.pause_pings:
                continue
            frame = json.dumps({"type": "ping", "message": int(time.time())})
            for conn in list(self._connections):
                if not conn.ws.closed:
                    await conn.ws.send_str(frame)

    def _origin_ok(self, request: web.Request) -> bool:
        if not self.check_origin:
            return True
        origin = request.headers.get("Origin", "")
        return origin in self.allowed_origins or origin in (f"http://{request.host}", f"https://{request.host}")

    async def _cable(self, request: web.Request) -> web.StreamResponse:
        if not self._origin_ok(request):
            log.info("Request origin not allowed: %s", request.headers.get("Origin", ""))
            return web.Response(status=404, text="Page not found", content_type="text/plain")
        ws = web.WebSocketResponse(protocols=self.protocols, autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self.track(ws)
        conn = _Connection(ws)
        try:
            if self.reject_connections:
                await ws.send_str(json.dumps({"type": "disconnect", "reason": "unauthorized", "reconnect": False}))
                await ws.close(code=1000)
                return ws
            self._connections.add(conn)
            await ws.send_str(json.dumps({"type": "welcome"}))
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._command(conn, msg.data)
        finally:
            self._connections.discard(conn)
            self.untrack(ws)
        return ws

    async def _command(self, conn: _Connection, text: str) -> None:
        try:
            command = json.loads(text)
            if not isinstance(command, dict):
                raise TypeError("not an object")
            identifier = command["identifier"]
            if not isinstance(identifier, str):
                raise TypeError("no implicit conversion of Hash into String")
            params = json.loads(identifier)
        except (ValueError, TypeError, KeyError) as exc:
            log.info("Could not execute command from %r [%s]", text[:80], exc)
            return
        self.commands.append(command)
        kind = command.get("command")
        if kind == "subscribe":
            await self._subscribe(conn, identifier, params)
        elif kind == "message":
            await self._message(conn, identifier, command.get("data"))
        elif kind == "unsubscribe":
            conn.subscriptions.pop(identifier, None)
            conn.owners.pop(identifier, None)
        else:
            log.info("Received unrecognized command in %r", command)

    async def _subscribe(self, conn: _Connection, identifier: str, params: Dict[str, Any]) -> None:
        if identifier in conn.subscriptions:
            return  # the same string again: silently ignored, even for a dead or parked subscription
        if params.get("channel") != "RoomChannel":
            log.info("Subscription class not found: %r", params.get("channel"))
            return
        token = params.get("pubsub_token")
        # Registered before the lookups, as Rails does, so a resend is a no-op whatever they find.
        # Old shape: `stream_from pubsub_token` comes first and is live from here on.
        conn.subscriptions[identifier] = (token,) if self.old_shape and isinstance(token, str) else None
        if self.hold_lookups:
            self._held.append((conn, identifier, params))
            return
        await self._lookup(conn, identifier, params)

    async def _lookup(self, conn: _Connection, identifier: str, params: Dict[str, Any]) -> None:
        if conn.ws.closed or identifier not in conn.subscriptions:
            return  # gone or unsubscribed while parked
        owner = self._authorize(params)
        if owner is None:
            if self.reject_mode:
                # `reject` runs `unsubscribed` and stops every stream before the frame goes out.
                del conn.subscriptions[identifier]
                await conn.ws.send_str(json.dumps({"identifier": identifier, "type": "reject_subscription"}))
                return
            # Chatwoot: RecordNotFound, logged, nothing sent; an old-shape token stream stays live.
            log.info("Could not execute command ... RecordNotFound")
            return
        kind, who, account = owner
        token = params["pubsub_token"]
        streams = (token, f"account_{account}") if kind == "user" else (token,)
        conn.subscriptions[identifier] = streams
        conn.owners[identifier] = owner
        # Chatwoot broadcasts presence inside `subscribed`; it races the stream and is lost. So: nothing.
        await conn.ws.send_str(json.dumps({"identifier": identifier, "type": "confirm_subscription"}))

    def _authorize(self, params: Dict[str, Any]) -> Optional[Tuple[str, int, int]]:
        token = params.get("pubsub_token")
        if token in self.users:
            uid, accounts = self.users[token]
            try:
                if int(params.get("user_id", -1)) != uid or int(params.get("account_id", -1)) not in accounts:
                    return None
            except (TypeError, ValueError):
                return None
            return ("user", uid, int(params["account_id"]))
        if token in self.contacts and not params.get("user_id"):
            cid, account = self.contacts[token]
            return ("contact", cid, account)
        return None

    async def _message(self, conn: _Connection, identifier: str, data: Any) -> None:
        streams = conn.subscriptions.get(identifier)
        if not streams:
            log.info("Unable to find subscription with identifier: %s", identifier)
            return
        if not isinstance(data, str):
            log.info("Could not execute command [TypeError - data must be a JSON string]")
            return
        try:
            decoded = json.loads(data)
            action = decoded.get("action")
        except (ValueError, AttributeError):
            return
        self.actions.append((identifier, decoded))
        if action != "update_presence":
            log.info("Unable to process RoomChannel#%s", action)
            return
        owner = conn.owners.get(identifier)
        if owner is None or streams[0] in self.dead_streams:
            # An old-shape subscription whose lookups failed, or a token merged away: the lookups fail here.
            log.info("Could not execute command ... RecordNotFound")
            return
        kind, who, account = owner
        now = time.time()
        self._online[(kind, who)] = now
        users = {str(uid): "online" for (k, uid), t in self._online.items()
                 if k == "user" and now - t < self.presence_window}
        payload: Dict[str, Any] = {"account_id": account, "users": users}
        if kind == "user":
            payload["contacts"] = {str(cid): "online" for (k, cid), t in self._online.items()
                                   if k == "contact" and now - t < self.contact_presence_window}
        await self._broadcast(streams[0], {"event": "presence.update", "data": payload})

    async def _broadcast(self, stream: str, message: Any, count: int = 1) -> int:
        if stream in self.dead_streams:
            return 0  # nothing names a merged-away token any more
        sent = 0
        for conn in list(self._connections):
            for identifier, streams in conn.subscriptions.items():
                if streams and stream in streams and not conn.ws.closed:
                    frame = json.dumps({"identifier": identifier, "message": message})
                    if self.silent:
                        continue
                    for _ in range(count):
                        await conn.ws.send_str(frame)
                    sent += 1
        return sent

    async def _control_broadcast(self, request: web.Request) -> web.StreamResponse:
        """Broadcast from another process: POST JSON `{stream, message, count}` (benchmarks, demos)."""
        body = await request.json()
        sent = await self._broadcast(body["stream"], body["message"], int(body.get("count", 1)))
        return web.json_response({"subscriptions": sent})
