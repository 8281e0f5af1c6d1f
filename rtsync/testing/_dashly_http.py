"""The Dashly local server's endpoints: WebSocket, long poll, short poll and /pub as nginx answers them; test controls.

Each handler checks the request the way the Nginx Push Stream Module does
(method, raw query args, `auth_token`, channel names) and serves from the
`ChannelStore`; `DashlyServer` owns the knobs they read at each request.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple
from urllib.parse import unquote

from aiohttp import WSMsgType, web

from ._dashly_store import ChannelStore, Message, Subscriber, http_date, parse_cursor

if TYPE_CHECKING:
    from .dashly import DashlyServer

__all__ = ["DashlyEndpoints"]

_BACKTRACK = re.compile(r"^(.*)\.b(\d+)$")
_HEADERS = {
    "Expires": "Thu, 01 Jan 1970 00:00:01 GMT",
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Content-Type": "application/json",
}


class DashlyEndpoints:
    """The server's aiohttp handlers, and the waiting long polls that `drop()` must cut."""

    def __init__(self, server: DashlyServer, store: ChannelStore) -> None:
        self.server = server
        self.store = store
        self.pollers: Set[asyncio.Transport] = set()

    def abort_pollers(self) -> int:
        """Reset every waiting long poll's TCP connection; return how many were still open."""
        count = 0
        for transport in list(self.pollers):
            if not transport.is_closing():
                transport.abort()
                count += 1
        self.pollers.clear()
        return count

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/websocket/{chs:.*}", self._websocket)
        app.router.add_route("*", "/longpoll/{chs:.*}", self._longpoll)
        app.router.add_route("*", "/shortpoll/{chs:.*}", self._shortpoll)
        app.router.add_route("*", "/pub", self._pub)
        # Test controls (not part of the module): for a server running in another process.
        app.router.add_post("/_rtsync/blast", self._control_blast)
        app.router.add_post("/_rtsync/stream", self._control_stream)
        app.on_response_prepare.append(self._date)
        if self.server.ping_channel_interval:
            app.on_startup.append(self._start_ping_channel)

    async def _date(self, request: web.Request, response: web.StreamResponse) -> None:
        # nginx stamps `Date` from the clock it stamps message times with; aiohttp's own real-time
        # Date would disagree with an injected clock, and a client's first cursor comes from it.
        response.headers["Date"] = http_date(self.server.clock())

    async def _start_ping_channel(self, app: web.Application) -> None:
        async def beat() -> None:
            while True:
                await asyncio.sleep(self.server.ping_channel_interval)
                self.store.publish("ping", "{}")

        task = asyncio.ensure_future(beat())
        app.on_cleanup.append(lambda _app: _cancel(task))

    def _parse(self, request: web.Request, mode: str) -> Tuple[Optional[web.Response], Any, Any]:
        """Check method, token and channels; return (error response, channels, cursor)."""
        server = self.server
        server.requests.append(request.raw_path)
        if len(request.method) + len(request.raw_path) + len(" HTTP/1.1\r\n") + 1 > server.max_uri:
            return _too_long(), None, None
        if request.method != "GET":
            return web.Response(status=405, headers={"Allow": "GET"}), None, None
        query = _raw_query(request.raw_path)
        if query.get("auth_token") not in server.tokens:
            return web.Response(status=403), None, None
        raw = request.raw_path.split("?", 1)[0][len(mode) + 2:]
        names = [unquote(part) for part in raw.split("/") if part]
        channels: List[Tuple[str, Optional[int]]] = []
        for name in names:
            found = _BACKTRACK.match(name)
            channels.append((found.group(1), int(found.group(2))) if found else (name, None))
        problem = _channel_problem([c for c, _ in channels])
        if problem:
            return _explained(*problem), channels, None
        now = server.clock()
        for name, _ in channels:
            self.store.collect(name, now)
        return None, channels, parse_cursor(query)

    async def _shortpoll(self, request: web.Request) -> web.StreamResponse:
        error, channels, cursor = self._parse(request, "shortpoll")
        if error is not None:
            return error
        found = self.store.backlog(channels, cursor)
        if found:
            return _messages(found)
        headers = dict(_HEADERS)
        if cursor is not None:  # echo the request's cursor, as the module does
            query = _raw_query(request.raw_path)
            headers["Last-Modified"] = unquote(query.get("time", ""))
            headers["Etag"] = f"W/{cursor[1]}"
        return web.Response(status=304, headers=headers)

    async def _longpoll(self, request: web.Request) -> web.StreamResponse:
        error, channels, cursor = self._parse(request, "longpoll")
        if error is not None:
            return error
        found = self.store.backlog(channels, cursor)
        if found:
            return _messages(found)
        server = self.server
        loop = asyncio.get_running_loop()
        got: "asyncio.Future[Message]" = loop.create_future()

        def deliver(msg: Message) -> None:
            if not got.done() and not server.silent:
                got.set_result(msg)

        sub = Subscriber([c for c, _ in channels], deliver)
        self.store.subscribe(sub)
        transport = request.transport
        if transport is not None:
            self.pollers.add(transport)
        try:
            msg = await asyncio.wait_for(got, server.longpoll_timeout)
        except asyncio.TimeoutError:
            if server.silent:
                await asyncio.sleep(3600)  # a silent server answers nothing at all
            headers = dict(_HEADERS, **{"Last-Modified": http_date(server.clock()), "Etag": "W/0"})
            return web.Response(status=304, headers=headers)
        finally:
            self.store.subscribers.discard(sub)
            if transport is not None:
                self.pollers.discard(transport)
        if msg.id == -2:
            headers = dict(_HEADERS, **{"Last-Modified": http_date(server.clock()), "Etag": "W/0"})
            return web.Response(status=200, headers=headers, text=msg.text)
        return _messages([msg])

    async def _pub(self, request: web.Request) -> web.StreamResponse:
        ids = _raw_query(request.raw_path).get("id")
        if not ids:
            return _explained(400, "No channel id provided.")
        channels = [unquote(c) for c in ids.split("/") if c]
        if request.method == "DELETE":
            body = (await request.text()) or None
            deleted = [self.store.delete(ch, body) for ch in channels]
            if not any(deleted):
                return _explained(404, "Channel not found.")
            return web.Response(status=200, headers={"X-Nginx-PushStream-Explain": "Channel deleted."})
        if request.method != "POST":
            return web.Response(status=405, headers={"Allow": "GET, POST, DELETE"})
        body = await request.text()
        if not body:
            return _explained(400, "Empty post requests are not allowed.")
        for ch in channels:
            self.store.publish(ch, body)
        last = channels[-1]
        return web.json_response({
            "channel": last,
            "published_messages": self.store.ids.get(last, 0),
            "stored_messages": len(self.store.messages.get(last, ())),
            "subscribers": self.store.subscriber_count(last),
        })

    async def _control_blast(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        self.store.blast(q["id"], int(q["n"]), q.get("body", '{"n":0}'))
        return web.Response(text="ok")

    async def _control_stream(self, request: web.Request) -> web.StreamResponse:
        """Publish `n` messages at `rate`/s, each carrying its publish time (`{"ts": ...}`)."""
        q = request.query
        channel, count, rate = q["id"], int(q["n"]), float(q["rate"])

        async def run() -> None:
            start = time.perf_counter()
            for i in range(count):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                self.store.publish(channel, json.dumps({"i": i, "ts": time.time()}))

        asyncio.ensure_future(run())
        return web.Response(text="ok")

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        error, channels, cursor = self._parse(request, "websocket")
        if error is not None and channels is None:  # 403, 405, 414: before any upgrade
            return error
        # No subprotocol, no extensions; we read PING frames ourselves to check their payload.
        ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=0)
        await ws.prepare(request)
        if error is not None:  # channel problems come after the 101, as a 1008 close
            reason = json.dumps({"http_status": error.status, "explain": error.headers.get(
                "X-Nginx-PushStream-Explain", "")})
            await ws.close(code=1008, message=reason.encode())
            return ws
        server = self.server
        server.track(ws)
        transport = request.transport
        assert transport is not None
        queue: "asyncio.Queue[Optional[Message]]" = asyncio.Queue()

        def deliver(msg: Message) -> None:
            queue.put_nowait(msg)

        deliver.raw = lambda data: None if server.silent else transport.write(data)  # type: ignore[attr-defined]
        sub = Subscriber([c for c, _ in channels], deliver)
        for msg in self.store.backlog(channels, cursor):
            await ws.send_str(msg.text)
        self.store.subscribe(sub)
        tasks = [asyncio.ensure_future(self._writer(ws, queue, sub, transport))]
        if server.ping_interval:
            tasks.append(asyncio.ensure_future(self._pinger(ws)))
        if server.connection_ttl:
            tasks.append(asyncio.ensure_future(self._ttl(transport, server.connection_ttl)))
        try:
            async for frame in ws:
                if frame.type == WSMsgType.PING:
                    if not _utf8(frame.data):
                        transport.abort()  # the module's utf-8 check: no close frame, just gone
                        break
                    if not server.silent:
                        await ws.pong(b"")  # always an empty payload, whatever we were sent
                elif frame.type == WSMsgType.BINARY:
                    await ws.close()
                    break
                # text frames are ignored (publishing over WebSocket is off)
        finally:
            server.close_codes.append(ws.close_code if ws.closed else None)
            self.store.subscribers.discard(sub)
            server.untrack(ws)
            for task in tasks:
                task.cancel()
        return ws

    async def _writer(self, ws: web.WebSocketResponse, queue: "asyncio.Queue[Optional[Message]]",
                      sub: Subscriber, transport: asyncio.Transport) -> None:
        while True:
            msg = await queue.get()
            if msg is None or self.server.silent:
                continue
            await ws.send_str(msg.text)
            if msg.id == -2 and not sub.channels:
                _bare_close(transport)  # its last channel is gone
                return

    async def _pinger(self, ws: web.WebSocketResponse) -> None:
        while not ws.closed:
            await asyncio.sleep(self.server.ping_interval)
            if not self.server.silent and not ws.closed:
                await ws.ping(b"")

    async def _ttl(self, transport: asyncio.Transport, ttl: float) -> None:
        await asyncio.sleep(ttl)
        _bare_close(transport)


def _bare_close(transport: asyncio.Transport) -> None:
    """The module's close frame carries no status code: `0x88 0x00`, then the TCP close."""
    transport.write(b"\x88\x00")
    transport.close()


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


async def _cancel(task: "asyncio.Future[Any]") -> None:
    task.cancel()


def _raw_query(raw_path: str) -> Dict[str, str]:
    """Query args split by hand: values stay percent-encoded (the caller decodes `%XX`, never `+`)."""
    out: Dict[str, str] = {}
    if "?" in raw_path:
        for part in raw_path.split("?", 1)[1].split("&"):
            key, _, value = part.partition("=")
            out.setdefault(key, value)
    token = out.get("auth_token")
    if token is not None:
        out["auth_token"] = unquote(token)
    return out


def _channel_problem(names: List[str]) -> Optional[Tuple[int, str]]:
    if not names:
        return 400, "No channel id provided."
    if len(names) > 50:
        return 403, "Subscribed too many channels."
    for name in names:
        if "*" in name or name == "ALL":
            return 403, "Channel id not authorized for this method."
        if len(name) > 200:
            return 400, "Channel id is too large."
    return None


def _too_long() -> web.Response:
    # nginx's own page: the request line did not fit its client header buffer
    body = ("<html>\r\n<head><title>414 Request-URI Too Large</title></head>\r\n<body>\r\n"
            "<center><h1>414 Request-URI Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n")
    return web.Response(status=414, text=body, content_type="text/html")


def _explained(status: int, text: str) -> web.Response:
    return web.Response(status=status, headers={"X-Nginx-PushStream-Explain": text})


def _messages(found: List[Message]) -> web.Response:
    newest = max(found, key=lambda m: (m.epoch, m.tag))
    headers = dict(_HEADERS, **{"Last-Modified": http_date(newest.epoch), "Etag": f"W/{newest.tag}"})
    return web.Response(status=200, headers=headers, text="".join(m.text for m in found))
