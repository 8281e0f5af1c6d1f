"""Dashly WebSocket: events/s into an on() callback and publish-to-callback latency, versus raw websocket-client loops.

The server runs in its own process and writes pre-encoded frames, so the
client side is what is measured. Both raw loops and rtsync read the same
stream from the same server in the same run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import List

import requests
import websocket
from common import Row, percentiles, raw_loop_rate, throughput_rows

import rtsync

TOKEN = "bench-token"
SUITE = "dashly websocket"


def start_server() -> tuple:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtsync.testing.dashly", "--token", TOKEN, "--ping-interval", "10"],
        stdout=subprocess.PIPE, text=True,
    )
    url = proc.stdout.readline().strip()
    return proc, url


def blast(url: str, channel: str, n: int) -> None:
    requests.post(f"{url}/_rtsync/blast", params={"id": channel, "n": n}, timeout=120)


def wait_subscribed(url: str, channel: str) -> None:
    # A publish answers with the subscriber count: wait until our socket is registered.
    for _ in range(500):
        stats = requests.post(f"{url}/pub", params={"id": channel}, data="{}", timeout=5).json()
        if stats["subscribers"] >= 1:
            return
        time.sleep(0.01)
    raise RuntimeError("subscriber never registered")


def raw_rate(url: str, n: int, skip: bool) -> float:
    channel = f"raw{int(skip)}{time.monotonic_ns()}"
    ws_url = url.replace("http://", "ws://") + f"/websocket/{channel}?auth_token={TOKEN}"
    return raw_loop_rate(
        ws_url, n, skip_utf8_validation=skip,
        start=lambda: (wait_subscribed(url, channel), blast(url, channel, n)),
        is_event=lambda m: m["id"] > 0 and m["message"] != {},
    )


def rtsync_rate(url: str, n: int) -> float:
    channel = f"rt{time.monotonic_ns()}"
    client = rtsync.DashlyClient(TOKEN, channels=[channel], url=url)
    count = [0]
    first = [0.0]
    done = threading.Event()

    def on_event(event: rtsync.Event) -> None:
        if not event.data:
            return  # the subscription probe
        if count[0] == 0:
            first[0] = time.perf_counter()
        count[0] += 1
        if count[0] == n:
            done.set()

    client.on(channel, on_event)
    with client:
        wait_subscribed(url, channel)
        blast(url, channel, n)
        done.wait(300)
        elapsed = time.perf_counter() - first[0]
    return (n - 1) / elapsed


def raw_latency(url: str, n: int, rate: float) -> List[float]:
    channel = f"lat{time.monotonic_ns()}"
    ws = websocket.WebSocket(skip_utf8_validation=True)
    ws.connect(url.replace("http://", "ws://") + f"/websocket/{channel}?auth_token={TOKEN}")
    wait_subscribed(url, channel)
    requests.post(f"{url}/_rtsync/stream", params={"id": channel, "n": n, "rate": rate}, timeout=5)
    samples = []
    while len(samples) < n:
        msg = json.loads(ws.recv())
        if isinstance(msg.get("message"), dict) and "ts" in msg["message"]:
            samples.append((time.time() - msg["message"]["ts"]) * 1000)
    ws.close()
    return samples


def rtsync_latency(url: str, n: int, rate: float) -> List[float]:
    channel = f"rtlat{time.monotonic_ns()}"
    client = rtsync.DashlyClient(TOKEN, channels=[channel], url=url)
    samples: List[float] = []
    done = threading.Event()

    def on_event(event: rtsync.Event) -> None:
        if isinstance(event.data, dict) and "ts" in event.data:
            samples.append((time.time() - event.data["ts"]) * 1000)
            if len(samples) == n:
                done.set()

    client.on(channel, on_event)
    with client:
        wait_subscribed(url, channel)
        requests.post(f"{url}/_rtsync/stream", params={"id": channel, "n": n, "rate": rate}, timeout=5)
        done.wait(120)
    return samples


def cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def idle_cpu(url: str, seconds: float, use_rtsync: bool) -> float:
    """CPU milliseconds per minute spent by one connected, idle listener (server pings every 10 s)."""
    channel = f"idle{time.monotonic_ns()}"
    if use_rtsync:
        client = rtsync.DashlyClient(TOKEN, channels=[channel], url=url)
        client.start()
        wait_subscribed(url, channel)
        before = cpu_seconds()
        time.sleep(seconds)
        used = cpu_seconds() - before
        client.stop()
    else:
        ws = websocket.WebSocket(skip_utf8_validation=True)
        ws.connect(url.replace("http://", "ws://") + f"/websocket/{channel}?auth_token={TOKEN}")
        wait_subscribed(url, channel)
        ws.settimeout(seconds)
        before = cpu_seconds()
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                ws.settimeout(max(0.01, deadline - time.monotonic()))
                ws.recv()
        except websocket.WebSocketTimeoutException:
            pass
        used = cpu_seconds() - before
        ws.close()
    return used * 1000 * 60 / seconds


def run(quick: bool) -> List[Row]:
    n = 20_000 if quick else 100_000
    lat_n, rate = (500, 500.0) if quick else (2000, 1000.0)
    proc, url = start_server()
    try:
        raw_rate(url, 2000, True)  # warm up both sides
        rtsync_rate(url, 2000)
        best = {"raw": 0.0, "raw_skip": 0.0, "rtsync": 0.0}
        for _ in range(1 if quick else 3):  # interleaved, best of 3: noise hits all three alike
            best["raw"] = max(best["raw"], raw_rate(url, n, False))
            best["raw_skip"] = max(best["raw_skip"], raw_rate(url, n, True))
            best["rtsync"] = max(best["rtsync"], rtsync_rate(url, n))
        raw_p50, raw_p99 = percentiles(raw_latency(url, lat_n, rate))
        rt_p50, rt_p99 = percentiles(rtsync_latency(url, lat_n, rate))
        idle_for = 3.0 if quick else 10.0
        raw_idle, rt_idle = idle_cpu(url, idle_for, False), idle_cpu(url, idle_for, True)
    finally:
        proc.terminate()
        proc.wait(10)
    return throughput_rows(SUITE, best["raw"], best["raw_skip"], best["rtsync"]) + [
        Row(SUITE, f"raw latency p50 @{rate:g}/s", raw_p50, "ms", higher_is_better=False),
        Row(SUITE, f"rtsync latency p50 @{rate:g}/s", rt_p50, "ms", "raw p50", raw_p50, higher_is_better=False),
        Row(SUITE, f"raw latency p99 @{rate:g}/s", raw_p99, "ms", higher_is_better=False),
        Row(SUITE, f"rtsync latency p99 @{rate:g}/s", rt_p99, "ms", "raw p99", raw_p99, higher_is_better=False),
        Row(SUITE, "raw idle CPU", raw_idle, "ms/min", higher_is_better=False),
        Row(SUITE, "rtsync idle CPU", rt_idle, "ms/min", "raw idle CPU", raw_idle, higher_is_better=False),
    ]
