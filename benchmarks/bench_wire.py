"""The WebSocket layer alone: one 4 MiB text message sent as 64-byte fragments, rtsync's link vs websocket-client.

A tiny server thread in the arm's process answers the upgrade and writes the
pre-built fragments; the time is from the upgrade to the whole message, so an
assembly that grows quadratically with the message shows at once.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
import threading
import time
from typing import Callable, Dict, List

from common import Compare, Suite

SIZE, FRAGMENT = 4 * 1024 * 1024, 64
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _fragments(size: int) -> bytes:
    chunk = b"a" * FRAGMENT
    count = size // FRAGMENT
    frames = [struct.pack("!BB", 0x01 if i == 0 else (0x80 if i == count - 1 else 0x00), FRAGMENT) + chunk
              for i in range(count)]
    return b"".join(frames)


def _serve(data: bytes) -> str:
    """Listen once: answer one upgrade, write `data`, keep the socket open a while; return the ws:// URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def run() -> None:
        conn, _ = listener.accept()
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(4096)
        key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        conn.sendall(data)
        time.sleep(30)
        conn.close()

    threading.Thread(target=run, daemon=True).start()
    return f"ws://127.0.0.1:{listener.getsockname()[1]}/"


def _timed(receive: Callable[[str], str], quick: bool) -> Dict[str, float]:
    size = SIZE // 4 if quick else SIZE
    url = _serve(_fragments(size))
    t0 = time.perf_counter()
    text = receive(url)
    elapsed = time.perf_counter() - t0
    if len(text) != size:
        raise RuntimeError(f"got {len(text)} bytes of {size}")
    return {"seconds": elapsed}


def frag_rtsync(quick: bool) -> Dict[str, float]:
    from rtsync.sansio import Handshake
    from rtsync.wire import WebSocketLink

    def receive(url: str) -> str:
        link = WebSocketLink(Handshake(url=url), max_message_size=64 * 1024 * 1024).connect()
        try:
            while True:
                for item in link.recv(10.0):
                    if isinstance(item, str):
                        return item
        finally:
            link.abort()

    return _timed(receive, quick)


def frag_websocket_client(quick: bool) -> Dict[str, float]:
    import websocket

    def receive(url: str) -> str:
        ws = websocket.WebSocket(skip_utf8_validation=False)
        ws.connect(url, suppress_origin=True)
        try:
            return str(ws.recv())
        finally:
            ws.abort()

    return _timed(receive, quick)


ARMS: Dict[str, Callable[..., Dict[str, float]]] = {
    "rtsync link": frag_rtsync, "websocket-client": frag_websocket_client,
}


def suites() -> List[Suite]:
    return [Suite("4 MiB in 64 B fragments", "bench_wire", ["rtsync link", "websocket-client"], {}, [
        Compare("rtsync link", "websocket-client", "seconds", higher_is_better=False, target=1.0),
    ], units={"seconds": "s"})]
