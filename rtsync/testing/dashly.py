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

import json
import time
from typing import Any, Callable, Iterable, List, Optional, Union

from aiohttp import web

from ._dashly_http import DashlyEndpoints
from ._dashly_store import ChannelStore, frame
from ._server import LocalServer

__all__ = ["DashlyServer"]


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
        self._channels = ChannelStore(self)  # messages, ids, tags, subscribers: nginx's shared memory
        self._http = DashlyEndpoints(self, self._channels)

    async def on_restart(self) -> None:
        # nginx keeps messages in shared memory: a restart loses them, ids start at 1
        self._channels.reset()
        self._http.pollers.clear()

    @property
    def url(self) -> str:
        """What `DashlyClient(url=...)` takes: the server's base URL (the client adds each transport's path)."""
        return self.http_url

    def routes(self, app: web.Application) -> None:
        self._http.routes(app)

    # ------------------------------------------------------------------
    # Test-thread API
    # ------------------------------------------------------------------
    def publish(self, channels: Union[str, Iterable[str]], body: Any) -> List[int]:
        """Publish one message, as `POST /pub?id=<channel>` does: `body` (JSON-encoded unless it is already
        a str) goes to each of `channels` (one name or several). Returns the message id in each channel."""
        text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
        names = [channels] if isinstance(channels, str) else list(channels)

        async def go() -> List[int]:
            return [self._channels.publish(ch, text).id for ch in names]

        return self.call(go)

    def delete(self, channel: str, body: Optional[str] = None) -> bool:
        async def go() -> bool:
            return self._channels.delete(channel, body)

        return self.call(go)

    def last_id(self, channel: str) -> int:
        """The channel's newest id; 0 once it is gone (never used, deleted or garbage-collected)."""

        async def go() -> int:
            self._channels.collect(channel, self.clock())
            return self._channels.ids.get(channel, 0)

        return self.call(go)

    def subscribers(self, channel: str) -> int:
        """How many WebSockets and waiting long polls listen to `channel` right now."""

        async def go() -> int:
            return self._channels.subscriber_count(channel)

        return self.call(go)

    def collect_garbage(self) -> List[str]:
        """Run the channel GC over every channel now; return the channels it forgot."""

        async def go() -> List[str]:
            now = self.clock()
            return [ch for ch in list(self._channels.ids) if self._channels.collect(ch, now)]

        return self.call(go)

    def blast(self, channel: str, count: int, body: str = '{"n":0}') -> None:
        """Publish `count` messages to `channel` and write them to every WebSocket subscriber in one
        go, as pre-encoded frames (the benchmark's source: the server must not be the bottleneck)."""

        async def go() -> None:
            self._channels.blast(channel, count, body)

        self.call(go)

    def inject(self, text: str) -> int:
        """Send `text` as-is (a malformed or hand-made frame) to every WebSocket; return how many."""
        return self.inject_bytes(frame(text))

    def inject_bytes(self, data: bytes) -> int:
        """Write raw bytes (e.g. a hand-built oversized frame) to every WebSocket's TCP stream."""

        async def go() -> int:
            count = 0
            for sub in self._channels.subscribers:
                if hasattr(sub.deliver, "raw"):
                    sub.deliver.raw(data)
                    count += 1
            return count

        return self.call(go)

    def drop(self) -> int:
        """Cut every connection at the TCP level, WebSockets and waiting long polls alike (no close frame,
        no response). Returns how many."""

        async def go() -> int:
            count = self._abort_all()  # first: a long poll it cuts is not counted again below
            return count + self._http.abort_pollers()

        return self.call(go)


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
