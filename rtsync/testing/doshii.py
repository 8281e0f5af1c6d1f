"""A local Doshii App WebSocket v3 server: heartbeat pongs, the idle close, emit frames, devices, and fault controls.

It reproduces the vendor's reference behaviour, filling the gaps the vendor's
documentation leaves with stated assumptions (marked [assumed] below):
`/app/socket/v3` and `/app/socket` with `?auth=<base64(client id)>` (an
unknown id gets HTTP 401 at the upgrade, or 403, or an accepted socket closed
with 1008, by `auth_failure`), optional `deviceId`; `{"doshii":{"pong":X,
"version":"3.2.0"}}` for every ping; the socket closed with 1000 `idle_timeout`
seconds after the client's last frame (90 s, [assumed]); events as
`{"emit":[name, payload]}` (or the `event`/`type` shapes, or binary frames,
for tolerance tests); no replay. Controls: `publish()`, `server_ping()`,
`ignore_pings`, `drop()`, `restart()`, `silence()`, `close_all(code)`.

The device registry (`POST`, `GET`, `PUT`, `DELETE /partner/v3/devices`)
wants `Authorization: Bearer <HS256 JWT over {clientId, timestamp}>` signed
with the client's secret (`client_secrets`), its timestamp within 10 minutes
of now; else 401 `{"message": ...}`. Versions are opaque strings ("1", "2",
...), moved on by every PUT; a PUT with another version is 409, an unknown
device 404. A socket opened with `deviceId=<doshiiId>` gets only the events
its device lets through ([assumed]): AND across the device's non-empty lists,
OR within one, an empty list no restriction. The fields matched are
[assumed]: `events` against the event name, `locationIds` against the
payload's `locationId`, `terminals` against its `posTerminalId` and
`channels` against its `channel`; a payload without the field fails a
non-empty list. The device is looked up at every event, so an update applies
to open sockets and a deleted device stops filtering. An unknown deviceId (or
another client's) is ignored ([assumed]); `reject_unknown_device` answers the
upgrade with HTTP 400 instead. Sockets per client id are unlimited and every
event goes to each socket whose filter lets it through ([assumed]).

Resources behind the thin events (`add_resource(path, body, location_id)`,
which returns the `uri` an event carries) are served at `GET
/partner/v3/<path>` to a valid Bearer token; a location-scoped one wants the
`doshii-location-id` header (missing: 400, another location: 404 [assumed]),
an unknown path is 404.

The shared shape: `url` (the socket URL, `ws://host:port/app/socket/v3`; the
REST base is `rest_url`), `publish(name, payload)` (an emit), `drop()`, and
`restart()` (the process restarting: every socket cut; registered devices are
stored and stay). `socket_url` and `emit()` are deprecated aliases of `url`
and `publish()`.

    with DoshiiServer(client_ids={"my-client-id"}) as server:
        client = rtsync.DoshiiClient("my-client-id", url=server.url, rest_url=server.rest_url)
        server.publish("order_created", {"id": "3", "status": "pending"})
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import secrets
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple, Union
from urllib.parse import unquote

import jwt
from aiohttp import WSMsgType, web

from ._doshii_rest import LIST_FIELDS, Resources, device_matches
from ._doshii_rest import device_fields as _device_fields
from ._doshii_rest import error as _error
from ._doshii_rest import now as _now
from ._server import LocalServer, deprecated, hs256_jws

__all__ = ["DoshiiServer", "device_matches"]

_JWS = hs256_jws()  # checks tokens with the client's secret as given, however short, without PyJWT's warning

SAMPLE_EVENTS = [
    ("order_created", {"id": "3", "status": "pending", "locationId": "aH43yx2", "posRef": "X-1234-5678",
                       "uri": "https://sandbox.doshii.co/partner/v3/orders/3"}),
    ("transaction_created", {"id": "1354", "orderId": "123", "locationId": "aH43yx2", "status": "requested",
                             "posRef": "o987684", "posTerminalId": "23fd46",
                             "uri": "https://sandbox.doshii.co/partner/v3/transactions/1354"}),
    ("order_updated", {"id": "3", "status": "accepted", "locationId": "aH43yx2",
                       "uri": "https://sandbox.doshii.co/partner/v3/orders/3"}),
]

class DoshiiServer(LocalServer):
    """The local Doshii socket server and device registry. Knobs are attributes tests may change at run time.

    client_ids: accepted client ids (the `auth` parameter is base64 of one).
    idle_timeout: close with 1000 this long after the client's last frame (90 s).
    auth_failure: 401, 403, or "close-1008" for an unknown client id.
    hold_until_ping: deliver no event before the connection's first ping.
    ignore_pings: stop answering pings (a half-dead server, for stale detection).
    client_secrets: client id -> secret, for the REST Bearer tokens (none: every REST call is 401).
    token_validity: how old (or how far ahead) a token's timestamp may be (600 s).
    reject_unknown_device: HTTP 400 at the upgrade for an unknown deviceId, instead of ignoring it.
    devices: the registry, doshiiId -> device as the REST API returns it.
    bearer_tokens: every Bearer token received, for secrets tests.
    """

    api_version = "3.2.0"

    def __init__(
        self,
        *,
        client_ids: Iterable[str] = ("test-client-id",),
        idle_timeout: float = 90.0,
        auth_failure: Any = 401,
        hold_until_ping: bool = False,
        client_secrets: Optional[Mapping[str, str]] = None,
        reject_unknown_device: bool = False,
        token_validity: float = 600.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.client_ids = set(client_ids)
        self.idle_timeout = idle_timeout
        self.auth_failure = auth_failure
        self.hold_until_ping = hold_until_ping
        self.ignore_pings = False
        self.pings: List[Dict[str, Any]] = []  # every heartbeat received, for tests
        self.device_ids: List[Optional[str]] = []
        self.client_secrets: Dict[str, str] = dict(client_secrets or {})
        self.reject_unknown_device = reject_unknown_device
        self.token_validity = token_validity
        self.devices: Dict[str, Dict[str, Any]] = {}
        self.bearer_tokens: List[str] = []
        self.resources = Resources()
        self._owners: Dict[str, str] = {}  # doshiiId -> the client id that registered it
        self._versions = itertools.count(1)
        self._pinged: Set[web.WebSocketResponse] = set()
        self._sockets: Dict[web.WebSocketResponse, Tuple[str, Optional[str]]] = {}  # -> (client id, deviceId)

    @property
    def url(self) -> str:
        """What `DoshiiClient(url=...)` takes: the socket URL, `ws://host:port/app/socket/v3`."""
        return f"{self.ws_url}/app/socket/v3"

    @property
    def socket_url(self) -> str:
        """Deprecated alias of `url`."""
        deprecated(".socket_url", ".url")
        return self.url

    @property
    def rest_url(self) -> str:
        """What `DoshiiClient(rest_url=...)` takes: the REST API base, `http://host:port/partner/v3`."""
        return f"{self.http_url}/partner/v3"

    # -- test-thread API ---------------------------------------------------
    def publish(self, name: str, payload: Any, shape: str = "emit", count: int = 1,
                client_id: Optional[str] = None) -> int:
        """Emit one event, as Doshii does: `{"emit": [name, payload]}` to every connection (of `client_id` if
        given) whose device filter lets it through, `count` times. `shape` is "emit", or "event", "type"
        or "binary" for tolerance tests. Returns to how many connections it went."""
        if shape == "emit" or shape == "binary":
            frame = json.dumps({"emit": [name, payload]})
        else:
            frame = json.dumps({shape: name, "data": payload})

        async def go() -> int:
            sent = 0
            for ws in list(self.websockets):
                if self.silent or ws.closed or (self.hold_until_ping and ws not in self._pinged):
                    continue
                if not self._wants(ws, name, payload, client_id):
                    continue
                for _ in range(count):
                    if shape == "binary":
                        await ws.send_bytes(frame.encode())
                    else:
                        await ws.send_str(frame)
                sent += 1
            return sent

        return self.call(go)

    def emit(self, name: str, payload: Any, shape: str = "emit", count: int = 1,
             client_id: Optional[str] = None) -> int:
        """Deprecated alias of `publish()`."""
        deprecated(".emit()", ".publish()")
        return self.publish(name, payload, shape, count, client_id)

    def add_resource(self, path: str, body: Mapping[str, Any], location_id: Optional[str] = None) -> str:
        """Serve `body` at `GET /partner/v3/<path>` (tied to `location_id`, if given); returns its uri."""
        self.resources.add(path, dict(body), location_id)
        return f"{self.rest_url}/{path.lstrip('/')}"

    def send_raw(self, text: str) -> None:
        async def go() -> None:
            for ws in list(self.websockets):
                await ws.send_str(text)

        self.call(go)

    def server_ping(self, value: int = 1539153237588) -> None:
        self.send_raw(json.dumps({"doshii": {"ping": value, "version": self.api_version}}))

    def close_all(self, code: int = 1000, message: str = "") -> None:
        async def go() -> None:
            for ws in list(self.websockets):
                await ws.close(code=code, message=message.encode())

        self.call(go)

    async def on_restart(self) -> None:
        # Sockets live in the process; devices (and the ids and versions they carry) are stored.
        self._pinged.clear()
        self._sockets.clear()

    # -- the server --------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.router.add_get("/app/socket/v3", self._socket)
        app.router.add_get("/app/socket", self._socket)
        app.router.add_post("/_rtsync/emit", self._control_emit)
        app.router.add_post("/partner/v3/devices", self._register_device)
        app.router.add_get("/partner/v3/devices", self._list_devices)
        app.router.add_get("/partner/v3/devices/{doshii_id}", self._get_device)
        app.router.add_put("/partner/v3/devices/{doshii_id}", self._update_device)
        app.router.add_delete("/partner/v3/devices/{doshii_id}", self._delete_device)
        app.router.add_get("/partner/v3/{path:.+}", self._resource)  # after the devices: they match first

    def _client_id(self, request: web.Request) -> Optional[str]:
        raw = request.raw_path.split("?", 1)[1] if "?" in request.raw_path else ""
        for part in raw.split("&"):
            key, _, value = part.partition("=")
            if key == "auth":
                try:
                    return base64.b64decode(unquote(value), validate=True).decode()
                except (binascii.Error, UnicodeDecodeError):
                    return None
        return None

    def _owns(self, client_id: Optional[str], device_id: Optional[str]) -> bool:
        return device_id is not None and client_id is not None and self._owners.get(device_id) == client_id

    def _wants(self, ws: web.WebSocketResponse, name: str, payload: Any, client_id: Optional[str]) -> bool:
        owner, device_id = self._sockets.get(ws, (None, None))
        if client_id is not None and owner != client_id:
            return False
        if not self._owns(owner, device_id):
            return True  # no device, or one this server does not know: no filter ([assumed])
        assert device_id is not None
        return device_matches(self.devices[device_id], name, payload)

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        client_id = self._client_id(request)
        known = client_id in self.client_ids
        if not known and self.auth_failure in (401, 403):
            return web.Response(status=self.auth_failure, text="Unauthorized")
        device_id = request.query.get("deviceId")
        if known and device_id is not None and self.reject_unknown_device and not self._owns(client_id, device_id):
            return web.json_response({"message": "Unknown deviceId"}, status=400)
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        if not known or client_id is None:
            await ws.close(code=1008, message=b"invalid auth")
            return ws
        self.track(ws)
        self._sockets[ws] = (client_id, device_id)
        self.device_ids.append(device_id)
        last_frame = [time.monotonic()]
        idle = asyncio.ensure_future(self._idle_close(ws, last_frame))
        try:
            async for msg in ws:
                last_frame[0] = time.monotonic()
                if msg.type == WSMsgType.TEXT:
                    await self._frame(ws, msg.data)
        finally:
            idle.cancel()
            self._pinged.discard(ws)
            self._sockets.pop(ws, None)
            self.untrack(ws)
        return ws

    async def _frame(self, ws: web.WebSocketResponse, text: str) -> None:
        try:
            body = json.loads(text).get("doshii")
        except (ValueError, AttributeError):
            return
        if not isinstance(body, dict):
            return
        if "ping" in body:
            self.pings.append(body)
            self._pinged.add(ws)
            if not self.ignore_pings and not self.silent:
                await ws.send_str(json.dumps({"doshii": {"pong": body["ping"], "version": self.api_version}}))

    async def _idle_close(self, ws: web.WebSocketResponse, last_frame: List[float]) -> None:
        # Doshii "treats the connection as inactive" without heartbeats; the timeout is [assumed].
        while not ws.closed:
            left = last_frame[0] + self.idle_timeout - time.monotonic()
            if left <= 0:
                await ws.close(code=1000, message=b"inactive")
                return
            await asyncio.sleep(left)

    async def _control_emit(self, request: web.Request) -> web.StreamResponse:
        """Emit from another process: POST JSON `{name, payload, count}` (benchmarks)."""
        body = await request.json()
        frame = json.dumps({"emit": [body["name"], body["payload"]]})
        for ws in list(self.websockets):
            if not self._wants(ws, body["name"], body["payload"], None):
                continue
            for _ in range(int(body.get("count", 1))):
                await ws.send_str(frame)
        return web.json_response({"sockets": len(self.websockets)})

    # -- the device registry (REST) ------------------------------------------
    def _authorize(self, request: web.Request) -> Union[str, web.Response]:
        """The client id a valid Bearer token names, or the 401 to answer."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _error(401, "Missing Bearer token")
        self.bearer_tokens.append(token)
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            return _error(401, "Malformed token")
        client_id = claims.get("clientId")
        if not isinstance(client_id, str) or client_id not in self.client_secrets:
            return _error(401, "Unknown clientId")
        try:
            _JWS.decode(token, self.client_secrets[client_id], algorithms=["HS256"])
        except jwt.InvalidTokenError:
            return _error(401, "Invalid token signature")
        stamp = claims.get("timestamp")
        if not isinstance(stamp, (int, float)) or isinstance(stamp, bool) \
                or abs(time.time() - stamp) > self.token_validity:
            return _error(401, "Token expired: the timestamp must be within 10 minutes of now")
        return client_id

    async def _body(self, request: web.Request) -> Union[Dict[str, Any], web.Response]:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "The body must be JSON")
        return body if isinstance(body, dict) else _error(400, "The body must be a JSON object")

    async def _register_device(self, request: web.Request) -> web.StreamResponse:
        client_id = self._authorize(request)
        if isinstance(client_id, web.Response):
            return client_id
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        fields = _device_fields({**{key: [] for key in LIST_FIELDS}, **body}, required=("name", "ref"))
        if isinstance(fields, web.Response):
            return fields
        doshii_id = secrets.token_hex(5)
        now = _now()
        self.devices[doshii_id] = {"doshiiId": doshii_id, **fields, "version": str(next(self._versions)),
                                   "createdAt": now, "updatedAt": now}
        self._owners[doshii_id] = client_id
        return web.json_response(self.devices[doshii_id])

    def _device(self, request: web.Request) -> Union[Tuple[str, Dict[str, Any]], web.Response]:
        client_id = self._authorize(request)
        if isinstance(client_id, web.Response):
            return client_id
        doshii_id = request.match_info["doshii_id"]
        if not self._owns(client_id, doshii_id):
            return _error(404, "Device not found")
        return doshii_id, self.devices[doshii_id]

    async def _resource(self, request: web.Request) -> web.StreamResponse:
        client_id = self._authorize(request)
        if isinstance(client_id, web.Response):
            return client_id
        return self.resources.answer(request, request.raw_path[len("/partner/v3"):].split("?", 1)[0])

    async def _list_devices(self, request: web.Request) -> web.StreamResponse:
        client_id = self._authorize(request)
        if isinstance(client_id, web.Response):
            return client_id
        return web.json_response([d for i, d in self.devices.items() if self._owners.get(i) == client_id])

    async def _get_device(self, request: web.Request) -> web.StreamResponse:
        found = self._device(request)
        return found if isinstance(found, web.Response) else web.json_response(found[1])

    async def _update_device(self, request: web.Request) -> web.StreamResponse:
        found = self._device(request)
        if isinstance(found, web.Response):
            return found
        _, device = found
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        if "version" not in body:
            return _error(400, "version is required")
        if str(body["version"]) != device["version"]:
            return _error(409, "Version conflict: the device has changed")
        fields = _device_fields(body, required=())
        if isinstance(fields, web.Response):
            return fields
        device.update(fields, version=str(next(self._versions)), updatedAt=_now())
        return web.json_response(device)

    async def _delete_device(self, request: web.Request) -> web.StreamResponse:
        found = self._device(request)
        if isinstance(found, web.Response):
            return found
        doshii_id, _ = found
        del self.devices[doshii_id]
        del self._owners[doshii_id]
        return web.json_response({"message": "The requested device has been removed"})

