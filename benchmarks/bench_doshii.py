"""Doshii (local server): events/s into an on() callback versus raw websocket-client loops."""

from __future__ import annotations

import base64
import json
from typing import List

from common import Row, Server, best_of, client_rate, raw_loop_rate, throughput_rows

import rtsync

SUITE = "doshii local server"
CLIENT_ID = "bench-client-id"
FRAME = json.dumps({"emit": ["order_updated", {"id": "{n}", "status": "accepted", "locationId": "aH43yx2",
                                               "uri": "https://sandbox.doshii.co/partner/v3/orders/3"}]})


def run(quick: bool) -> List[Row]:
    n, runs = (20_000, 1) if quick else (100_000, 3)
    with Server("doshii") as server:
        url = f"{server.ws_url}/app/socket/v3"
        auth = base64.b64encode(CLIENT_ID.encode()).decode()

        def raw(skip: bool) -> float:
            return raw_loop_rate(f"{url}?auth={auth}", n, skip_utf8_validation=skip,
                                 start=lambda: server.blast(FRAME, n), is_event=lambda m: "emit" in m)

        def ours() -> float:
            client = rtsync.DoshiiClient(CLIENT_ID, url=url)
            return client_rate(client, "order_*", n, lambda: server.blast(FRAME, n))

        raw_rate = best_of(runs, lambda: raw(False))
        skip_rate = best_of(runs, lambda: raw(True))
        rt_rate = best_of(runs, ours)
    return throughput_rows(SUITE, raw_rate, skip_rate, rt_rate)
