"""QuickMeet (local DDP server): stream events/s into an on() callback and method round trips/s, versus raw loops."""

from __future__ import annotations

import hashlib
import json
import time
from typing import List

import websocket
from common import Row, Server, best_of, client_rate, raw_loop_rate, throughput_rows

import rtsync

SUITE = "quickmeet local server"
FRAME = json.dumps({"msg": "changed", "collection": "stream-notify-room", "id": "id",
                    "fields": {"eventName": "GENERAL/typing", "args": ["bob", True]}})
LOGIN = {"user": {"username": "alice"},
         "password": {"digest": hashlib.sha256(b"alice-password").hexdigest(), "algorithm": "sha-256"}}


def raw_session(server: Server, skip: bool = True) -> websocket.WebSocket:
    ws = websocket.WebSocket(skip_utf8_validation=skip)
    ws.connect(f"{server.ws_url}/websocket")
    _login(ws)
    return ws


def raw_calls(server: Server, n: int) -> float:
    ws = raw_session(server)
    t0 = time.perf_counter()
    for i in range(n):
        ws.send(json.dumps({"msg": "method", "id": str(i), "method": "rooms/get", "params": []}))
        while json.loads(ws.recv()).get("msg") != "result":
            pass
    elapsed = time.perf_counter() - t0
    ws.close()
    return n / elapsed


def rtsync_calls(server: Server, n: int) -> float:
    client = rtsync.QuickMeetClient(url=f"{server.ws_url}/websocket", username="alice", password="alice-password")
    with client:
        while client.protocol.state != "ready":
            time.sleep(0.01)
        t0 = time.perf_counter()
        for _ in range(n):
            client.call("rooms/get")
        elapsed = time.perf_counter() - t0
    return n / elapsed


def run(quick: bool) -> List[Row]:
    n, calls, runs = (20_000, 500, 1) if quick else (100_000, 3000, 3)
    with Server("quickmeet") as server:
        def raw(skip: bool) -> float:
            return raw_loop_rate(f"{server.ws_url}/websocket", n, skip_utf8_validation=skip,
                                 after_open=_login,
                                 start=lambda: server.blast(FRAME, n),
                                 is_event=lambda m: m.get("msg") == "changed")

        def ours() -> float:
            client = rtsync.QuickMeetClient(url=f"{server.ws_url}/websocket", username="alice", password="alice-password")
            return client_rate(client, "stream-notify-room", n, lambda: server.blast(FRAME, n))

        raw_rate = best_of(runs, lambda: raw(False))
        skip_rate = best_of(runs, lambda: raw(True))
        rt_rate = best_of(runs, ours)
        raw_call_rate = best_of(runs, lambda: raw_calls(server, calls))
        rt_call_rate = best_of(runs, lambda: rtsync_calls(server, calls))
    return throughput_rows(SUITE, raw_rate, skip_rate, rt_rate) + [
        Row(SUITE, "raw method round trips", raw_call_rate, "calls/s"),
        Row(SUITE, "rtsync call() round trips", rt_call_rate, "calls/s", "raw method round trips", raw_call_rate),
    ]


def _login(ws: websocket.WebSocket) -> None:
    ws.send(json.dumps({"msg": "connect", "version": "1", "support": ["1"]}))
    ws.send(json.dumps({"msg": "method", "id": "l", "method": "login", "params": [LOGIN]}))
    while json.loads(ws.recv()).get("id") != "l":
        pass
