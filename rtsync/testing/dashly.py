"""A local Nginx Push Stream server shaped like Dashly's: WebSocket, long poll, short poll and /pub on one port.

It reproduces the vendor's reference behaviour: the JSON template with the
body inserted unescaped, per-channel ids, a global tag per second, `(time,
tag)` cursors read from query args only (`%20` decoded, `+` not), backlog
grouped per channel in URL order, concatenated long-poll bodies, `304` on
timeout, reserved id -2 on delete, empty PINGs, the TCP drop on a non-UTF-8
ping, close 1008 with a JSON reason, 403 on a bad token, channel garbage
collection (ids restart at 1), and fault controls: `drop()`, `restart()`,
`silence()` and `reorder` (live delivery out of tag order, as two nginx
workers do).

    with DashlyServer(tokens={"secret"}) as server:
        client = rtsync.DashlyClient("secret", channels=["ch.1"], url=server.url)
        server.publish("ch.1", {"hello": 1})

The shared shape: `url` (the base URL the client's `url=` takes: it picks the
transport's path and scheme itself), `publish(channels, body)`, `drop()` and
`restart()` (nginx restarting: the in-memory store is gone, so ids start
again at 1). `rtsync serve dashly --port N` serves it from the command line.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import struct
import time
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from typing import (
    Any,
    Callable,
    Deque,
    Dict,
    Iterable,
    List,
    Optional,
    Set,
    Tuple,
    Union,
)
from urllib.parse import unquote

from aiohttp import WSMsgType, web

from ._server import LocalServer

__all__ = ["DashlyServer"]

_BACKTRACK = re.compile(r"^(.*)\.b(\d+)$")
_HEADERS = {
    "Expires": "Thu, 01 Jan 1970 00:00:01 GMT",
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Content-Type": "application/json",
}


@dataclass
class _Message:
    id: int
    channel: str
    tag: int
    epoch: int
    stored_at: float
    text: str  # the rendered envelope

    def after(self, cursor: Optional[Tuple[int, int]]) -> bool:
        return cursor is None or (self.epoch, self.tag) > cursor


def _http_date(epoch: float) -> str:
    return formatdate(epoch, usegmt=True)


def _render(msg_id: int, channel: str, body: str, tag: int, epoch: int) -> str:
    # Plain text substitution, no escaping, exactly like push_stream_message_template.
    return (
        f'{{"id":{msg_id},"channel":"{channel}","message":{body},'
        f'"tag":"{tag}","time":"{_http_date(epoch)}"}}'
    )


def _frame(text: str) -> bytes:
    """One unmasked FIN text frame, pre-encoded (so the benchmark measures the client, not us)."""
    payload = text.encode("utf-8")
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x81, 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 127, n)
    return head + payload


class _Subscriber:
    """One WebSocket or waiting long poll: the channels it wants and how to hand it a message."""

    def __init__(self, channels: List[str], deliver: Callable[[_Message], None]) -> None:
        self.channels = set(channels)
        self.deliver = deliver


class DashlyServer(LocalServer):
    """The local push stream server. Every knob is an attribute tests may change at run time.

    tokens: accepted `auth_token` values (403 otherwise).
    longpoll_timeout: seconds a long poll is held before `304` (25 like Dashly).
    ping_interval: seconds between empty WebSocket PINGs (0 = none).
    store_size / message_ttl: per-channel store (100 messages, 30 min).
    reorder: deliver live messages in pairs swapped (tag N+1 before N), like two nginx workers.
    ping_channel_interval: publish `{}` to the `ping` channel this often (0 = never).
    connection_ttl: close WebSockets with `0x88 0x00` after this long (None = never).
    channel_gc_after: seconds of inactivity after which an unused channel is forgotten (30).
    clock: wall-clock seconds (injectable): message times, message_ttl and channel GC use it.
    max_uri: longest request line ("GET <target> HTTP/1.1\\r\\n") accepted (8192); a longer one gets
        `414 Request-URI Too Large`, as nginx's 8 KB `large_client_header_buffers` gives.

    Channel GC follows the module's memory cleanup (src/ngx_http_push_stream_module_utils.c,
    `collect_expired_messages_and_empty_channels`): a channel with no stored message left
    (none, or all older than message_ttl), no subscriber, and no publish or subscribe for
    `channel_gc_after` seconds is removed, so its next message gets id 1 again (the global
    tag goes on). As with `push_stream_channel_inactivity_time`, only a publish and a new
    subscriber (WebSocket or waiting long poll) count as activity: a short poll is not a
    subscriber and keeps nothing alive. The module sweeps on a timer; here the check is
    lazy, made for a channel whenever something touches it (a publish, any subscriber
    request naming it, a DELETE, `last_id()`) and for every channel by `collect_garbage()`.
    Nothing can observe a channel in between, so ids come out as with the timer, and tests
    that move `clock` forward need not wait for a sweep.
    Forgotten channels are appended to `collected`.
    """

    max_request_line = 64 * 1024  # aiohttp reads long lines, so `max_uri` decides, as nginx does

    def __init__(
        self,
        *,
        tokens: Iterable[str] = ("test-token",),
        longpoll_timeout: float = 25.0,
        ping_interval: float = 10.0,
        store_size: int = 100,
        message_ttl: float = 1800.0,
        reorder: bool = False,
        ping_channel_interval: float = 0.0,
        connection_ttl: Optional[float] = None,
        channel_gc_after: float = 30.0,
        clock: Callable[[], float] = time.time,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: Any = None,
    ) -> None:
        super().__init__(host=host, port=port, ssl_context=ssl_context)
        self.tokens = set(tokens)
        self.longpoll_timeout = longpoll_timeout
        self.ping_interval = ping_interval
        self.store_size = store_size
        self.message_ttl = message_ttl
        self.reorder = reorder
        self.ping_channel_interval = ping_channel_interval
        self.connection_ttl = connection_ttl
        self.channel_gc_after = channel_gc_after
        self.clock = clock
        self.requests: List[str] = []  # raw request targets, for tests that check encoding
        self.max_uri = 8192  # nginx's default large_client_header_buffers: 4 8k
        self.close_codes: List[Optional[int]] = []  # how each WebSocket ended (None: no close frame)
        self.collected: List[str] = []  # channels garbage-collected, in order
        self._reset_state()

    def _reset_state(self) -> None:
        self._store: Dict[str, Deque[_Message]] = {}
        self._ids: Dict[str, int] = {}
        self._active: Dict[str, float] = {}  # channel -> clock() of its last publish or subscribe
        self._tag_second = -1
        self._tag = 0
        self._subscribers: Set[_Subscriber] = set()
        self._held: Optional[_Message] = None
        self._pollers: Set[asyncio.Transport] = set()

    async def on_restart(self) -> None:
        self._reset_state()  # nginx keeps messages in shared memory: a restart loses them, ids start at 1

    @property
    def url(self) -> str:
        """What `DashlyClient(url=...)` takes: the server's base URL (the client adds each transport's path)."""
        return self.http_url

    # ------------------------------------------------------------------
    # Test-thread API
    # ------------------------------------------------------------------
    def publish(self, channels: Union[str, Iterable[str]], body: Any) -> List[int]:
        """Publish one message, as `POST /pub?id=<channel>` does: `body` (JSON-encoded unless it is already
        a str) goes to each of `channels` (one name or several). Returns the message id in each channel."""
        text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
        names = [channels] if isinstance(channels, str) else list(channels)

        async def go() -> List[int]:
            return [self._publish(ch, text).id for ch in names]

        return self.call(go)

    def delete(self, channel: str, body: Optional[str] = None) -> bool:
        async def go() -> bool:
            return self._delete(channel, body)

        return self.call(go)

    def last_id(self, channel: str) -> int:
        """The channel's newest id; 0 once it is gone (never used, deleted or garbage-collected)."""

        async def go() -> int:
            self._collect(channel, self.clock())
            return self._ids.get(channel, 0)

        return self.call(go)

    def subscribers(self, channel: str) -> int:
        """How many WebSockets and waiting long polls listen to `channel` right now."""

        async def go() -> int:
            return sum(1 for sub in self._subscribers if channel in sub.channels)

        return self.call(go)

    def collect_garbage(self) -> List[str]:
        """Run the channel GC over every channel now; return the channels it forgot."""

        async def go() -> List[str]:
            now = self.clock()
            return [ch for ch in list(self._ids) if self._collect(ch, now)]

        return self.call(go)

    def blast(self, channel: str, count: int, body: str = '{"n":0}') -> None:
        """Publish `count` messages to `channel` and write them to every WebSocket subscriber in one
        go, as pre-encoded frames (the benchmark's source: the server must not be the bottleneck)."""

        async def go() -> None:
            self._blast_now(channel, count, body)

        self.call(go)

    def _blast_now(self, channel: str, count: int, body: str) -> None:
        frames: Dict[_Subscriber, List[bytes]] = collections.defaultdict(list)
        for _ in range(count):
            msg = self._store_message(channel, body)
            data = _frame(msg.text)
            for sub in self._subscribers:
                if channel in sub.channels and hasattr(sub.deliver, "raw"):
                    frames[sub].append(data)
        for sub, chunks in frames.items():
            sub.deliver.raw(b"".join(chunks))  # type: ignore[attr-defined]

    def inject(self, text: str) -> int:
        """Send `text` as-is (a malformed or hand-made frame) to every WebSocket; return how many."""
        return self.inject_bytes(_frame(text))

    def inject_bytes(self, data: bytes) -> int:
        """Write raw bytes (e.g. a hand-built oversized frame) to every WebSocket's TCP stream."""

        async def go() -> int:
            count = 0
            for sub in self._subscribers:
                if hasattr(sub.deliver, "raw"):
                    sub.deliver.raw(data)
                    count += 1
            return count

        return self.call(go)

    def drop(self) -> int:
        """Cut every connection at the TCP level, WebSockets and waiting long polls alike (no close frame,
        no response). Returns how many."""

        async def go() -> int:
            count = self._abort_all()
            for transport in list(self._pollers):
                if not transport.is_closing():
                    transport.abort()
                    count += 1
            self._pollers.clear()
            return count

        return self.call(go)

    # ------------------------------------------------------------------
    # Store
    # ------------------------------------------------------------------
    def _next_tag(self, epoch: int) -> int:
        if epoch != self._tag_second:
            self._tag_second, self._tag = epoch, 0
        self._tag += 1
        return self._tag

    def _collect(self, channel: str, now: float) -> bool:
        """Forget `channel` if the module's cleanup would: True if it did."""
        if channel not in self._ids:
            return False
        store = self._store.get(channel)
        if store:
            cutoff = now - self.message_ttl
            while store and store[0].stored_at < cutoff:
                store.popleft()  # expired: the module's buffer cleanup frees them the same way
            if store:
                return False
        if now - self._active.get(channel, now) < self.channel_gc_after:
            return False
        if any(channel in sub.channels for sub in self._subscribers):
            return False
        self._store.pop(channel, None)
        self._ids.pop(channel, None)
        self._active.pop(channel, None)
        self.collected.append(channel)
        return True

    def _subscribe(self, sub: _Subscriber) -> None:
        """Register a WebSocket or waiting long poll; subscribing is activity for its channels."""
        now = self.clock()
        for channel in sub.channels:
            self._collect(channel, now)
            self._active[channel] = now
        self._subscribers.add(sub)

    def _store_message(self, channel: str, body: str) -> _Message:
        now = self.clock()
        self._collect(channel, now)
        self._active[channel] = now
        epoch = int(now)
        msg_id = self._ids.get(channel, 0) + 1
        self._ids[channel] = msg_id
        tag = self._next_tag(epoch)
        msg = _Message(msg_id, channel, tag, epoch, now, _render(msg_id, channel, body, tag, epoch))
        store = self._store.setdefault(channel, collections.deque())
        store.append(msg)
        while len(store) > self.store_size:
            store.popleft()
        return msg

    def _publish(self, channel: str, body: str) -> _Message:
        msg = self._store_message(channel, body)
        if self.reorder:
            held, self._held = self._held, None
            if held is None:
                self._held = msg
                loop = asyncio.get_running_loop()
                loop.call_later(0.05, self._release, msg)
                return msg
            self._fanout(msg)
            self._fanout(held)
            return msg
        self._fanout(msg)
        return msg

    def _release(self, msg: _Message) -> None:
        if self._held is msg:
            self._held = None
            self._fanout(msg)

    def _fanout(self, msg: _Message) -> None:
        for sub in list(self._subscribers):
            if msg.channel in sub.channels:
                sub.deliver(msg)

    def _delete(self, channel: str, body: Optional[str]) -> bool:
        self._collect(channel, self.clock())  # a collected channel is not there to delete (404)
        if channel not in self._ids:
            return False
        text = body if body else "Channel deleted"
        deleted = (
            f'{{"id":-2,"channel":"{channel}","message":{text},"tag":"0",'
            f'"time":"Thu, 01 Jan 1970 00:00:00 GMT"}}'
        )
        self._store.pop(channel, None)
        self._ids.pop(channel, None)
        self._active.pop(channel, None)
        for sub in list(self._subscribers):
            if channel in sub.channels:
                sub.deliver(_Message(-2, channel, 0, 0, 0.0, deleted))
                sub.channels.discard(channel)
        return True

    def _backlog(
        self, channels: List[Tuple[str, Optional[int]]], cursor: Optional[Tuple[int, int]]
    ) -> List[_Message]:
        """Stored messages newer than the cursor, grouped per channel in URL order (`.bN` wins)."""
        cutoff = self.clock() - self.message_ttl
        out: List[_Message] = []
        for name, backtrack in channels:
            stored = [m for m in self._store.get(name, ()) if m.stored_at >= cutoff]
            if backtrack is not None:
                out.extend(stored[-backtrack:] if backtrack else [])
            elif cursor is not None:
                out.extend(m for m in stored if m.after(cursor))
        return out

    # ------------------------------------------------------------------
    # HTTP
    # ------------------------------------------------------------------
    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/websocket/{chs:.*}", self._websocket)
        app.router.add_route("*", "/longpoll/{chs:.*}", self._longpoll)
        app.router.add_route("*", "/shortpoll/{chs:.*}", self._shortpoll)
        app.router.add_route("*", "/pub", self._pub)
        # Test controls (not part of the module): for a server running in another process.
        app.router.add_post("/_rtsync/blast", self._control_blast)
        app.router.add_post("/_rtsync/stream", self._control_stream)
        if self.ping_channel_interval:
            app.on_startup.append(self._start_ping_channel)

    async def _start_ping_channel(self, app: web.Application) -> None:
        async def beat() -> None:
            while True:
                await asyncio.sleep(self.ping_channel_interval)
                self._publish("ping", "{}")

        task = asyncio.ensure_future(beat())
        app.on_cleanup.append(lambda _app: _cancel(task))

    def _parse(self, request: web.Request, mode: str) -> Tuple[Optional[web.Response], Any, Any]:
        """Check method, token and channels; return (error response, channels, cursor)."""
        self.requests.append(request.raw_path)
        if len(request.method) + len(request.raw_path) + len(" HTTP/1.1\r\n") + 1 > self.max_uri:
            return _too_long(), None, None
        if request.method != "GET":
            return web.Response(status=405, headers={"Allow": "GET"}), None, None
        query = _raw_query(request.raw_path)
        if query.get("auth_token") not in self.tokens:
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
        now = self.clock()
        for name, _ in channels:
            self._collect(name, now)
        return None, channels, _cursor(query)

    async def _shortpoll(self, request: web.Request) -> web.StreamResponse:
        error, channels, cursor = self._parse(request, "shortpoll")
        if error is not None:
            return error
        found = self._backlog(channels, cursor)
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
        found = self._backlog(channels, cursor)
        if found:
            return _messages(found)
        loop = asyncio.get_running_loop()
        got: "asyncio.Future[_Message]" = loop.create_future()

        def deliver(msg: _Message) -> None:
            if not got.done() and not self.silent:
                got.set_result(msg)

        sub = _Subscriber([c for c, _ in channels], deliver)
        self._subscribe(sub)
        transport = request.transport
        if transport is not None:
            self._pollers.add(transport)
        try:
            msg = await asyncio.wait_for(got, self.longpoll_timeout)
        except asyncio.TimeoutError:
            if self.silent:
                await asyncio.sleep(3600)  # a silent server answers nothing at all
            headers = dict(_HEADERS, **{"Last-Modified": _http_date(self.clock()), "Etag": "W/0"})
            return web.Response(status=304, headers=headers)
        finally:
            self._subscribers.discard(sub)
            if transport is not None:
                self._pollers.discard(transport)
        if msg.id == -2:
            headers = dict(_HEADERS, **{"Last-Modified": _http_date(self.clock()), "Etag": "W/0"})
            return web.Response(status=200, headers=headers, text=msg.text)
        return _messages([msg])

    async def _pub(self, request: web.Request) -> web.StreamResponse:
        ids = _raw_query(request.raw_path).get("id")
        if not ids:
            return _explained(400, "No channel id provided.")
        channels = [unquote(c) for c in ids.split("/") if c]
        if request.method == "DELETE":
            body = (await request.text()) or None
            deleted = [self._delete(ch, body) for ch in channels]
            if not any(deleted):
                return _explained(404, "Channel not found.")
            return web.Response(status=200, headers={"X-Nginx-PushStream-Explain": "Channel deleted."})
        if request.method != "POST":
            return web.Response(status=405, headers={"Allow": "GET, POST, DELETE"})
        body = await request.text()
        if not body:
            return _explained(400, "Empty post requests are not allowed.")
        for ch in channels:
            self._publish(ch, body)
        last = channels[-1]
        return web.json_response({
            "channel": last,
            "published_messages": self._ids.get(last, 0),
            "stored_messages": len(self._store.get(last, ())),
            "subscribers": sum(1 for s in self._subscribers if last in s.channels),
        })

    async def _control_blast(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        self._blast_now(q["id"], int(q["n"]), q.get("body", '{"n":0}'))
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
                self._publish(channel, json.dumps({"i": i, "ts": time.time()}))

        asyncio.ensure_future(run())
        return web.Response(text="ok")

    # ------------------------------------------------------------------
    # WebSocket
    # ------------------------------------------------------------------
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
        self.track(ws)
        transport = request.transport
        assert transport is not None
        queue: "asyncio.Queue[Optional[_Message]]" = asyncio.Queue()

        def deliver(msg: _Message) -> None:
            queue.put_nowait(msg)

        deliver.raw = lambda data: None if self.silent else transport.write(data)  # type: ignore[attr-defined]
        sub = _Subscriber([c for c, _ in channels], deliver)
        for msg in self._backlog(channels, cursor):
            await ws.send_str(msg.text)
        self._subscribe(sub)
        tasks = [asyncio.ensure_future(self._writer(ws, queue, sub, transport))]
        if self.ping_interval:
            tasks.append(asyncio.ensure_future(self._pinger(ws)))
        if self.connection_ttl:
            tasks.append(asyncio.ensure_future(self._ttl(transport, self.connection_ttl)))
        try:
            async for frame in ws:
                if frame.type == WSMsgType.PING:
                    if not _utf8(frame.data):
                        transport.abort()  # the module's utf-8 check: no close frame, just gone
                        break
                    if not self.silent:
                        await ws.pong(b"")  # always an empty payload, whatever we were sent
                elif frame.type == WSMsgType.BINARY:
                    await ws.close()
                    break
                # text frames are ignored (publishing over WebSocket is off)
        finally:
            self.close_codes.append(ws.close_code if ws.closed else None)
            self._subscribers.discard(sub)
            self.untrack(ws)
            for task in tasks:
                task.cancel()
        return ws

    async def _writer(self, ws: web.WebSocketResponse, queue: "asyncio.Queue[Optional[_Message]]",
                      sub: _Subscriber, transport: asyncio.Transport) -> None:
        while True:
            msg = await queue.get()
            if msg is None or self.silent:
                continue
            await ws.send_str(msg.text)
            if msg.id == -2 and not sub.channels:
                _bare_close(transport)  # its last channel is gone
                return

    async def _pinger(self, ws: web.WebSocketResponse) -> None:
        while not ws.closed:
            await asyncio.sleep(self.ping_interval)
            if not self.silent and not ws.closed:
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


def _cursor(query: Dict[str, str]) -> Optional[Tuple[int, int]]:
    """The module's rule: `time` URI-unescaped (no `+` decoding) then parsed; tag `W/` stripped, abs()."""
    text = unquote(query.get("time", ""))
    if not text:
        return None
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if "+" in text or parsed is None:
        return None
    tag_text = unquote(query.get("tag", ""))
    if not tag_text:
        return (int(parsed.timestamp()), 1 << 62)  # time without tag skips that whole second
    tag_text = tag_text[2:] if tag_text.startswith("W/") else tag_text
    try:
        tag = abs(int(tag_text))
    except ValueError:
        tag = 0
    return (int(parsed.timestamp()), tag)


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


def _messages(found: List[_Message]) -> web.Response:
    newest = max(found, key=lambda m: (m.epoch, m.tag))
    headers = dict(_HEADERS, **{"Last-Modified": _http_date(newest.epoch), "Etag": f"W/{newest.tag}"})
    return web.Response(status=200, headers=headers, text="".join(m.text for m in found))


def main() -> None:  # pragma: no cover - a manual tool
    import argparse
    import threading

    parser = argparse.ArgumentParser(description="Serve a local Dashly push stream server.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", action="append", default=None)
    parser.add_argument("--ping-interval", type=float, default=10.0)
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    server = DashlyServer(tokens=args.token or ["test-token"], port=args.port,
                          ping_interval=args.ping_interval).start()
    print(server.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
