"""One WebSocket connection over a socket: interruptible connect, websocket-client's upgrade, our framing.

The TCP connect and TLS handshake are ours so that `abort()` from another
thread ends them at once (a blocking `connect()` cannot be interrupted, and
`stop()` promises about a second). The HTTP upgrade is websocket-client's
(headers, status, accept key) over the socket we opened. After
the upgrade every byte goes through `FrameReader` (websockets' sans-I/O
RFC 6455 core). A proxy (given, or from the environment) is tunnelled through
by `Network.connect`, on the same abortable socket; through an https:// proxy
the target's TLS runs inside the proxy's (`start_tls`). Reads are for one thread; writes may come from any thread.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

import websocket

from ..errors import ConnectionLost, RtsyncError
from ..policy import network_cause, seconds, status_error, tls_error
from ..sansio import Handshake
from .frames import Incoming
from .framing import FrameReader
from .network import Network, Verify, cert_hint, client_cert_error, ssl_context
from .tls import start_tls

__all__ = ["Verify", "WebSocketLink", "ssl_context"]

# Reads go into one buffer per link, grown while reads fill it: a fresh 64-256 KiB bytes
# object per read cost an mmap, page faults and an munmap each time (about 100 us of CPU
# per read at 2,000 messages/s), while an idle link keeps only the smallest size.
_READ_MIN, _READ_MAX = 4 * 1024, 1024 * 1024
_CLOSE_WAIT = 0.5  # how long a closing client waits for the server to end TCP (RFC 6455 7.1.1)


class WebSocketLink:
    """One open WebSocket. `recv` is for the reader thread; `send_*`, `ping`, `close`, `abort` are thread-safe."""

    def __init__(
        self,
        handshake: Handshake,
        *,
        timeout: float = 10.0,
        max_message_size: int = 16 * 1024 * 1024,
        verify: Verify = True,
        display_url: str = "",
        network: Optional[Network] = None,
    ) -> None:
        self._network = network if network is not None else Network(verify=verify)
        self.max_message_size = max_message_size
        self.subprotocol: Optional[str] = None
        self._handshake = handshake
        self._timeout = timeout
        self._ssl = self._network.context if handshake.url.startswith("wss:") else None
        self._what = f"WebSocket handshake with {display_url or 'the server'}"
        self._reader = FrameReader(max_message_size)
        self._lock = threading.Lock()  # the FrameReader's state and the socket's write side
        self._reading = threading.Lock()  # held by recv while it polls and reads the descriptors
        self._closed = False
        self._sock: Optional[socket.socket] = None
        self._poller: Any = None  # the socket's and the waker's, once connected (where poll() exists)
        self._fd = -1
        self._pending: Optional[Callable[[], int]] = None  # an SSL socket's: bytes it decrypted already
        self._inbuf = bytearray(_READ_MIN)
        self._inview = memoryview(self._inbuf)
        self._inbufs = [self._inbuf]
        # On a plain TCP socket, reads are os.readv on its descriptor: a socket with a timeout
        # (ours has one, for writes from other threads) polls again before every recv, and we
        # have just polled. TLS reads need the SSL object; Windows has no readv.
        self._readv: Optional[Callable[[int, List[bytearray]], int]] = None
        # A socket pair that `wake()` writes to: a reader waiting for its next deadline is
        # told at once that a user thread set a sooner one, so it need not wake up to look.
        self._waker: Optional[Tuple[socket.socket, socket.socket]] = None
        sslopt = {"context": self._ssl} if self._ssl is not None else None
        self._ws = websocket.WebSocket(sslopt=sslopt, skip_utf8_validation=True)

    # -- opening -----------------------------------------------------------
    def connect(self) -> "WebSocketLink":
        """Open TCP, TLS and the upgrade; `abort()` from another thread interrupts any step."""
        handshake, what = self._handshake, self._what
        headers = self._network.merge_headers(handshake.headers)
        if handshake.subprotocols:
            # Sent by hand, not with `subprotocols=`: websocket-client fails a server that answers
            # with none, which is legal; the vendor's protocol judges the answer instead.
            headers["Sec-WebSocket-Protocol"] = ", ".join(handshake.subprotocols)
        options: Dict[str, Any] = {"timeout": self._timeout, "header": headers,
                                   "suppress_origin": not handshake.origin}
        if handshake.origin:
            options["origin"] = handshake.origin
        parts = urlsplit(handshake.url)
        host = parts.hostname or ""
        secure = parts.scheme == "wss"
        try:
            options["socket"] = self._open(host, parts.port or (443 if secure else 80), secure)
            self._ws.connect(handshake.url, **options)  # type: ignore[no-untyped-call]
        except RtsyncError:  # a proxy's verdict (ConfigurationError is also a ValueError)
            self.abort()
            raise
        except websocket.WebSocketBadStatusException as exc:
            self.abort()
            retry = (exc.resp_headers or {}).get("retry-after")
            hint = handshake.status_hints.get(exc.status_code, "")
            raise status_error(exc.status_code, what, seconds(retry), hint) from None
        except ssl.SSLCertVerificationError as exc:
            self.abort()
            raise tls_error(what, exc.verify_message or str(exc)) from None
        except (OSError, websocket.WebSocketException, ValueError) as exc:
            self.abort()
            if isinstance(exc, ConnectionLost):
                raise
            refused = client_cert_error(exc, what, self._network.cert is not None)
            if refused is not None:
                raise refused from None
            hint = cert_hint(exc, secure, self._network.cert is not None)
            raise ConnectionLost(f"{what} failed: {network_cause(exc)}{hint}") from None
        if self._closed:
            self.abort()
            raise ConnectionLost("the connection was closed while opening")
        self.subprotocol = (self._ws.getheaders() or {}).get("sec-websocket-protocol")
        sock = self._sock = self._ws.sock
        self._pending = getattr(sock, "pending", None)
        if type(sock) is socket.socket and hasattr(os, "readv"):
            self._readv = os.readv
        self._make_waker()
        return self

    def _make_waker(self) -> None:
        """The waker, and the poller that watches it with the socket (where poll() exists)."""
        sock = self._sock
        assert sock is not None
        waker = socket.socketpair()
        for end in waker:
            end.setblocking(False)
        self._waker = waker
        self._fd = sock.fileno()
        if hasattr(select, "poll"):  # Windows: select() in _readable
            self._poller = select.poll()
            self._poller.register(sock, select.POLLIN)
            self._poller.register(waker[0], select.POLLIN)

    def _open(self, host: str, port: int, secure: bool) -> socket.socket:
        """TCP (and TLS) to host:port, through a proxy if one applies; `abort()` ends any step at once."""
        try:
            sock = self._network.connect(host, port, self._timeout, secure=secure,
                                         aborted=lambda: self._closed, started=self._track)
            if self._ssl is not None:
                tls = start_tls(self._ssl, sock, host)  # TLS-in-TLS handshakes here; the proxy's socket is tracked
                self._track(tls)  # shutting this one down ends a hanging handshake
                if isinstance(tls, ssl.SSLSocket):
                    tls.do_handshake()
                sock = tls
        except ConnectionAbortedError:
            raise ConnectionLost("the connection was closed while opening") from None
        sock.settimeout(self._timeout)
        return sock

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            if self._closed:
                raise ConnectionAbortedError("the connect was aborted")
            self._sock = sock

    # -- writes (any thread) -----------------------------------------------
    def send_text(self, text: str) -> None:
        self._write(self._reader.send_text, text)

    def send_binary(self, data: bytes) -> None:
        self._write(self._reader.send_binary, data)

    def ping(self, payload: bytes = b"") -> None:
        self._write(self._reader.send_ping, payload)

    def _write(self, op: Any, arg: Any) -> None:
        if self._closed:
            raise ConnectionLost("the connection is closed")
        with self._lock:
            try:
                op(arg)
                self._flush()
            except OSError as exc:
                raise ConnectionLost(f"send failed: {type(exc).__name__}") from None
            except Exception as exc:  # the library refuses a send after the close handshake began
                raise ConnectionLost(f"send failed: {exc}") from None

    def _flush(self) -> None:
        data = self._reader.outgoing()
        sock = self._sock
        if data and sock is not None:
            sock.sendall(data)

    def begin_close(self, code: int = 1000, reason: str = "") -> None:
        """Send our close frame (best effort); messages may still arrive until the server's close."""
        if self._closed:
            return
        with self._lock:
            try:
                self._reader.send_close(code, reason)
                self._flush()
            except Exception:
                pass

    def close(self, code: int = 1000) -> None:
        """The close handshake, briefly waiting for the server to end TCP (7.1.1), then shut the socket."""
        self.begin_close(code)
        sock = self._sock
        if sock is not None and not self._closed and self._reader.closed is not None:
            try:  # the server spoke last: it ends TCP first, as RFC 6455 asks
                # A poller of its own: close() may run on another thread (stop()) than recv().
                if _readable(sock, _CLOSE_WAIT, None):
                    sock.recv(_READ_MIN)
            except (OSError, ValueError):
                pass
        self.abort()

    def wake(self) -> None:
        """Make a `recv` waiting in another thread return (empty) now: a sooner deadline was set."""
        waker = self._waker
        if waker is not None:
            try:
                waker[1].send(b"\0")
            except OSError:  # full (a wake is pending anyway) or closed
                pass

    def abort(self) -> None:
        """Shut the socket at once; a `recv`, connect or handshake blocked in another thread fails at once."""
        self._closed = True
        self.wake()  # a recv waiting in poll returns now...
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        # ...and only then are its descriptors closed: closed under a poll, their numbers could be
        # reused by another connection of the process, which the poll would then wait on.
        with self._reading:
            waker, self._waker = self._waker, None
            for end in waker or ():
                end.close()
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass

    # -- reads (reader thread only) ----------------------------------------
    def recv(self, timeout: Optional[float]) -> List[Incoming]:
        """The messages and notices available, waiting up to `timeout` for the first bytes.

        An empty list means the timeout passed. Pings are answered and the server's close
        frame is echoed here; a protocol violation by the server fails the link and raises.
        """
        if self._closed:
            raise ConnectionLost("the connection is closed")
        if self._reader.more:
            items = self._feed(b"")  # frames held back behind the previous read's messages
            if items:
                return items
        with self._reading:  # abort() closes the descriptors only between reads
            if self._closed:
                raise ConnectionLost("the connection is closed")
            data = self._read(timeout)
            if not data and self._closed:  # woken by abort(), not by a deadline
                raise ConnectionLost("the connection is closed")
        return self._feed(data) if data else []

    def _read(self, timeout: Optional[float]) -> Any:
        """The bytes available after waiting up to `timeout` (empty: none came); ConnectionLost at the end."""
        # Wait with poll, never with settimeout(): the timeout is the socket's, shared with
        # writes from other threads, and settimeout(0) would make it non-blocking (BlockingIOError).
        sock = self._sock
        assert sock is not None, "recv() before connect()"
        pending = self._pending  # bytes the TLS layer holds are invisible to poll
        try:
            if not (pending is not None and pending()):
                poller = self._poller
                if poller is None:
                    if not self._readable(sock, timeout):
                        return b""
                else:
                    ready = poller.poll(None if timeout is None else timeout * 1000)
                    # Nearly always one descriptor, the socket's: the rest is the waker's business.
                    if not (len(ready) == 1 and ready[0][0] == self._fd) and not self._woken(ready):
                        return b""
            if self._readv is not None:
                got = self._readv(self._fd, self._inbufs)
            else:
                got = sock.recv_into(self._inbuf)
            data: Any = self._inview[:got]
            if got == len(self._inbuf) and got < _READ_MAX:
                self._grow()
            while got and pending is not None and pending():  # drain what TLS already decrypted
                data = bytes(data) + sock.recv(len(self._inbuf))
        except (socket.timeout, ssl.SSLWantReadError, BlockingIOError):  # the last: readv on a spurious wake
            return b""
        except (OSError, ValueError) as exc:  # ValueError: a socket closed meanwhile
            raise ConnectionLost(f"connection lost: {type(exc).__name__}") from None
        if not got:
            raise ConnectionLost("connection closed by the server without a close frame")
        return data

    def _grow(self) -> None:
        self._inbuf = bytearray(2 * len(self._inbuf))
        self._inview = memoryview(self._inbuf)
        self._inbufs = [self._inbuf]

    def _feed(self, data: bytes) -> List[Incoming]:
        with self._lock:
            try:
                return self._reader.feed(data)
            finally:
                if self._reader.to_send:
                    try:
                        self._flush()  # pongs, the answering close frame, the failing close frame
                    except OSError:
                        pass

    def _readable(self, sock: socket.socket, timeout: Optional[float]) -> bool:
        """Wait for bytes on `sock` where poll() is missing (Windows); False after `timeout` or a `wake()`."""
        waker = self._waker
        if waker is None:
            return _readable(sock, timeout, None)
        ready = select.select([sock, waker[0]], [], [], timeout)[0]  # no descriptor limit there
        if waker[0] in ready:
            self._drain_waker()
        return sock in ready

    def _woken(self, ready: List[Tuple[int, int]]) -> bool:
        """What poll() found besides the socket alone: drain the waker; True if the socket is readable too."""
        if any(fd != self._fd for fd, _ in ready):
            self._drain_waker()
        return any(fd == self._fd for fd, _ in ready)

    def _drain_waker(self) -> None:
        waker = self._waker
        try:
            while waker is not None and waker[0].recv(4096):
                pass
        except OSError:  # drained (BlockingIOError) or closed by abort()
            pass


def _readable(sock: socket.socket, timeout: Optional[float], poller: Any) -> bool:
    """Wait until `sock` has bytes; poll, not select: select() fails on descriptors above 1023."""
    if not hasattr(select, "poll"):  # Windows; select() there has no descriptor limit
        return bool(select.select([sock], [], [], timeout)[0])
    if poller is None:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
    return bool(poller.poll(None if timeout is None else timeout * 1000))
