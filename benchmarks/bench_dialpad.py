"""Dialpad (local server): events/s into an on() callback versus raw websocket-client loops (plain JSON frames)."""

from __future__ import annotations

import json
from typing import List

import requests
from common import Row, Server, best_of, client_rate, raw_loop_rate, throughput_rows

import rtsync

SUITE = "dialpad local server"
KEY = "bench-key"
EVENT = {"call_id": "{n}", "state": "ringing", "direction": "inbound", "event_timestamp": 1731624049994,
         "external_number": "+15102609745", "internal_number": "+15106666687"}
PLAIN = json.dumps(EVENT).replace('"{n}"', "{n}")


def run(quick: bool) -> List[Row]:
    n, runs = (20_000, 1) if quick else (60_000, 3)
    rows: List[Row] = []
    with Server("dialpad") as server:
        def url() -> str:
            created = requests.post(f"{server.http_url}/api/v2/websockets", json={},
                                    headers={"Authorization": f"Bearer {KEY}"}, timeout=10).json()
            return created["websocket_url"]

        def raw(skip: bool) -> float:
            return raw_loop_rate(url(), n, skip_utf8_validation=skip, start=lambda: server.blast(PLAIN, n))

        def ours() -> float:
            client = rtsync.DialpadClient(KEY, base_url=server.http_url)
            return client_rate(client, "call.*", n, lambda: server.blast(PLAIN, n))

        raw_rate = best_of(runs, lambda: raw(False))
        skip_rate = best_of(runs, lambda: raw(True))
        rt_rate = best_of(runs, ours)
        rows += throughput_rows(SUITE, raw_rate, skip_rate, rt_rate)
    return rows
