"""A local Doshii App WebSocket v3 server: heartbeat pongs, the idle close, emit frames, and fault controls.

It follows protocols/doshii.md section 11 (its [assumed] defaults included):
`/app/socket/v3` and `/app/socket` with `?auth=<base64(client id)>` (an
unknown id gets HTTP 401 at the upgrade, or 403, or an accepted socket closed
with 1008, by `auth_failure`), optional `deviceId`; `{"doshii":{"pong":X,
"version":"3.2.0"}}` for every ping; the socket closed with 1000 `idle_timeout`
seconds after the client's last frame (90 s); events as `{"emit":[name,
payload]}` (or the `event`/`type` shapes, or binary frames, for tolerance
tests); no replay. Controls: `emit()`, `server_ping()`, `ignore_pings`,
`drop()`, `restart()`, `silence()`, `close_all(code)`.

    with DoshiiServer(client_ids={"my-client-id"}) as server:
        client = rtsync.DoshiiClient("my-client-id", url=server.socket_url)
        server.emit("order_created", {"id": "3", "status": "pending"})
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from typing import Any, Dict, Iterable, List, Optional, Set
from urllib.parse import unquote

from aiohttp import WSMsgType, web

from ._server import LocalServer

__all__ = ["DoshiiServer"]

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
    """The local Doshii socket server. Knobs are attributes tests may change at run time.

    client_ids: accepted client ids (the `auth` parameter is base64 of one).
    idle_timeout: close with 1000 this long after the client's last frame (90 s).
    auth_failure: 401, 403, or "close-1008" for an unknown client id.
    hold_until_ping: deliver no event before the connection's first ping.
    ignore_pings: stop answering pings (a half-dead server, for stale detection).
    """

    api_version = "3.2.0"

    def __init__(
        self,
        *,
        client_ids: Iterable[str] = ("test-client-id",),
        idle_timeout: float = 90.0,
        auth_failure: Any = 401,
        hold_until_ping: bool = False,
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
        self._pinged: Set[web.WebSocketResponse] = set()

    @property
    def socket_url(self) -> str:
        return f"{self.ws_url}/app/socket/v3"

    # -- test-thread API ---------------------------------------------------
    def emit(self, name: str, payload: Any, shape: str = "emit", count: int = 1) -> int:
        """Send an event to every connection; `shape` is emit, event, type or binary. Returns how many."""
        if shape == "emit" or shape == "binary":
            frame = json.dumps({"emit": [name, payload]})
        else:
            frame = json.dumps({shape: name, "data": payload})

        async def go() -> int:
            sent = 0
            for ws in list(self.websockets):
                if self.silent or ws.closed or (self.hold_until_ping and ws not in self._pinged):
                    continue
                for _ in range(count):
                    if shape == "binary":
                        await ws.send_bytes(frame.encode())
                    else:
                        await ws.send_str(frame)
                sent += 1
            return sent

        return self.call(go)

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

    # -- the server --------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.router.add_get("/app/socket/v3", self._socket)
        app.router.add_get("/app/socket", self._socket)
        app.router.add_post("/_rtsync/emit", self._control_emit)

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

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        known = self._client_id(request) in self.client_ids
        if not known and self.auth_failure in (401, 403):
            return web.Response(status=self.auth_failure, text="Unauthorized")
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        if not known:
            await ws.close(code=1008, message=b"invalid auth")
            return ws
        self.track(ws)
        self.device_ids.append(request.query.get("deviceId"))
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
            for _ in range(int(body.get("count", 1))):
                await ws.send_str(frame)
        return web.json_response({"sockets": len(self.websockets)})
