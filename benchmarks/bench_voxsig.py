"""Voxsig (local ActionCable server): events/s into an on() callback versus raw websocket-client loops."""

from __future__ import annotations

import json
from typing import List

import websocket
from common import Row, Server, best_of, client_rate, raw_loop_rate, throughput_rows

import rtsync

SUITE = "voxsig local server"
TOKEN = "good-user-token"
IDENTIFIER = json.dumps({"channel": "RoomChannel", "pubsub_token": TOKEN, "account_id": 1, "user_id": 1},
                        separators=(",", ":"))
FRAME = json.dumps({"identifier": IDENTIFIER,
                    "message": {"event": "message.created", "data": {"id": 1, "content": "hi", "account_id": 1}}})


def subscribe(ws: websocket.WebSocket) -> None:
    ws.send(json.dumps({"command": "subscribe", "identifier": IDENTIFIER}))
    while json.loads(ws.recv()).get("type") != "confirm_subscription":
        pass


def raw(server: Server, n: int, skip: bool) -> float:
    return raw_loop_rate(
        f"{server.ws_url}/cable", n, skip_utf8_validation=skip, subprotocols=["actioncable-v1-json"],
        origin=server.http_url, after_open=subscribe, start=lambda: server.blast(FRAME, n),
        is_event=lambda m: "message" in m and "type" not in m,
    )


def real_rails(quick: bool) -> List[Row]:
    """The same comparison on Rails' own ActionCable (Debian's Ruby packages, under Puma), if installed."""
    import pathlib
    import shutil
    import socket
    import subprocess
    import sys
    import time

    import requests

    if not shutil.which("puma"):
        print("voxsig: no puma/ruby-actioncable here, skipping the real ActionCable rows", file=sys.stderr)
        return []
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = pathlib.Path(__file__).resolve().parent.parent / "tests" / "interop" / "voxsig_rails"
    proc = subprocess.Popen(["puma", "-b", f"tcp://127.0.0.1:{port}", "-t", "4:8", "config.ru"], cwd=config,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base, cable = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/cable"
    n = 2_000 if quick else 10_000
    message = {"event": "message.created", "data": {"id": 1, "content": "hi", "account_id": 1}}

    def broadcast() -> None:
        requests.post(f"{base}/control/broadcast", json={"stream": "account_1", "message": message, "count": n},
                      timeout=300)

    try:
        for _ in range(100):
            try:
                requests.post(f"{base}/control/health", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        raw_rate = raw_loop_rate(cable, n, skip_utf8_validation=True, subprotocols=["actioncable-v1-json"],
                                 origin=base, after_open=subscribe, start=broadcast,
                                 is_event=lambda m: "message" in m and "type" not in m)
        client = rtsync.VoxsigClient(TOKEN, account_id=1, user_id=1, url=cable, presence_interval=3600)
        rt_rate = client_rate(client, "message.created", n, broadcast)
    finally:
        proc.kill()
        proc.wait(10)
    suite, skip = "voxsig real ActionCable 6.1", "raw, skip_utf8_validation=True"
    return [Row(suite, skip, raw_rate, "events/s"),
            Row(suite, "rtsync on() callback", rt_rate, "events/s", skip, raw_rate)]


def run(quick: bool) -> List[Row]:
    n, runs = (20_000, 1) if quick else (100_000, 3)
    with Server("voxsig") as server:
        def ours() -> float:
            client = rtsync.VoxsigClient(TOKEN, account_id=1, user_id=1, url=f"{server.ws_url}/cable", presence_interval=3600)
            return client_rate(client, "message.created", n, lambda: server.blast(FRAME, n))

        raw_rate = best_of(runs, lambda: raw(server, n, False))
        skip_rate = best_of(runs, lambda: raw(server, n, True))
        rt_rate = best_of(runs, ours)
    return throughput_rows(SUITE, raw_rate, skip_rate, rt_rate) + real_rails(quick)
