"""A local HTTP + WebSocket server on 127.0.0.1, run by aiohttp on a background thread, with fault controls.

Every vendor's test server subclasses `LocalServer` and builds its routes in
`routes()`. All five share one shape: `XServer(...)` is a context manager
(entering starts it and returns the server), `.url` is exactly what the
matching client's `url=` takes, `.publish(...)` sends one event in the
vendor's own form, `.drop()` cuts every connection at the TCP level (no close
frame) and `.restart()` restarts the server as the vendor's would (same port,
every connection cut, per-process state forgotten). The base adds what chaos
tests need: `close_all(code)`, `silence()` (keep sockets open but send
nothing), and thread-safe `call()` into the loop. `http_url` and `ws_url` are
the server's origin (scheme, host and port), for raw requests.

`control = True` (set before `start()`; `rtsync serve` does) adds a loopback-only
`POST /_rtsync/publish` taking `{"args": [...], "kwargs": {...}}` and calling
`publish(*args, **kwargs)`: the door `rtsync publish` uses to reach a server
running in another process. The vendors' servers have no such door, so it is off
by default.

aiohttp is used rather than `websockets` because several vendors serve REST
or long polling and WebSocket on one port, which needs a full HTTP server.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import ipaddress
import json
import logging
import socket
import sys
import threading
import warnings
from typing import Any, Callable, Coroutine, Deque, Dict, Optional, Set, Tuple, TypeVar

from aiohttp import web
from jwt import PyJWS
from jwt.algorithms import HMACAlgorithm

__all__ = ["LocalServer", "deprecated", "hs256_jws"]

log = logging.getLogger("rtsync.testing")

T = TypeVar("T")
S = TypeVar("S", bound="LocalServer")


class LocalServer:
    """Base local server: start()/stop(), a context manager, and fault controls."""

    #: Name of the server thread; tests use it to tell our threads from the server's.
    thread_name = "rtsync-testserver"
    #: Longest request line aiohttp reads (a server that answers long URLs itself raises it).
    max_request_line = 8190

    #: Serve `POST /_rtsync/publish` for other processes on this host (see the module docstring).
    control = False

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, ssl_context: Any = None) -> None:
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.silent = False
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._runner: Optional[web.AppRunner] = None
        self._site: Optional[web.SockSite] = None
        self.websockets: Set[web.WebSocketResponse] = set()
        self.connections_total = 0
        # Each request's (method, path, headers), handshakes and REST alike: tests check what arrived.
        self.seen: Deque[Tuple[str, str, Dict[str, str]]] = collections.deque(maxlen=1000)

    # -- to override -----------------------------------------------------
    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def on_restart(self) -> None:
        """Forget per-process state the way a real server restart would (override as needed)."""

    # -- lifecycle -------------------------------------------------------
    @property
    def http_url(self) -> str:
        """The server's HTTP origin, `http://host:port` (`https://` with `ssl_context`)."""
        return f"{'https' if self.ssl_context else 'http'}://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """The server's WebSocket origin, `ws://host:port` (`wss://` with `ssl_context`)."""
        return f"{'wss' if self.ssl_context else 'ws'}://{self.host}:{self.port}"

    def start(self: S) -> S:
        if self._thread is not None:
            return self
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=self.thread_name, daemon=True)
        self._thread.start()
        ready.wait()
        self.call(self._listen)
        return self

    def stop(self) -> None:
        """Cut every connection, stop listening, end every task of the loop, and join the server thread."""
        if self._loop is None or self._thread is None:
            return
        try:
            self.call(self._final_shutdown, timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()
            self._loop = None
            self._thread = None

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def call(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, timeout: float = 30) -> T:
        """Run coroutine function `fn(*args)` on the server loop and return its result."""
        assert self._loop is not None, "server not started"
        return asyncio.run_coroutine_threadsafe(fn(*args), self._loop).result(timeout)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        assert self._loop is not None, "server not started"
        self._loop.call_soon_threadsafe(fn, *args)

    async def _listen(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._record])
        self.routes(app)
        app.router.add_post("/_rtsync/blast", self._blast)
        if self.control:
            app.router.add_post("/_rtsync/publish", self._control_publish)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.1,
                                     max_line_size=self.max_request_line)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._site = site = web.SockSite(self._runner, sock, ssl_context=self.ssl_context)
        await site.start()

    async def _shutdown(self) -> None:
        self._abort_all()
        if self._runner is not None:
            server = getattr(self._site, "_server", None)
            await self._runner.cleanup()
            self._runner = None
            self._site = None
            if sys.version_info[:3] == (3, 13, 0) and getattr(server, "_waiters", ()) is None:
                # CPython 3.13.0 (fixed in 3.13.1): a connection's transport collected after its
                # server closed wakes the server's waiters, which are None by then, and prints a
                # TypeError from __del__ into the user's output.
                server._waiters = []  # type: ignore[union-attr]

    async def _final_shutdown(self) -> None:
        """`_shutdown`, then cancel and await every task still on the loop, so none is destroyed pending.

        aiohttp leaves a handler running after its client went away (a long poll holds on until its
        timeout); closing the loop under such a task is what prints "Task was destroyed but it is
        pending!" into the user's output."""
        try:
            await self._shutdown()
        finally:
            me = asyncio.current_task()
            for _ in range(10):  # a cancelled handler's `finally` may start another task: sweep again
                tasks = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
                if not tasks:
                    break
                for task in tasks:
                    task.cancel()
                done, _ = await asyncio.wait(tasks, timeout=1.0)
                for task in done:
                    if not task.cancelled():
                        task.exception()  # retrieved: nothing logs "exception was never retrieved"
            await asyncio.get_running_loop().shutdown_asyncgens()

    # -- fault controls --------------------------------------------------
    def _abort_all(self) -> int:
        """Reset every connection: WebSockets, requests being served (long polls) and idle keep-alives."""
        count = 0
        for ws in list(self.websockets):
            transport = ws._req.transport if ws._req is not None else None  # noqa: SLF001
            if transport is not None and not transport.is_closing():
                transport.abort()
                count += 1
        self.websockets.clear()
        server = self._runner.server if self._runner is not None else None
        for handler in list(server.connections if server is not None else ()):
            transport = handler.transport
            if transport is not None and not transport.is_closing():
                transport.abort()
                count += 1
        return count

    def drop(self) -> int:
        """Cut every open connection at the TCP level: no close frame, no response, nothing more on it (a
        network failure, or the server's host vanishing). WebSockets, requests in progress (a waiting long
        poll) and idle keep-alive HTTP connections alike. Returns how many."""

        async def go() -> int:
            return self._abort_all()

        return self.call(go)

    def restart(self, downtime: float = 0.0) -> None:
        """Restart as the vendor's server process would: stop listening, cut every connection, forget
        per-process state (`on_restart`), wait `downtime` seconds, and listen again on the same port."""

        async def go() -> None:
            await self._shutdown()
            await self.on_restart()
            if downtime:
                await asyncio.sleep(downtime)
            await self._listen()

        self.call(go)

    def close_all(self, code: int = 1000, message: str = "") -> None:
        """Close every open WebSocket with this close code and reason."""

        async def go() -> None:
            for ws in list(self.websockets):
                await ws.close(code=code, message=message.encode())

        self.call(go)

    def silence(self, on: bool = True) -> None:
        """Keep every socket open but send nothing (no data, no pings) while on."""
        self.silent = on

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.seen.append((request.method, request.path, dict(request.headers)))
        return await handler(request)  # type: ignore[no-any-return]

    async def _blast(self, request: web.Request) -> web.StreamResponse:
        """Benchmark control: write `count` text frames to every WebSocket, pre-encoded, in one write each,
        so that a benchmark measures the client and not this server. `{n}` in `text` becomes 0, 1, ...;
        or `texts`, a list of frames to write as they are."""
        body = await request.json()
        if "texts" in body:  # distinct frames made by the caller (e.g. each one signed)
            data = b"".join(_text_frame(text) for text in body["texts"])
        elif "{n}" in body["text"]:
            data = b"".join(_text_frame(body["text"].replace("{n}", str(i))) for i in range(int(body["count"])))
        else:
            data = _text_frame(body["text"]) * int(body["count"])
        for ws in list(self.websockets):
            transport = ws._req.transport if ws._req is not None else None  # noqa: SLF001
            if transport is not None:
                transport.write(data)
        return web.json_response({"sockets": len(self.websockets)})

    async def _control_publish(self, request: web.Request) -> web.StreamResponse:
        """`publish(*args, **kwargs)` for `rtsync publish`; only from this host, since it needs no credential."""
        if not _loopback(request.remote):
            return _problem(403, "rtsync publish is served to this host only")
        try:
            body = json.loads(await request.text())
        except ValueError as exc:
            return _problem(400, f"the body is not JSON: {exc}")
        args = body.get("args", []) if isinstance(body, dict) else None
        kwargs = body.get("kwargs", {}) if isinstance(body, dict) else None
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            return _problem(400, 'the body must be {"args": [...], "kwargs": {...}}')
        publish = getattr(self, "publish")
        try:
            # publish() waits on this loop itself: run it on a worker thread, never on the loop.
            result = await asyncio.get_running_loop().run_in_executor(
                None, functools.partial(publish, *args, **kwargs))
        except (TypeError, ValueError, KeyError) as exc:
            return _problem(400, f"publish{tuple(args)!r} failed: {type(exc).__name__}: {exc}")
        return web.json_response({"result": result}, dumps=lambda obj: json.dumps(obj, default=str))

    # -- helpers for subclasses -----------------------------------------
    def track(self, ws: web.WebSocketResponse) -> None:
        self.websockets.add(ws)
        self.connections_total += 1

    def untrack(self, ws: web.WebSocketResponse) -> None:
        self.websockets.discard(ws)


def _loopback(remote: Optional[str]) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def _problem(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def deprecated(old: str, new: str) -> None:
    """Warn that `old` is a deprecated alias of `new` (both as written, e.g. ".broadcast()"), for its caller."""
    warnings.warn(f"use {new}; {old} goes away in the next release", DeprecationWarning, stacklevel=3)


class _HS256(HMACAlgorithm):
    """PyJWT's HS256 without its key-length check: secrets are the caller's, and this server takes them as given."""

    def check_key_length(self, key: Any) -> None:  # PyJWT >= 2.10 warns from here (InsecureKeyLengthWarning)
        return None


def hs256_jws() -> PyJWS:
    """A PyJWS that signs and verifies HS256 only, and never warns about a short key.

    The servers sign (Dialpad) and check (Doshii) with keys their clients chose; a short one is the
    client's business, and PyJWT's module-wide warning would land in the user's test output. Filtering
    it with `warnings.catch_warnings()` is not thread-safe (the server runs on its own thread)."""
    jws = PyJWS(algorithms=[])
    jws.register_algorithm("HS256", _HS256(HMACAlgorithm.SHA256))
    return jws


def _text_frame(text: str) -> bytes:
    """One unmasked FIN text frame."""
    payload = text.encode("utf-8")
    n = len(payload)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 65536:
        head = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return head + payload
