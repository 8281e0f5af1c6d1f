"""A local Dialpad: the websocket and subscription REST API, expiring token URLs, and the event socket.

It follows protocols/dialpad.md section 10: REST on one base URL (Bearer or
`?apikey=`; a wrong key is 401), integer ids, cursor pages, subscriptions
nesting their `websocket`; every create/GET issues a NEW `websocket_url`
(`/events/<jwt>`, `exp = iat + token_lifetime`, 3600 s by default); the socket
checks the token at the upgrade (bad or expired: 403) and is closed with 1000
when the token expires; events go to every live socket of the websocket, as
plain JSON, or as HS256 JWTs (claims = the event) when it has a secret; no
replay; RFC 6455 pings are answered, except while `silence()` is on (a
half-open link). Controls: `publish()`, `rate_limit(n)` (the next n REST
calls get 429 with Retry-After), `drop()`, `restart()`, `silence()`.

The URL token is HS256 here (as in the vendor spec's example); production
uses ES256, which clients never verify anyway.

    with DialpadServer(api_keys={"key"}) as server:
        client = rtsync.DialpadClient("key", base_url=server.http_url)
        server.publish(call_event("ringing"))
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Set

import jwt
from aiohttp import WSMsgType, web

from ._server import LocalServer

__all__ = ["DialpadServer", "agent_status_event", "call_event", "sms_event"]

_ids = itertools.count(5071678191976448)


def call_event(state: str, call_id: Optional[int] = None, **extra: Any) -> Dict[str, Any]:
    """A call event with the field set of the vendor's real fixture; ms timestamps."""
    now = int(time.time() * 1000)
    return {
        "call_id": call_id or next(_ids), "state": state, "direction": "inbound",
        "date_started": now - 5000, "date_rang": now if state == "ringing" else None,
        "date_connected": now if state == "connected" else None,
        "date_ended": now if state == "hangup" else None, "event_timestamp": now,
        "external_number": "+15102609745", "internal_number": "+15106666687",
        "contact": {"email": "", "id": 6131436978913280, "name": "Alameda, CA", "phone": "+15105105100",
                    "type": "local"},
        "target": {"email": "", "id": 5527348325810176, "name": "Oasis Legal Services", "type": "office"},
        "duration": 0, "total_duration": 0, "labels": [], **extra,
    }


def sms_event(text: str = "Hello", **extra: Any) -> Dict[str, Any]:
    now = int(time.time() * 1000)
    return {"id": next(_ids), "direction": "inbound", "from_number": "+15109260499",
            "to_number": ["+15106666687"], "text": text, "message_status": "pending", "mms": False,
            "created_date": now, "event_timestamp": now, "contact": {}, "target": {"type": "office"}, **extra}


def agent_status_event(status: str = "available", **extra: Any) -> Dict[str, Any]:
    now = int(time.time() * 1000)
    return {"availability_status": "open", "call_center_ids": ["4"], "date": now, "event_timestamp": now,
            "on_duty_status": status, "target": {"id": next(_ids), "name": "Ann", "type": "user"}, **extra}


@dataclass
class _Websocket:
    id: int
    secret: Optional[str] = None
    sockets: Set[web.WebSocketResponse] = field(default_factory=set)


class DialpadServer(LocalServer):
    """The local Dialpad. Knobs are attributes tests may change at run time.

    token_lifetime: seconds each issued websocket_url stays valid (3600).
    expiry_close: how a socket ends at expiry: "close" (1000) or "drop" (TCP reset).
    refuse_urls: answer 403 to every event-socket URL (a revoked endpoint).
    """

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = ("test-api-key",),
        token_lifetime: float = 3600.0,
        expiry_close: str = "close",
        page_size: int = 2,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.api_keys = set(api_keys)
        self.token_lifetime = token_lifetime
        self.expiry_close = expiry_close
        self.page_size = page_size
        self.rest_calls: List[str] = []  # "METHOD /path" of every REST call, for tests
        self.refuse_urls = False  # refuse every event-socket URL, even fresh ones
        self.retry_after = 1
        self._limited = 0
        self._signing_key = "rtsync-local-dialpad-url-signing-key-0123456789"
        self._websockets: Dict[int, _Websocket] = {}
        self._transports: Dict[web.WebSocketResponse, Any] = {}
        self._subscriptions: Dict[str, Dict[int, Dict[str, Any]]] = {}
        self._next = itertools.count(1000)
        self._jti = itertools.count(1)
        self._revoked_upto = 0  # tokens with a jti up to this are refused (expire_now)

    # -- test-thread API ---------------------------------------------------
    def publish(self, event: Dict[str, Any], websocket_id: Optional[int] = None, count: int = 1) -> int:
        """Send an event to every live socket (of one websocket, or all); return how many sockets."""

        async def go() -> int:
            sent = 0
            for ws in self._websockets.values():
                if websocket_id is not None and ws.id != websocket_id:
                    continue
                frame = (jwt.encode(event, ws.secret, algorithm="HS256", headers={"typ": "JWT"})
                         if ws.secret else json.dumps(event))
                for sock in list(ws.sockets):
                    if not sock.closed and not self.silent:
                        for _ in range(count):
                            await sock.send_str(frame)
                        sent += 1
            return sent

        return self.call(go)

    def send_raw(self, text: str) -> None:
        async def go() -> None:
            for sock in list(self.websockets):
                await sock.send_str(text)

        self.call(go)

    def rate_limit(self, calls: int, retry_after: int = 1) -> None:
        """Answer the next `calls` REST requests with 429 and this Retry-After."""
        self._limited, self.retry_after = calls, retry_after

    def expire_now(self) -> None:
        """Expire every URL issued so far and end their sockets as expiry does (`expiry_close`)."""

        async def go() -> None:
            self._revoked_upto = next(self._jti)
            for ws in self._websockets.values():
                for sock in list(ws.sockets):
                    await self._end(sock)

        self.call(go)

    def live_sockets(self) -> int:
        return sum(len(ws.sockets) for ws in self._websockets.values())

    async def on_restart(self) -> None:
        for ws in self._websockets.values():
            ws.sockets.clear()

    # -- REST --------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/v2/websockets", self._websockets_root)
        app.router.add_route("*", "/api/v2/websockets/{id}", self._websocket_item)
        app.router.add_route("*", "/api/v2/subscriptions/{kind}", self._subscriptions_root)
        app.router.add_route("*", "/api/v2/subscriptions/{kind}/{id}", self._subscription_item)
        app.router.add_get("/events/{token}", self._events)

    def _check(self, request: web.Request) -> Optional[web.Response]:
        self.rest_calls.append(f"{request.method} {request.path}")
        if self._limited:
            self._limited -= 1
            return web.json_response({"error": {"code": 429, "message": "Too many requests"}}, status=429,
                                     headers={"Retry-After": str(self.retry_after)})
        auth = request.headers.get("Authorization", "")
        key = auth[7:] if auth.startswith("Bearer ") else request.query.get("apikey", "")
        if key not in self.api_keys:
            return web.json_response({"error": {"code": 401, "message": "Unauthorized"}}, status=401)
        return None

    def _proto(self, ws: _Websocket, scope: str = "*") -> Dict[str, Any]:
        now = time.time()
        token = jwt.encode(
            {"sub": f"endpoint:{ws.id}:{scope}", "iss": self.http_url, "iat": int(now),
             "exp": now + self.token_lifetime, "jti": str(next(self._jti))},
            self._signing_key, algorithm="HS256", headers={"typ": "vnd.dialpad.websocket+jwt"})
        proto: Dict[str, Any] = {"id": ws.id, "websocket_url": f"{self.ws_url}/events/{token}"}
        if ws.secret:
            proto["signature"] = {"algo": "HS256", "secret": ws.secret, "type": "jwt"}
        return proto

    async def _body(self, request: web.Request) -> Dict[str, Any]:
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            body = {}
        return body if isinstance(body, dict) else {}

    async def _websockets_root(self, request: web.Request) -> web.StreamResponse:
        refused = self._check(request)
        if refused:
            return refused
        if request.method == "POST":
            body = await self._body(request)
            ws = _Websocket(next(self._next), body.get("secret"))
            self._websockets[ws.id] = ws
            return web.json_response(self._proto(ws))
        return web.json_response({"items": [self._proto(ws) for ws in self._websockets.values()]})

    async def _websocket_item(self, request: web.Request) -> web.StreamResponse:
        refused = self._check(request)
        if refused:
            return refused
        ws = self._websockets.get(int(request.match_info["id"]))
        if ws is None:
            return web.json_response({"error": {"code": 404, "message": "Not found"}}, status=404)
        if request.method == "PATCH":
            ws.secret = (await self._body(request)).get("secret")
        elif request.method == "DELETE":
            del self._websockets[ws.id]
        return web.json_response(self._proto(ws))

    async def _subscriptions_root(self, request: web.Request) -> web.StreamResponse:
        refused = self._check(request)
        if refused:
            return refused
        kind = request.match_info["kind"]
        subs = self._subscriptions.setdefault(kind, {})
        if request.method == "POST":
            body = await self._body(request)
            ws = self._websockets.get(int(body.get("endpoint_id", -1)))
            if ws is None:
                return web.json_response({"error": {"code": 400, "message": "unknown endpoint_id"}}, status=400)
            sub = {"id": next(self._next), "enabled": True, **body}
            subs[sub["id"]] = sub
            return web.json_response({**sub, "websocket": self._proto(ws, f"{kind}:{sub['id']}")})
        items = list(subs.values())
        start = int(request.query.get("cursor", 0))
        page: Dict[str, Any] = {"items": items[start:start + self.page_size]}
        if start + self.page_size < len(items):
            page["cursor"] = str(start + self.page_size)
        return web.json_response(page)

    async def _subscription_item(self, request: web.Request) -> web.StreamResponse:
        refused = self._check(request)
        if refused:
            return refused
        sub = self._subscriptions.get(request.match_info["kind"], {}).get(int(request.match_info["id"]))
        if sub is None:
            return web.json_response({"error": {"code": 404, "message": "Not found"}}, status=404)
        ws = self._websockets[int(sub["endpoint_id"])]
        return web.json_response({**sub, "websocket": self._proto(ws, f"{request.match_info['kind']}:{sub['id']}")})

    # -- the event socket --------------------------------------------------
    async def _events(self, request: web.Request) -> web.StreamResponse:
        try:
            # exp is checked here, not by PyJWT, which truncates it to whole seconds: fast tests use
            # sub-second lifetimes.
            claims = jwt.decode(request.match_info["token"], self._signing_key, algorithms=["HS256"],
                                options={"verify_exp": False})
            ws = self._websockets[int(str(claims["sub"]).split(":")[1])]
            if float(claims["exp"]) <= time.time():
                raise ValueError("expired")
            if self.refuse_urls or int(claims.get("jti", 0)) <= self._revoked_upto:
                raise ValueError("revoked")
        except (jwt.PyJWTError, KeyError, ValueError, IndexError):
            return web.Response(status=403, text="Forbidden")
        sock = web.WebSocketResponse(autoping=False, max_msg_size=0)
        await sock.prepare(request)
        self.track(sock)
        ws.sockets.add(sock)
        self._transports[sock] = request.transport
        expiry = asyncio.ensure_future(self._expire(sock, float(claims["exp"])))
        try:
            async for msg in sock:  # client text is ignored
                if msg.type == WSMsgType.PING and not self.silent:
                    await sock.pong(msg.data)
        finally:
            expiry.cancel()
            self._transports.pop(sock, None)
            ws.sockets.discard(sock)
            self.untrack(sock)
        return sock

    async def _expire(self, sock: web.WebSocketResponse, exp: float) -> None:
        await asyncio.sleep(max(0.0, exp - time.time()))
        await self._end(sock)

    async def _end(self, sock: web.WebSocketResponse) -> None:
        transport = self._transports.get(sock)
        if self.expiry_close == "drop" and transport is not None:
            transport.abort()
        else:
            await sock.close(code=1000)
