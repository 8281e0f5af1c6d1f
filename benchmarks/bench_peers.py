"""rtsync against peer libraries on the local servers: QuickMeet (DDP) vs rocketchat-async and python-ddp,
Voxsig (ActionCable) vs actioncable-client and Rails' own server, Doshii 64 KB with the cyclic GC on and off.

Peers are optional (`pip install -e .[bench]`; rocketchat-async pins an old
websockets, so it goes in with `--no-deps`): an arm whose peer is missing
fails, says so, and its rows are left out.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import shutil
import threading
import time
from typing import Callable, Dict, List

import websocket
from common import Compare, Counter, Suite, blast, client_rate, pad_to, raw_loop

# -- QuickMeet (DDP) -----------------------------------------------------------------

USER, PASSWORD = "alice", "alice-password"
DDP_FRAME = json.dumps({"msg": "changed", "collection": "stream-room-messages", "id": "id",
                        "fields": {"eventName": "GENERAL", "args": [
                            {"_id": "m{n}", "rid": "GENERAL", "msg": "hello", "ts": {"$date": 1700000000000},
                             "u": {"_id": "bob-id", "username": "bob"}}]}})
STREAMS, CALLS = 30_000, 2_000


def _ddp_counts(quick: bool) -> tuple:
    return (STREAMS // 5, CALLS // 5) if quick else (STREAMS, CALLS)


def qm_rtsync(url: str, quick: bool) -> Dict[str, float]:
    import rtsync

    n, calls = _ddp_counts(quick)
    counter = Counter(n)
    client = rtsync.QuickMeetClient(url=f"{url.replace('http', 'ws')}/websocket", username=USER, password=PASSWORD)
    client.on("stream-room-messages", lambda e: counter.hit())
    with client:
        if not client.wait_connected(30):
            raise RuntimeError("not connected")
        client.subscribe_room_messages("GENERAL")
        t0 = time.perf_counter()
        for _ in range(calls):
            client.call("rooms/get")
        call_rate = calls / (time.perf_counter() - t0)
        blast(url, DDP_FRAME, n)
        rate = counter.rate()
    return {"stream events/s": rate, "calls/s": call_rate}


def qm_rocketchat_async(url: str, quick: bool) -> Dict[str, float]:
    from rocketchat_async import RocketChat

    n, calls = _ddp_counts(quick)
    counter = Counter(n)

    async def main() -> Dict[str, float]:
        rc = RocketChat()
        await rc.start(f"{url.replace('http', 'ws')}/websocket", USER, PASSWORD)
        await rc.subscribe_to_channel_messages_raw("GENERAL", lambda *args: counter.hit())
        t0 = time.perf_counter()
        for _ in range(calls):
            await rc.get_channels()
        call_rate = calls / (time.perf_counter() - t0)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, blast, url, DDP_FRAME, n)
        while not counter.done.is_set():
            await asyncio.sleep(0.01)
        return {"stream events/s": counter.rate(), "calls/s": call_rate}

    return asyncio.run(main())


def qm_python_ddp(url: str, quick: bool) -> Dict[str, float]:
    from DDPClient import DDPClient

    n, calls = _ddp_counts(quick)
    counter = Counter(n)
    client = DDPClient(f"{url.replace('http', 'ws')}/websocket", auto_reconnect=False)
    connected, answered = threading.Event(), threading.Event()
    client.on("connected", connected.set)
    client.on("changed", lambda collection, id, fields, cleared: counter.hit())
    client.connect()
    if not connected.wait(30):
        raise RuntimeError("python-ddp never connected")
    login = {"user": {"username": USER},
             "password": {"digest": hashlib.sha256(PASSWORD.encode()).hexdigest(), "algorithm": "sha-256"}}
    client.call("login", [login], lambda error, result: answered.set())
    answered.wait(30)
    client.subscribe("stream-room-messages", ["GENERAL", {"useCollection": False, "args": []}])
    t0 = time.perf_counter()
    for _ in range(calls):
        answered.clear()
        client.call("rooms/get", [], lambda error, result: answered.set())
        if not answered.wait(30):
            raise RuntimeError("python-ddp call unanswered")
    call_rate = calls / (time.perf_counter() - t0)
    blast(url, DDP_FRAME, n)
    rate = counter.rate()
    client.close()
    return {"stream events/s": rate, "calls/s": call_rate}


# -- Voxsig (ActionCable) ------------------------------------------------------------

TOKEN = "good-user-token"
IDENT = {"channel": "RoomChannel", "pubsub_token": TOKEN, "account_id": 1, "user_id": 1}
# "action" for actioncable-client, which reads it; "event" and "data" for Chatwoot's shape.
MESSAGE = {"event": "message.created", "action": "message.created", "data": {"id": 1, "content": "hi", "account_id": 1}}
VOX = 30_000


def _cable_frame(identifier: str) -> str:
    return json.dumps({"identifier": identifier, "message": MESSAGE})


def vox_rtsync(url: str, quick: bool, cable: str = "") -> Dict[str, float]:
    import rtsync

    n = VOX // 5 if quick else VOX
    client = rtsync.VoxsigClient(TOKEN, account_id=1, user_id=1, url=cable or f"{url.replace('http', 'ws')}/cable",
                                 presence_interval=3600)
    return client_rate(client, "message.created", n,
                       lambda: _vox_send(url, cable, json.dumps(IDENT, separators=(",", ":")), n))


def vox_actioncable_client(url: str, quick: bool, cable: str = "") -> Dict[str, float]:
    from actioncable_client.connection import Connection
    from actioncable_client.subscription import Subscription

    n = VOX // 5 if quick else VOX
    counter = Counter(n)
    connection = Connection(url=cable or f"{url.replace('http', 'ws')}/cable", origin=url,
                            header={"Sec-WebSocket-Protocol": "actioncable-v1-json"})
    subscription = Subscription(connection, identifier=dict(IDENT))
    subscription.on_receive(lambda message: counter.hit())
    connection.connect()
    subscription.create()  # before the socket is open it waits for the welcome
    for _ in range(3000):
        if subscription.state == "subscribed":
            break
        time.sleep(0.01)
    else:
        raise RuntimeError("actioncable-client never subscribed")
    _vox_send(url, cable, json.dumps(IDENT), n)
    rate = counter.rate()
    connection.disconnect()
    return {"events/s": rate}


def vox_raw_skip(url: str, quick: bool, cable: str = "") -> Dict[str, float]:
    n = VOX // 5 if quick else VOX
    counter = Counter(n)
    identifier = json.dumps(IDENT, separators=(",", ":"))
    ws = websocket.WebSocket(skip_utf8_validation=True)
    ws.connect(cable or f"{url.replace('http', 'ws')}/cable", subprotocols=["actioncable-v1-json"], origin=url)
    ws.send(json.dumps({"command": "subscribe", "identifier": identifier}))
    while json.loads(ws.recv()).get("type") != "confirm_subscription":
        pass
    threading.Thread(target=_vox_send, args=(url, cable, identifier, n), daemon=True).start()
    raw_loop(ws, counter, json.loads, lambda m: "message" in m and "type" not in m)
    ws.close()
    return {"events/s": counter.rate()}


def _vox_send(url: str, cable: str, identifier: str, n: int) -> None:
    if cable:  # Rails: its own broadcast, through its pubsub
        from common import post

        post(f"{url}/control/broadcast", json={"stream": "account_1", "message": MESSAGE, "count": n})
    else:
        blast(url, _cable_frame(identifier), n)


def _rails(fn: Callable[..., Dict[str, float]]) -> Callable[..., Dict[str, float]]:
    """Run `fn` against Rails' ActionCable under Puma (tests/interop/voxsig_rails), started for this arm."""

    def arm(quick: bool) -> Dict[str, float]:
        import pathlib
        import socket
        import subprocess

        import requests

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        config = pathlib.Path(__file__).resolve().parent.parent / "tests" / "interop" / "voxsig_rails"
        proc = subprocess.Popen(["puma", "-b", f"tcp://127.0.0.1:{port}", "-t", "4:8", "config.ru"], cwd=config,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    requests.post(f"{base}/control/health", timeout=1)
                    break
                except requests.RequestException:
                    time.sleep(0.1)
            return fn(base, True, cable=f"ws://127.0.0.1:{port}/cable")
        finally:
            proc.kill()
            proc.wait(10)

    return arm


# -- Doshii 64 KB, cyclic GC on and off ------------------------------------------------

CLIENT_ID = "bench-client-id"
DOSHII_N = 1_500
DOSHII_FRAME = pad_to(65536, lambda pad: json.dumps({"emit": ["order_updated", {
    "id": "{n}", "status": "accepted", "locationId": "aH43yx2", "note": pad,
    "uri": "https://sandbox.doshii.co/partner/v3/orders/3"}]}))


def _doshii_url(url: str) -> str:
    return f"{url.replace('http', 'ws')}/app/socket/v3"


def doshii_rtsync(url: str, quick: bool, gc_off: bool = False) -> Dict[str, float]:
    import gc

    import rtsync

    if gc_off:
        gc.disable()
    n = DOSHII_N // 3 if quick else DOSHII_N
    client = rtsync.DoshiiClient(CLIENT_ID, url=_doshii_url(url))
    return client_rate(client, "order_*", n, lambda: blast(url, DOSHII_FRAME, n))


def doshii_raw_skip(url: str, quick: bool, gc_off: bool = False) -> Dict[str, float]:
    import gc

    if gc_off:
        gc.disable()
    n = DOSHII_N // 3 if quick else DOSHII_N
    counter = Counter(n)
    auth = base64.b64encode(CLIENT_ID.encode()).decode()
    ws = websocket.WebSocket(skip_utf8_validation=True)
    ws.connect(f"{_doshii_url(url)}?auth={auth}")
    threading.Thread(target=blast, args=(url, DOSHII_FRAME, n), daemon=True).start()
    raw_loop(ws, counter, json.loads, lambda m: "emit" in m)
    ws.close()
    return {"events/s": counter.rate()}


ARMS: Dict[str, Callable[..., Dict[str, float]]] = {
    "rtsync": qm_rtsync, "rocketchat-async": qm_rocketchat_async, "python-ddp": qm_python_ddp,
    "vox rtsync": vox_rtsync, "vox actioncable-client": vox_actioncable_client, "vox raw skip_utf8+json": vox_raw_skip,
    "rails rtsync": _rails(vox_rtsync), "rails actioncable-client": _rails(vox_actioncable_client),
    "rails raw skip_utf8+json": _rails(vox_raw_skip),
    "doshii rtsync": doshii_rtsync, "doshii rtsync, GC off": lambda **kw: doshii_rtsync(gc_off=True, **kw),
    "doshii raw skip_utf8+json": doshii_raw_skip,
    "doshii raw skip_utf8+json, GC off": lambda **kw: doshii_raw_skip(gc_off=True, **kw),
}


def suites() -> List[Suite]:
    ev = {"events/s": "events/s", "stream events/s": "events/s", "calls/s": "calls/s"}
    out = [
        Suite("quickmeet vs DDP peers", "bench_peers", ["rtsync", "rocketchat-async", "python-ddp"], {}, [
            Compare("rtsync", "rocketchat-async", "stream events/s", target=1.0),
            Compare("rtsync", "rocketchat-async", "calls/s", target=1.0),
            Compare("rtsync", "python-ddp", "stream events/s"),
            Compare("rtsync", "python-ddp", "calls/s"),
        ], server="quickmeet", units=ev),
        Suite("voxsig local ActionCable", "bench_peers",
              ["vox rtsync", "vox actioncable-client", "vox raw skip_utf8+json"], {}, [
                  Compare("vox rtsync", "vox actioncable-client", "events/s"),
                  Compare("vox rtsync", "vox raw skip_utf8+json", "events/s", target=1.0),
              ], server="voxsig", units=ev),
        Suite("doshii 64 KB", "bench_peers",
              ["doshii rtsync", "doshii rtsync, GC off", "doshii raw skip_utf8+json",
               "doshii raw skip_utf8+json, GC off"], {}, [
                  Compare("doshii rtsync", "doshii raw skip_utf8+json", "events/s", target=1.0),
                  Compare("doshii rtsync, GC off", "doshii raw skip_utf8+json, GC off", "events/s", target=1.0),
              ], server="doshii", units=ev),
    ]
    if shutil.which("puma"):
        out.append(Suite("voxsig Rails ActionCable 6.1", "bench_peers",
                         ["rails rtsync", "rails actioncable-client", "rails raw skip_utf8+json"], {}, [
                             Compare("rails rtsync", "rails actioncable-client", "events/s"),
                             Compare("rails rtsync", "rails raw skip_utf8+json", "events/s", target=1.0),
                         ], rounds=5, units=ev, timeout=240))
    return out
