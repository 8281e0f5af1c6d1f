"""Dialpad (local server): events/s into an on() callback against the raw skip loop, for plain JSON frames
and for HS256-signed ones (the baseline verifies each with PyJWT)."""

from __future__ import annotations

import json
import threading
from typing import Callable, Dict, List

import websocket
from common import Compare, Counter, Suite, blast, client_rate, post, raw_loop

KEY = "bench-key"
SECRET = "bench-secret-of-at-least-thirty-two-bytes"
EVENT = {"call_id": "{n}", "state": "ringing", "direction": "inbound", "event_timestamp": 1731624049994,
         "external_number": "+15102609745", "internal_number": "+15106666687"}
PLAIN = json.dumps(EVENT).replace('"{n}"', "{n}")
N = 30_000


def _socket_url(url: str, secret: str = "") -> str:
    created = post(f"{url}/api/v2/websockets", json={"secret": secret} if secret else {},
                   headers={"Authorization": f"Bearer {KEY}"}).json()
    return str(created["websocket_url"])


def _signed(n: int) -> List[str]:
    import jwt

    return [jwt.encode({**EVENT, "call_id": i}, SECRET, algorithm="HS256") for i in range(n)]


def _send(url: str, n: int, signed: bool) -> None:
    if signed:
        post(f"{url}/_rtsync/blast", json={"texts": _signed(n)})
    else:
        blast(url, PLAIN, n)


def rtsync_arm(url: str, quick: bool, signed: bool = False) -> Dict[str, float]:
    import rtsync

    n = N // 5 if quick else N
    client = rtsync.DialpadClient(KEY, url=url, secret=SECRET if signed else None)
    return client_rate(client, "call.*", n, lambda: _send(url, n, signed))


def raw_skip(url: str, quick: bool, signed: bool = False) -> Dict[str, float]:
    import jwt

    n = N // 5 if quick else N
    counter = Counter(n)
    ws = websocket.WebSocket(skip_utf8_validation=True)
    ws.connect(_socket_url(url, SECRET if signed else ""))
    decode: Callable[[str], object] = (lambda text: jwt.decode(text, SECRET, algorithms=["HS256"])) if signed \
        else json.loads
    threading.Thread(target=_send, args=(url, n, signed), daemon=True).start()
    raw_loop(ws, counter, decode, lambda m: True)
    ws.close()
    return {"events/s": counter.rate()}


ARMS: Dict[str, Callable[..., Dict[str, float]]] = {
    "rtsync": rtsync_arm, "raw skip_utf8+json": raw_skip,
    "rtsync, signed": lambda **kw: rtsync_arm(signed=True, **kw),
    "raw skip_utf8+jwt.decode": lambda **kw: raw_skip(signed=True, **kw),
}


def suites() -> List[Suite]:
    return [Suite("dialpad local server", "bench_dialpad",
                  ["rtsync", "raw skip_utf8+json", "rtsync, signed", "raw skip_utf8+jwt.decode"], {}, [
                      Compare("rtsync", "raw skip_utf8+json", "events/s", target=1.0),
                      Compare("rtsync, signed", "raw skip_utf8+jwt.decode", "events/s"),
                  ], server="dialpad", rounds=2, units={"events/s": "events/s"})]
