"""Dashly (local Push Stream server): throughput by size, CPU per event at a fixed rate, idle clients, long poll.

Baselines: websocket-client's `WebSocketApp` + `json.loads` (what most users
write), the raw `recv()` loops with and without `skip_utf8_validation`, and
"the limit" (`common.limit_reader`: recv_into, frames cut by hand, orjson).
The server runs in its own process and writes pre-encoded frames, so the
client side is what is measured.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable, Dict, List
from urllib.parse import quote

import websocket
from common import Compare, Counter, Suite, cpu_seconds, limit_reader, pad_to, post, raw_loop, rss_bytes

TOKEN = "bench-token"
SIZES = {"120 B": 120, "2 KB": 2048, "64 KB": 65536}
# Events per run: about 7-60 MB of frames, so a run takes a second or two whatever the size.
COUNTS = {120: 60_000, 2048: 15_000, 65536: 1_000}


def _ws_url(url: str, channel: str) -> str:
    return url.replace("http://", "ws://") + f"/websocket/{channel}?auth_token={TOKEN}"


def _body(size: int) -> str:
    # The frame is the server's envelope (~110 B) around this body: aim the whole frame at `size`.
    return pad_to(max(20, size - 110), lambda pad: json.dumps({"n": 0, "pad": pad}))


def _is_event(msg: Any) -> bool:
    body = msg.get("message")
    return isinstance(body, dict) and "pad" in body


def _wait_subscribed(url: str, channel: str, count: int = 1) -> None:
    # A publish answers with the subscriber count: wait until our sockets are registered.
    for _ in range(3000):
        stats = post(f"{url}/pub", params={"id": channel}, data="{}").json()
        if stats["subscribers"] >= count:
            return
        time.sleep(0.01)
    raise RuntimeError("subscriber never registered")


def _blast(url: str, channel: str, size: int, n: int) -> None:
    post(f"{url}/_bench/blast", params={"id": channel, "n": n}, data=_body(size).encode())


def _gc(gc_off: bool) -> None:
    if gc_off:
        import gc

        gc.disable()


# -- throughput arms -------------------------------------------------------------

def _count(size: int, quick: bool, validates: bool = False) -> int:
    # websocket-client's UTF-8 check is pure Python: the arms that run it read fewer large events.
    slow = {120: 2, 2048: 5, 65536: 10}[size] if validates else 1
    return max(200, COUNTS[size] // (5 if quick else 1) // slow)


def _socket_arm(loop: Callable[[websocket.WebSocket, Counter], None], skip: bool = True) -> Callable[..., Dict[str, float]]:
    def arm(url: str, size: int, quick: bool, gc_off: bool = False) -> Dict[str, float]:
        _gc(gc_off)
        n = _count(size, quick, validates=not skip)
        channel = f"c{time.monotonic_ns()}"
        ws = websocket.WebSocket(skip_utf8_validation=skip)
        ws.connect(_ws_url(url, channel))
        _wait_subscribed(url, channel)
        counter = Counter(n)
        threading.Thread(target=_blast, args=(url, channel, size, n), daemon=True).start()
        loop(ws, counter)
        ws.close()
        return {"events/s": counter.rate()}

    return arm


raw = _socket_arm(lambda ws, c: raw_loop(ws, c, json.loads, _is_event), skip=False)
raw_skip = _socket_arm(lambda ws, c: raw_loop(ws, c, json.loads, _is_event))
limit = _socket_arm(lambda ws, c: limit_reader(ws.sock, c, _is_event))


def wsapp(url: str, size: int, quick: bool, gc_off: bool = False) -> Dict[str, float]:
    _gc(gc_off)
    n = _count(size, quick, validates=True)
    channel = f"a{time.monotonic_ns()}"
    counter = Counter(n)

    def on_message(_: Any, text: str) -> None:
        if _is_event(json.loads(text)):
            counter.hit()

    app = websocket.WebSocketApp(_ws_url(url, channel), on_message=on_message)
    threading.Thread(target=app.run_forever, daemon=True).start()
    _wait_subscribed(url, channel)
    _blast(url, channel, size, n)
    rate = counter.rate()
    app.close()
    return {"events/s": rate}


def rtsync_arm(url: str, size: int, quick: bool, gc_off: bool = False) -> Dict[str, float]:
    import rtsync

    _gc(gc_off)
    n = _count(size, quick)
    channel = f"r{time.monotonic_ns()}"
    counter = Counter(n)

    def on_event(event: rtsync.Event) -> None:
        if "pad" in event.data:
            counter.hit()

    client = rtsync.DashlyClient(TOKEN, channels=[channel], url=url)
    client.on(channel, on_event)
    with client:
        _wait_subscribed(url, channel)
        _blast(url, channel, size, n)
        rate = counter.rate()
    return {"events/s": rate}


# -- CPU per event at a fixed rate ---------------------------------------------------

def _at_rate(url: str, quick: bool, listen: Callable[[str, Counter], Callable[[], None]]) -> Dict[str, float]:
    rate, seconds = 2000, (2 if quick else 5)
    n = rate * seconds
    channel = f"s{time.monotonic_ns()}"
    counter = Counter(n)
    stop = listen(channel, counter)
    _wait_subscribed(url, channel)
    before = cpu_seconds()
    post(f"{url}/_rtsync/stream", params={"id": channel, "n": n, "rate": rate})
    counter.rate(60)
    used = cpu_seconds() - before
    stop()
    return {"CPU us/event": used / n * 1e6}


def _has_ts(msg: Any) -> bool:
    body = msg.get("message")
    return isinstance(body, dict) and "ts" in body


def rate_rtsync(url: str, quick: bool) -> Dict[str, float]:
    import rtsync

    def listen(channel: str, counter: Counter) -> Callable[[], None]:
        client = rtsync.DashlyClient(TOKEN, channels=[channel], url=url)
        client.on(channel, lambda e: counter.hit() if "ts" in e.data else None)
        client.start()
        return client.stop

    return _at_rate(url, quick, listen)


def rate_wsapp(url: str, quick: bool) -> Dict[str, float]:
    def listen(channel: str, counter: Counter) -> Callable[[], None]:
        app = websocket.WebSocketApp(_ws_url(url, channel),
                                     on_message=lambda _, text: counter.hit() if _has_ts(json.loads(text)) else None)
        threading.Thread(target=app.run_forever, daemon=True).start()
        return app.close

    return _at_rate(url, quick, listen)


def rate_limit(url: str, quick: bool) -> Dict[str, float]:
    def listen(channel: str, counter: Counter) -> Callable[[], None]:
        ws = websocket.WebSocket(skip_utf8_validation=True)
        ws.connect(_ws_url(url, channel))
        threading.Thread(target=limit_reader, args=(ws.sock, counter, _has_ts), daemon=True).start()
        return ws.abort

    return _at_rate(url, quick, listen)


def rate_limit_handoff(url: str, quick: bool) -> Dict[str, float]:
    """The limit plus the one thing the threading contract adds: each event handed to a second
    thread (a `queue.SimpleQueue`) that runs the callback. The floor of any design that keeps
    user code off the reading thread."""
    import queue

    def listen(channel: str, counter: Counter) -> Callable[[], None]:
        handed: "queue.SimpleQueue[object]" = queue.SimpleQueue()

        class Handoff:
            done = counter.done

            @staticmethod
            def hit() -> None:
                handed.put(None)

        def callbacks() -> None:
            while not counter.done.is_set():
                handed.get()
                counter.hit()

        ws = websocket.WebSocket(skip_utf8_validation=True)
        ws.connect(_ws_url(url, channel))
        threading.Thread(target=callbacks, daemon=True).start()
        threading.Thread(target=limit_reader, args=(ws.sock, Handoff, _has_ts), daemon=True).start()
        return ws.abort

    return _at_rate(url, quick, listen)


# -- idle clients ------------------------------------------------------------------

def _idle(url: str, quick: bool, start: Callable[[str], Callable[[], None]]) -> Dict[str, float]:
    clients, seconds = (50, 4.0) if quick else (200, 10.0)
    channel = f"i{time.monotonic_ns()}"
    threads, rss = threading.active_count(), rss_bytes()
    stops = [start(channel) for _ in range(clients)]
    _wait_subscribed(url, channel, clients)
    time.sleep(1.0)  # let connection set-up settle
    before, wall = cpu_seconds(), time.perf_counter()
    time.sleep(seconds)
    used, wall = cpu_seconds() - before, time.perf_counter() - wall
    result = {"CPU % of a core": used / wall * 100, "threads/client": (threading.active_count() - threads) / clients,
              "KiB/client": (rss_bytes() - rss) / clients / 1024}
    for stop in stops:
        stop()
    return result


def idle_rtsync(url: str, quick: bool) -> Dict[str, float]:
    import rtsync

    def start(channel: str) -> Callable[[], None]:
        client = rtsync.DashlyClient(TOKEN, channels=[channel], url=url)
        client.start()
        return client.stop

    return _idle(url, quick, start)


def idle_wsapp(url: str, quick: bool) -> Dict[str, float]:
    def start(channel: str) -> Callable[[], None]:
        app = websocket.WebSocketApp(_ws_url(url, channel), on_message=lambda _, text: json.loads(text))
        threading.Thread(target=app.run_forever, daemon=True).start()
        return app.close

    return _idle(url, quick, start)


# -- long poll: requests per delivered batch -----------------------------------------

def _longpoll(quick: bool, listen: Callable[[str, str, Callable[[], None]], Callable[[], None]]) -> Dict[str, float]:
    from rtsync.testing.dashly import DashlyServer

    batches = 20 if quick else 60
    with DashlyServer(tokens=[TOKEN]) as server:
        channel = "lp"
        got = threading.Semaphore(0)
        stop = listen(server.url, channel, got.release)
        for _ in range(30):  # until the listener's first request is waiting
            server.publish(channel, {"warm": True})
            if got.acquire(timeout=1):
                break
        else:
            raise RuntimeError("no first batch")
        time.sleep(0.2)  # the follow-up request is in flight
        before = sum(1 for r in server.requests if "/longpoll/" in r)
        for i in range(batches):
            server.publish(channel, {"i": i})
            if not got.acquire(timeout=30):
                raise RuntimeError(f"batch {i} never arrived")
            time.sleep(0.05)  # the follow-up request is sent before the next publish
        used = sum(1 for r in server.requests if "/longpoll/" in r) - before
        stop()
    return {"requests/batch": used / batches}


def longpoll_rtsync(quick: bool) -> Dict[str, float]:
    import rtsync

    def listen(url: str, channel: str, delivered: Callable[[], None]) -> Callable[[], None]:
        client = rtsync.DashlyClient(TOKEN, channels=[channel], url=url, transport="longpoll")
        client.on(channel, lambda e: delivered())
        client.start()
        return client.stop

    return _longpoll(quick, listen)


def longpoll_js(quick: bool) -> Dict[str, float]:
    """pushstream.js's loop: ask again with the last message's time and tag, once per answer."""
    import requests

    def listen(url: str, channel: str, delivered: Callable[[], None]) -> Callable[[], None]:
        stopping = threading.Event()

        def loop() -> None:
            session = requests.Session()
            cursor = ""
            while not stopping.is_set():
                try:
                    resp = session.get(f"{url}/longpoll/{channel}?auth_token={TOKEN}{cursor}", timeout=30)
                except requests.RequestException:
                    return
                if resp.status_code == 200:
                    last = json.loads(resp.text.strip().splitlines()[-1])
                    cursor = f"&time={quote(last['time'])}&tag={last['tag']}"
                    delivered()

        threading.Thread(target=loop, daemon=True).start()
        return stopping.set

    return _longpoll(quick, listen)


ARMS: Dict[str, Callable[..., Dict[str, float]]] = {
    "WebSocketApp+json": wsapp, "raw recv+json": raw, "raw skip_utf8+json": raw_skip, "limit": limit,
    "rtsync": rtsync_arm,
    "rate rtsync": rate_rtsync, "rate WebSocketApp": rate_wsapp, "rate limit": rate_limit,
    "rate limit + hand-off": rate_limit_handoff,
    "idle rtsync": idle_rtsync, "idle WebSocketApp": idle_wsapp,
    "longpoll rtsync": longpoll_rtsync, "longpoll pushstream.js-style": longpoll_js,
}


def suites() -> List[Suite]:
    out = []
    ev = {"events/s": "events/s"}
    for label, size in SIZES.items():
        out.append(Suite(
            f"dashly ws {label}", "bench_dashly",
            ["rtsync", "WebSocketApp+json", "raw recv+json", "raw skip_utf8+json", "limit"],
            {"size": size}, [
                Compare("rtsync", "WebSocketApp+json", "events/s"),
                Compare("rtsync", "raw recv+json", "events/s"),
                Compare("rtsync", "raw skip_utf8+json", "events/s", target=1.0),
                Compare("rtsync", "limit", "events/s", target=0.5 if size < 1000 else (0.8 if size > 60000 else None)),
            ], server="dashly", units=ev))
    out.append(Suite(
        "dashly 2,000 msg/s", "bench_dashly",
        ["rate rtsync", "rate WebSocketApp", "rate limit", "rate limit + hand-off"], {}, [
            Compare("rate rtsync", "rate WebSocketApp", "CPU us/event", higher_is_better=False),
            Compare("rate rtsync", "rate limit", "CPU us/event", higher_is_better=False, target=0.5),
            Compare("rate rtsync", "rate limit + hand-off", "CPU us/event", higher_is_better=False),
            Compare("rate limit + hand-off", "rate limit", "CPU us/event", higher_is_better=False),
        ], server="dashly", rounds=2, units={"CPU us/event": "us"}))
    out.append(Suite(
        "dashly idle clients", "bench_dashly", ["idle rtsync", "idle WebSocketApp"], {}, [
            Compare("idle rtsync", "idle WebSocketApp", "CPU % of a core", higher_is_better=False, target=0.5),
            Compare("idle rtsync", "idle WebSocketApp", "threads/client", higher_is_better=False),
            Compare("idle rtsync", "idle WebSocketApp", "KiB/client", higher_is_better=False),
        ], server="dashly", rounds=2, units={"CPU % of a core": "%", "threads/client": "", "KiB/client": "KiB"}))
    out.append(Suite(
        "dashly long poll", "bench_dashly", ["longpoll rtsync", "longpoll pushstream.js-style"], {}, [
            Compare("longpoll rtsync", "longpoll pushstream.js-style", "requests/batch", higher_is_better=False,
                    target=1.0),
        ], rounds=1, units={"requests/batch": ""}))
    return out
