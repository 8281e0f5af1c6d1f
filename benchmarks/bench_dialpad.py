"""Dialpad (local server): events/s into an on() callback versus raw websocket-client loops, for plain JSON
frames and for HS256-signed ones (the baseline verifies each with PyJWT)."""

from __future__ import annotations

import json
from typing import List

import jwt
import requests
from common import Row, Server, best_of, client_rate, raw_loop_rate, throughput_rows

import rtsync

SUITE = "dialpad local server"
KEY = "bench-key"
EVENT = {"call_id": "{n}", "state": "ringing", "direction": "inbound", "event_timestamp": 1731624049994,
         "external_number": "+15102609745", "internal_number": "+15106666687"}
PLAIN = json.dumps(EVENT).replace('"{n}"', "{n}")
SECRET = "bench-secret-of-at-least-thirty-two-bytes"


def run(quick: bool) -> List[Row]:
    n, runs = (20_000, 1) if quick else (60_000, 3)
    rows: List[Row] = []
    # Distinct events (signed frames cannot be numbered by the server), signed before any timing.
    signed = [jwt.encode({**EVENT, "call_id": i}, SECRET, algorithm="HS256") for i in range(n)]
    with Server("dialpad") as server:
        def url(secret: str = "") -> str:
            created = requests.post(f"{server.http_url}/api/v2/websockets", json={"secret": secret} if secret else {},
                                    headers={"Authorization": f"Bearer {KEY}"}, timeout=10).json()
            return created["websocket_url"]

        def raw(skip: bool) -> float:
            return raw_loop_rate(url(), n, skip_utf8_validation=skip, start=lambda: server.blast(PLAIN, n))

        def ours(secret: str = "") -> float:
            client = rtsync.DialpadClient(KEY, url=server.http_url, secret=secret or None)
            start = (lambda: server.blast_texts(signed)) if secret else (lambda: server.blast(PLAIN, n))
            return client_rate(client, "call.*", n, start)

        def raw_signed() -> float:
            verify = lambda text: jwt.decode(text, SECRET, algorithms=["HS256"])  # noqa: E731
            return raw_loop_rate(url(SECRET), n, skip_utf8_validation=True, decode=verify,
                                 start=lambda: server.blast_texts(signed))

        raw_rate = best_of(runs, lambda: raw(False))
        skip_rate = best_of(runs, lambda: raw(True))
        rt_rate = best_of(runs, ours)
        rows += throughput_rows(SUITE, raw_rate, skip_rate, rt_rate)
        base = "raw, skip_utf8 + jwt.decode"
        raw_signed_rate = best_of(runs, raw_signed)
        rt_signed_rate = best_of(runs, lambda: ours(SECRET))
        rows += [Row(SUITE + ", signed", base, raw_signed_rate, "events/s"),
                 Row(SUITE + ", signed", "rtsync on() callback", rt_signed_rate, "events/s", base, raw_signed_rate)]
    return rows
