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


def run(quick: bool) -> List[Row]:
    n, runs = (20_000, 1) if quick else (100_000, 3)
    with Server("voxsig") as server:
        def ours() -> float:
            client = rtsync.VoxsigClient(TOKEN, 1, 1, url=f"{server.ws_url}/cable", presence_interval=3600)
            return client_rate(client, "message.created", n, lambda: server.blast(FRAME, n))

        raw_rate = best_of(runs, lambda: raw(server, n, False))
        skip_rate = best_of(runs, lambda: raw(server, n, True))
        rt_rate = best_of(runs, ours)
    return throughput_rows(SUITE, raw_rate, skip_rate, rt_rate)
