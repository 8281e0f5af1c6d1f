"""A local Dialpad: the websocket and subscription REST API, expiring token URLs, and the event socket.

It reproduces the vendor's reference behaviour: REST on one base URL (Bearer
or `?apikey=`; a wrong key is 401), integer ids, cursor pages, subscriptions
(create, list, get, PATCH, DELETE) nesting their `websocket`, per-op rate
limits (250/min create, 1200/min others, 20/s in all) answered with 429 and
Retry-After; every create/GET issues a NEW `websocket_url` (`/events/<jwt>`,
ES256 under a key made per server, `typ: vnd.dialpad.websocket+jwt`,
`exp = iat + token_lifetime`, 3600 s by default); the socket checks the token
at the upgrade (bad or expired: 403, or an accepted socket closed with 1008)
and is closed with 1000 (or 1001, or a TCP drop) when the token expires.
Frames are plain JSON, or HS256 JWTs (claims = the event) when the websocket
has a secret (PATCH changes it); no replay; RFC 6455 pings are answered,
except while `silence()` is on (a half-open link). Other controls:
`rate_limit(n)` (the next n REST calls get 429), `expire_now()`, `drop()`,
`restart()`; `call_sequence()` makes one call's ringing, connected and hangup
events.

The shared shape: `url` (the REST base URL the client's `url=` takes; its
socket URLs come from there), `publish(event)` (one event, as a subscription
delivers it: see there), `drop()`, and `restart()` (the process restarting:
every socket cut; websockets, subscriptions and issued URLs are stored and
stay valid). `emit(event)` is a deprecated alias of `publish(event, route=True)`.

    with DialpadServer(api_keys={"key"}) as server:
        client = rtsync.DialpadClient("key", url=server.url)
        server.publish(call_event("ringing"))
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Deque, Dict, Iterable, List, Optional, Set, Tuple

import jwt
from aiohttp import WSMsgType, web
from cryptography.hazmat.primitives.asymmetric import ec

from ._server import LocalServer, deprecated, hs256_jws
from .dialpad_events import (
    KINDS,
    agent_status_event,
    call_event,
    call_sequence,
    changelog_event,
    contact_event,
    invalid,
    kind_of,
    sms_event,
    wants,
)

__all__ = ["DialpadServer", "agent_status_event", "call_event", "call_sequence", "changelog_event", "contact_event",
           "sms_event"]

_JWS = hs256_jws()  # signs with the websocket's secret as given, however short, without PyJWT's warning


@dataclass
class _Websocket:
    id: int
    secret: Optional[str] = None
    sockets: Set[web.WebSocketResponse] = field(default_factory=set)


class DialpadServer(LocalServer):
    """The local Dialpad. Knobs are attributes tests may change at run time.

    token_lifetime: seconds each issued websocket_url stays valid (3600).
    expiry_close: how a socket ends at expiry: "close" (1000), "close-1001" or "drop" (TCP reset).
    refusal: how a bad or expired URL is refused: "403" at the upgrade, or "close-1008" after it.
    refuse_urls: refuse every event-socket URL (a revoked endpoint).
    limits: REST rate limits, `{class: (calls, per seconds)}` for "create", "other" and "global".
    """

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = ("test-api-key",),
        token_lifetime: float = 3600.0,
        expiry_close: str = "close",
        refusal: str = "403",
        page_size: int = 2,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.api_keys = set(api_keys)
        self.token_lifetime = token_lifetime
        self.expiry_close = expiry_close
        self.refusal = refusal
        self.page_size = page_size
        self.limits: Dict[str, Tuple[int, float]] = {"create": (250, 60.0), "other": (1200, 60.0), "global": (20, 1.0)}
        self._calls: Dict[str, Deque[float]] = defaultdict(deque)
        self.rest_calls: List[str] = []  # "METHOD /path" of every REST call, for tests
        self.refuse_urls = False  # refuse every event-socket URL, even fresh ones
        self.retry_after = 1
        self._limited = 0
        # URL tokens are ES256 as in production, under a key made for this server.
        self._signing_key = ec.generate_private_key(ec.SECP256R1())
        self._websockets: Dict[int, _Websocket] = {}
        self._transports: Dict[web.WebSocketResponse, Any] = {}
        self._scopes: Dict[web.WebSocketResponse, str] = {}  # socket -> "*" or "<kind>:<subscription id>"
        self._subscriptions: Dict[str, Dict[int, Dict[str, Any]]] = {}
        self._next = itertools.count(1000)
        self._jti = itertools.count(1)
        self._revoked_upto = 0  # tokens with a jti up to this are refused (expire_now)

    @property
    def url(self) -> str:
        """What `DialpadClient(url=...)` takes: the REST base URL (the client calls `/api/v2/...` under it)."""
        return self.http_url

    # -- test-thread API ---------------------------------------------------
    def publish(self, event: Dict[str, Any], websocket_id: Optional[int] = None, count: int = 1, *,
                route: bool = False) -> int:
        """Send one event (a call, sms, agent_status, ... payload, as `call_event()` makes) the way a
        subscription delivers it: one frame per socket, plain JSON, or an HS256 JWT of the event when the
        websocket has a secret. Returns how many sockets got it.

        By default it goes to every live socket (of websocket `websocket_id` if given), `count` times,
        whatever subscriptions exist: a client needs none to hear it. `route=True` routes it as Dialpad
        does instead: only to the sockets of websockets with an enabled subscription of the event's kind
        whose `call_states` and `direction` match (websocket-wide URLs, or that subscription's own)."""
        if route:
            return self._route(event, websocket_id, count)

        async def go() -> int:
            sent = 0
            for ws in self._websockets.values():
                if websocket_id is not None and ws.id != websocket_id:
                    continue
                frame = self._frame(ws, event)
                for sock in list(ws.sockets):
                    if not sock.closed and not self.silent:
                        for _ in range(count):
                            await sock.send_str(frame)
                        sent += 1
            return sent

        return self.call(go)

    def emit(self, event: Dict[str, Any]) -> int:
        """Deprecated alias of `publish(event, route=True)`."""
        deprecated(".emit()", ".publish(route=True)")
        return self.publish(event, route=True)

    def _route(self, event: Dict[str, Any], websocket_id: Optional[int], count: int) -> int:
        async def go() -> int:
            kind, sent = kind_of(event), 0
            for ws in self._websockets.values():
                if websocket_id is not None and ws.id != websocket_id:
                    continue
                matching = {f"{kind}:{sub['id']}" for sub in self._subscriptions.get(kind, {}).values()
                            if _int(sub.get("endpoint_id")) == ws.id and wants(sub, event)}
                frame = self._frame(ws, event)
                for sock in list(ws.sockets):
                    scope = self._scopes.get(sock, "*")
                    if (matching if scope == "*" else scope in matching) and not sock.closed and not self.silent:
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

    @staticmethod
    def _frame(ws: _Websocket, event: Dict[str, Any]) -> str:
        if not ws.secret:
            return json.dumps(event)
        claims = json.dumps(event, separators=(",", ":")).encode()
        return _JWS.encode(claims, ws.secret, algorithm="HS256", headers={"typ": "JWT"})

    def live_sockets(self) -> int:
        return sum(len(ws.sockets) for ws in self._websockets.values())

    def endpoints(self) -> List[int]:
        """The ids of the websocket endpoints that exist now (created and not deleted), for leak checks."""
        return list(self._websockets)

    def subscriptions(self, kind: Optional[str] = None) -> List[Dict[str, Any]]:
        """The event subscriptions that exist now (of `kind`, or all), each with its `kind`."""
        return [{**sub, "kind": k} for k, subs in self._subscriptions.items() if kind in (None, k)
                for sub in subs.values()]

    async def on_restart(self) -> None:
        # Sockets live in the process; websockets, subscriptions, rate-limit windows and keys are stored.
        for ws in self._websockets.values():
            ws.sockets.clear()
        self._transports.clear()
        self._scopes.clear()

    # -- REST --------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/v2/websockets", _answers_bad_bodies(self._websockets_root))
        app.router.add_route("*", "/api/v2/websockets/{id}", _answers_bad_bodies(self._websocket_item))
        app.router.add_route("*", "/api/v2/subscriptions/{kind}", _answers_bad_bodies(self._subscriptions_root))
        app.router.add_route("*", "/api/v2/subscriptions/{kind}/{id}", _answers_bad_bodies(self._subscription_item))
        app.router.add_get("/events/{token}", self._events)

    def _check(self, request: web.Request) -> Optional[web.Response]:
        self.rest_calls.append(f"{request.method} {request.path}")
        create = request.method == "POST" and request.path == "/api/v2/websockets"
        if self._limited:
            self._limited -= 1
            return self._too_many(self.retry_after)
        for name in ("global", "create" if create else "other"):
            wait = self._over(name)
            if wait:
                return self._too_many(wait)
        auth = request.headers.get("Authorization", "")
        key = auth[7:] if auth.startswith("Bearer ") else request.query.get("apikey", "")
        if key not in self.api_keys:
            return web.json_response({"error": {"code": 401, "message": "Unauthorized"}}, status=401)
        return None

    def _over(self, name: str) -> int:
        """Seconds to wait if one more call of this class would break its limit, else 0 (and count it)."""
        allowed, per = self.limits[name]
        calls, now = self._calls[name], time.monotonic()
        while calls and now - calls[0] >= per:
            calls.popleft()
        if len(calls) >= allowed:
            return max(1, int(per - (now - calls[0]) + 0.999))
        calls.append(now)
        return 0

    @staticmethod
    def _too_many(retry_after: int) -> web.Response:
        return web.json_response({"error": {"code": 429, "message": "Too many requests"}}, status=429,
                                 headers={"Retry-After": str(retry_after)})

    def _proto(self, ws: _Websocket, scope: str = "*") -> Dict[str, Any]:
        now = time.time()
        token = jwt.encode(
            {"sub": f"endpoint:{ws.id}:{scope}", "iss": self.http_url, "iat": int(now),
             "exp": now + self.token_lifetime, "jti": str(next(self._jti))},
            self._signing_key, algorithm="ES256", headers={"typ": "vnd.dialpad.websocket+jwt"})
        proto: Dict[str, Any] = {"id": ws.id, "websocket_url": f"{self.ws_url}/events/{token}"}
        if ws.secret:
            proto["signature"] = {"algo": "HS256", "secret": ws.secret, "type": "jwt"}
        return proto

    async def _body(self, request: web.Request) -> Dict[str, Any]:
        """The JSON object a request carries; `_BadBody` (answered 400) when it is anything else."""
        try:
            body = await request.json() if request.can_read_body else {}
        except (ValueError, RecursionError):
            raise _BadBody("the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise _BadBody("the body must be a JSON object")
        return body

    async def _websockets_root(self, request: web.Request) -> web.StreamResponse:
        refused = self._check(request)
        if refused:
            return refused
        if request.method == "POST":
            body = await self._body(request)
            if not _secret_ok(body.get("secret")):
                return _bad("secret must be a string")
            ws = _Websocket(next(self._next), body.get("secret"))
            self._websockets[ws.id] = ws
            return web.json_response(self._proto(ws))
        return web.json_response({"items": [self._proto(ws) for ws in self._websockets.values()]})

    async def _websocket_item(self, request: web.Request) -> web.StreamResponse:
        refused = self._check(request)
        if refused:
            return refused
        ws = self._websockets.get(_int(request.match_info["id"]))
        if ws is None:
            return web.json_response({"error": {"code": 404, "message": "Not found"}}, status=404)
        if request.method == "PATCH":
            secret = (await self._body(request)).get("secret")
            if not _secret_ok(secret):
                return _bad("secret must be a string")
            ws.secret = secret
        elif request.method == "DELETE":
            answer = self._proto(ws)
            del self._websockets[ws.id]
            for sock in list(ws.sockets):  # its URLs die with it [assumed]
                await sock.close(code=1000)
            return web.json_response(answer)
        return web.json_response(self._proto(ws))

    async def _subscriptions_root(self, request: web.Request) -> web.StreamResponse:
        refused = self._check(request)
        if refused:
            return refused
        kind = request.match_info["kind"]
        if kind not in KINDS:
            return web.json_response({"error": {"code": 404, "message": "Not found"}}, status=404)
        subs = self._subscriptions.setdefault(kind, {})
        if request.method == "POST":
            body = await self._body(request)
            ws = self._websockets.get(_int(body.get("endpoint_id")))
            if ws is None:
                return web.json_response({"error": {"code": 400, "message": "unknown endpoint_id"}}, status=400)
            problem = invalid(kind, body)
            if problem:
                return web.json_response({"error": {"code": 400, "message": problem}}, status=400)
            sub = {"id": next(self._next), "enabled": True, **body}
            subs[sub["id"]] = sub
            return web.json_response({**sub, "websocket": self._proto(ws, f"{kind}:{sub['id']}")})
        items = list(subs.values())
        start = max(0, _int(request.query.get("cursor", 0)))
        page: Dict[str, Any] = {"items": items[start:start + self.page_size]}
        if start + self.page_size < len(items):
            page["cursor"] = str(start + self.page_size)
        return web.json_response(page)

    async def _subscription_item(self, request: web.Request) -> web.StreamResponse:
        refused = self._check(request)
        if refused:
            return refused
        subs = self._subscriptions.get(request.match_info["kind"], {})
        sub = subs.get(_int(request.match_info["id"]))
        if sub is None:
            return web.json_response({"error": {"code": 404, "message": "Not found"}}, status=404)
        if request.method == "PATCH":
            changed = {**sub, **{k: v for k, v in (await self._body(request)).items() if k != "id"}}
            problem = invalid(request.match_info["kind"], changed)
            if problem or _int(changed.get("endpoint_id")) not in self._websockets:
                return _bad(problem or "unknown endpoint_id")
            sub.update(changed)
        elif request.method == "DELETE":
            del subs[sub["id"]]
        ws = self._websockets.get(_int(sub["endpoint_id"]))
        if ws is None:  # its websocket was deleted: no URL to issue [assumed]
            return web.json_response(sub)
        return web.json_response({**sub, "websocket": self._proto(ws, f"{request.match_info['kind']}:{sub['id']}")})

    # -- the event socket --------------------------------------------------
    async def _events(self, request: web.Request) -> web.StreamResponse:
        try:
            # exp is checked here, not by PyJWT, which truncates it to whole seconds: fast tests use
            # sub-second lifetimes.
            claims = jwt.decode(request.match_info["token"], self._signing_key.public_key(), algorithms=["ES256"],
                                options={"verify_exp": False})
            ws = self._websockets[int(str(claims["sub"]).split(":")[1])]
            if float(claims["exp"]) <= time.time():
                raise ValueError("expired")
            if self.refuse_urls or int(claims.get("jti", 0)) <= self._revoked_upto:
                raise ValueError("revoked")
        except (jwt.PyJWTError, KeyError, ValueError, IndexError):
            if self.refusal != "close-1008":
                return web.Response(status=403, text="Forbidden")
            refused = web.WebSocketResponse()
            await refused.prepare(request)
            await refused.close(code=1008, message=b"invalid or expired token")
            return refused
        sock = web.WebSocketResponse(autoping=False, max_msg_size=0)
        await sock.prepare(request)
        self.track(sock)
        ws.sockets.add(sock)
        self._scopes[sock] = str(claims["sub"]).split(":", 2)[2]
        self._transports[sock] = request.transport
        expiry = asyncio.ensure_future(self._expire(sock, float(claims["exp"])))
        try:
            async for msg in sock:  # client text is ignored
                if msg.type == WSMsgType.PING and not self.silent:
                    await sock.pong(msg.data)
        finally:
            expiry.cancel()
            self._transports.pop(sock, None)
            self._scopes.pop(sock, None)
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
            await sock.close(code=1001 if self.expiry_close == "close-1001" else 1000)


def _int(value: Any) -> int:
    """An id from a path or a body (Dialpad's are integers, its examples strings); -1 if it is neither."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


class _BadBody(Exception):
    pass


def _answers_bad_bodies(handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                        ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except _BadBody as exc:
            return _bad(str(exc))

    return handle


def _bad(message: str) -> web.Response:
    return web.json_response({"error": {"code": 400, "message": message}}, status=400)


def _secret_ok(secret: Any) -> bool:
    return secret is None or isinstance(secret, str)
