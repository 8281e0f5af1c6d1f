"""A WebSocket link: websocket-client for the handshake and writes, a buffered frame reader for reads.

websocket-client's own `recv()` makes two or three `recv` system calls per
frame; reading 256 KiB at a time and cutting frames out of the buffer is what
lets rtsync keep up with (and beat) a raw websocket-client loop. Frames larger
than `max_message_size` are skipped without being buffered and reported.
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
import struct
import threading
from typing import Any, Dict, List, Optional, Tuple, Union

import websocket

from ..errors import (
    AuthenticationError,
    ConnectionLost,
    FrameTooLarge,
    ProtocolError,
    RateLimited,
    RequestRejected,
    TLSVerificationError,
)
from ..sansio import Handshake

__all__ = ["BINARY", "CLOSE", "PING", "PONG", "TEXT", "WebSocketLink", "status_error", "tls_error"]

log = logging.getLogger("rtsync.transport.websocket")

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

Frame = Tuple[int, Union[str, bytes]]

_READ_SIZE = 256 * 1024


def status_error(status: int, what: str, retry_after: Optional[float] = None, hint: str = "") -> Exception:
    """Map an HTTP status on a handshake or request to the rtsync error the policy understands."""
    if hint:
        what = f"{what} ({hint})"
    if status in (401, 403):
        return AuthenticationError(
            f"{what} was refused with HTTP {status}: the credentials were not accepted. "
            "Check the token or key; rtsync will not retry."
        )
    if status == 429:
        return RateLimited(f"{what} was rate limited (HTTP 429)", retry_after=retry_after)
    if 400 <= status < 500 and status != 408:
        return RequestRejected(f"{what} was rejected with HTTP {status}", status=status)
    return ConnectionLost(f"{what} failed with HTTP {status}")


def tls_error(what: str, detail: str) -> TLSVerificationError:
    return TLSVerificationError(
        f"{what} failed: the server's TLS certificate could not be verified ({detail}). "
        "If it uses a private CA, pass verify='/path/to/ca.pem'; verify=False only for testing."
    )


class WebSocketLink:
    """One open WebSocket. `recv` is for the reader thread; `send_text`, `ping`, `abort` are thread-safe."""

    def __init__(
        self,
        handshake: Handshake,
        *,
        timeout: float = 10.0,
        max_message_size: int = 16 * 1024 * 1024,
        verify: Union[bool, str] = True,
        display_url: str = "",
    ) -> None:
        self.max_message_size = max_message_size
        self._buf = bytearray()
        self._fragments: List[bytes] = []
        self._fragment_op = 0
        self._skip = 0  # bytes of an oversized frame still to discard
        self._dropping = False  # inside a fragmented message already reported as too large
        self._closed = False
        self._lock = threading.Lock()
        self._what = f"WebSocket handshake with {display_url or 'the server'}"
        self._handshake = handshake
        self._timeout = timeout
        sslopt: Dict[str, Any] = {"cert_reqs": ssl.CERT_REQUIRED}
        if verify is False:
            sslopt = {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
        elif isinstance(verify, str):
            sslopt["ca_certs"] = verify
        self._ws = websocket.WebSocket(sslopt=sslopt, skip_utf8_validation=True, enable_multithread=True)
        self._sock: Optional[socket.socket] = None
        self._poller: Any = None  # select.poll() on the socket, made by the first recv()
        self.subprotocol: Optional[str] = None

    def connect(self) -> "WebSocketLink":
        """Open the connection; `abort()` from another thread interrupts the handshake."""
        handshake, what = self._handshake, self._what
        headers = dict(handshake.headers)
        if handshake.subprotocols:
            # Sent by hand, not with `subprotocols=`: websocket-client fails a server that answers
            # with none, which is legal; the vendor's protocol judges the answer instead.
            headers["Sec-WebSocket-Protocol"] = ", ".join(handshake.subprotocols)
        options: Dict[str, Any] = {"timeout": self._timeout, "header": headers}
        if handshake.origin:
            options["origin"] = handshake.origin
        try:
            self._ws.connect(handshake.url, suppress_origin=not handshake.origin, **options)
        except websocket.WebSocketBadStatusException as exc:
            retry = (exc.resp_headers or {}).get("retry-after")
            hint = handshake.status_hints.get(exc.status_code, "")
            raise status_error(exc.status_code, what, _seconds(retry), hint) from None
        except ssl.SSLCertVerificationError as exc:
            self.abort()
            raise tls_error(what, exc.verify_message or str(exc)) from None
        except (OSError, websocket.WebSocketException) as exc:
            self.abort()
            raise ConnectionLost(f"{what} failed: {type(exc).__name__}") from None
        if self._closed:
            raise ConnectionLost("the connection was closed while opening")
        self.subprotocol = (self._ws.getheaders() or {}).get("sec-websocket-protocol")
        self._sock = self._ws.sock
        return self

    # -- writes (any thread) -------------------------------------------
    def send_text(self, text: str) -> None:
        self._write(lambda: self._ws.send(text))

    def ping(self, payload: bytes = b"") -> None:
        self._write(lambda: self._ws.ping(payload))

    def _write(self, op: Any) -> None:
        if self._closed:
            raise ConnectionLost("the connection is closed")
        try:
            op()
        except (OSError, websocket.WebSocketException) as exc:
            raise ConnectionLost(f"send failed: {type(exc).__name__}") from None

    def begin_close(self, code: int = 1000) -> None:
        """Send a close frame (best effort); frames may still be read until the server's close."""
        if not self._closed:
            try:
                self._ws.send_close(code)
            except Exception:
                pass

    def close(self, code: int = 1000) -> None:
        """Send a close frame (best effort) and shut the socket."""
        self.begin_close(code)
        self.abort()

    def abort(self) -> None:
        """Shut the socket at once; a `recv` or handshake blocked in another thread fails at once."""
        self._closed = True
        sock = self._sock or self._ws.sock
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass

    # -- reads (reader thread only) ------------------------------------
    def recv(self, timeout: Optional[float]) -> List[Frame]:
        """Return the complete frames available, waiting up to `timeout` for the first bytes.

        An empty list means the timeout passed. PINGs are answered here.
        """
        frames = self._parse()
        if frames:
            return frames
        if self._closed:
            raise ConnectionLost("the connection is closed")
        sock = self._sock
        assert sock is not None, "recv() before connect()"
        # Wait with poll, never with settimeout(): the timeout is the socket's, shared with
        # writes from other threads, and settimeout(0) would make it non-blocking (BlockingIOError).
        pending = getattr(sock, "pending", None)  # bytes the TLS layer holds are invisible to poll
        try:
            if not (pending is not None and pending()) and not self._readable(sock, timeout):
                return []
            chunk = sock.recv(_READ_SIZE)
        except (socket.timeout, ssl.SSLWantReadError):
            return []
        except (OSError, ValueError) as exc:  # ValueError: a socket closed meanwhile
            raise ConnectionLost(f"connection lost: {type(exc).__name__}") from None
        if not chunk:
            raise ConnectionLost("connection closed by the server without a close frame")
        self._buf += chunk
        # Drain what the kernel (or the TLS layer) already holds without blocking again.
        pending = getattr(sock, "pending", None)
        while pending is not None and pending():
            self._buf += sock.recv(_READ_SIZE)
        return self._parse()

    def _readable(self, sock: socket.socket, timeout: Optional[float]) -> bool:
        if not hasattr(select, "poll"):  # Windows; select() there has no descriptor limit
            return bool(select.select([sock], [], [], timeout)[0])
        if self._poller is None:  # poll, not select: select() fails on descriptors above 1023
            self._poller = select.poll()
            self._poller.register(sock, select.POLLIN)
        return bool(self._poller.poll(None if timeout is None else timeout * 1000))

    def _parse(self) -> List[Frame]:
        out: List[Frame] = []
        buf = self._buf
        pos = 0
        end = len(buf)
        while True:
            if self._skip:
                take = min(self._skip, end - pos)
                pos += take
                self._skip -= take
                if self._skip:
                    break
            if end - pos < 2:
                break
            b0, b1 = buf[pos], buf[pos + 1]
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if end - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            elif length == 127:
                if end - pos < 10:
                    break
                (length,) = struct.unpack_from("!Q", buf, pos + 2)
                head = 10
            masked = b1 & 0x80
            if masked:
                head += 4
            opcode = b0 & 0x0F
            if length > self.max_message_size and opcode < 0x8:
                self._skip = length - min(length, end - pos - head)
                pos = min(end, pos + head + length)
                self._fragments = []
                out.append((-1, f"{length}"))
                continue
            if end - pos < head + length:
                break
            payload = bytes(buf[pos + head : pos + head + length])
            if masked:
                key = buf[pos + head - 4 : pos + head]
                payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            pos += head + length
            fin = b0 & 0x80
            if opcode >= 0x8:
                if opcode == PING:
                    try:
                        self._ws.pong(payload)
                    except Exception:
                        pass
                out.append((opcode, payload))
                continue
            if opcode != CONT:
                self._fragment_op = opcode
                self._fragments = []
                self._dropping = False
            elif self._dropping:
                self._dropping = not fin
                continue
            self._fragments.append(payload)
            if not fin:
                size = sum(map(len, self._fragments))
                if size > self.max_message_size:
                    out.append((-1, f"{size}+"))
                    self._fragments = []
                    self._dropping = True
                continue
            data = self._fragments[0] if len(self._fragments) == 1 else b"".join(self._fragments)
            self._fragments = []
            if self._fragment_op == TEXT:
                try:
                    out.append((TEXT, data.decode("utf-8")))
                except UnicodeDecodeError:
                    out.append((-2, "text frame is not valid UTF-8"))
            else:
                out.append((BINARY, data))
        if pos:
            del buf[:pos]
        return out

    @staticmethod
    def frame_error(opcode: int, detail: Union[str, bytes], limit: int) -> ProtocolError:
        """Turn the reader's pseudo-frames (-1 oversized, -2 bad UTF-8) into errors."""
        if opcode == -1:
            return FrameTooLarge(
                f"skipped a {detail!s}-byte frame, larger than max_message_size={limit}; "
                "raise max_message_size if such frames are expected"
            )
        return ProtocolError(detail if isinstance(detail, str) else detail.decode("utf-8", "replace"))


def close_details(payload: bytes) -> Tuple[Optional[int], str]:
    """Split a close frame's payload into (code, reason)."""
    if len(payload) >= 2:
        code = struct.unpack("!H", payload[:2])[0]
        return code, payload[2:].decode("utf-8", "replace")
    return None, ""


def _seconds(value: Optional[str]) -> Optional[float]:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
