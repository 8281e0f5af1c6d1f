"""Loopback HTTP CONNECT (plain or TLS) and SOCKS5 proxies that count their tunnels, for tests of `proxy=`.

    with HttpProxy(auth=("user", "pass")) as proxy, DashlyServer() as server:
        client = DashlyClient("tok", channels=["c"], url=server.url, proxy=proxy.url)
        ...
        assert proxy.tunnels == 1 and proxy.targets == [("127.0.0.1", server.port)]

Both behave as the real thing does on the paths a client meets: HTTP 407 with
`Proxy-Authenticate` for missing or wrong credentials, 502 when the target
refuses; SOCKS5 method negotiation, RFC 1929 user/password (a wrong one ends
the connection), reply 0x05 when the target refuses, and targets given as
names (socks5h) or addresses (socks5). `.drop()` cuts every open tunnel.

`HttpProxy(ssl_context=...)` is an https:// proxy: it speaks TLS itself (a
server-side context, e.g. from a trustme CA), then CONNECT inside that TLS;
`.url` then starts with https://. A client that rejects its certificate is
counted in `.tls_failures`.
"""

from __future__ import annotations

import base64
import ipaddress
import select
import socket
import socketserver
import ssl
import struct
import threading
from typing import Any, List, Optional, Set, Tuple, TypeVar

__all__ = ["HttpProxy", "Socks5Proxy"]

P = TypeVar("P", bound="_Proxy")

_HEAD_LIMIT = 16 * 1024
_HANDSHAKE_TIMEOUT = 10.0


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: "_Proxy"


class _Proxy:
    scheme = ""

    def __init__(self, *, auth: Optional[Tuple[str, str]] = None, host: str = "127.0.0.1") -> None:
        self.auth = auth
        self.host = host
        self.port = 0
        self.ssl_context: Optional[ssl.SSLContext] = None
        self.tls_failures = 0  # TLS handshakes with the proxy that failed (e.g. its certificate refused)
        self.tunnels = 0  # tunnels opened to a target
        self.refused = 0  # clients turned away (bad or missing credentials)
        self.targets: List[Tuple[str, int]] = []  # each tunnel's target, as the client named it
        self._lock = threading.Lock()
        self._open: Set[socket.socket] = set()
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        """The proxy URL to pass as `proxy=`, credentials included when the proxy requires them."""
        cred = f"{self.auth[0]}:{self.auth[1]}@" if self.auth else ""
        scheme = "https" if self.ssl_context is not None else self.scheme
        return f"{scheme}://{cred}{self.host}:{self.port}"

    def start(self: P) -> P:
        if self._server is not None:
            return self
        owner = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                owner._serve(self.request)

        server = _Server((self.host, self.port), Handler)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"rtsync-{self.scheme}-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self.drop()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None
        self._thread = None

    def drop(self) -> None:
        """Cut every open tunnel (both ends), as a proxy restart would."""
        with self._lock:
            socks = list(self._open)
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self: P) -> P:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- serving -----------------------------------------------------------
    def _serve(self, client: socket.socket) -> None:
        client.settimeout(_HANDSHAKE_TIMEOUT)
        if self.ssl_context is not None:
            try:
                client = self.ssl_context.wrap_socket(client, server_side=True)
            except (OSError, ValueError):
                with self._lock:
                    self.tls_failures += 1
                client.close()
                return
        self._track(client, True)
        try:
            target = self._handshake(client)
            if target is not None:
                client.settimeout(None)
                self._relay(client, target)
        except (OSError, ValueError, struct.error):
            pass
        finally:
            self._track(client, False)
            client.close()

    def _handshake(self, client: socket.socket) -> Optional[socket.socket]:
        raise NotImplementedError

    def _dial(self, host: str, port: int) -> Optional[socket.socket]:
        try:
            upstream = socket.create_connection((host, port), timeout=5)
        except OSError:
            return None
        with self._lock:
            self.tunnels += 1
            self.targets.append((host, port))
        return upstream

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        self._track(upstream, True)
        try:
            ends = {client: upstream, upstream: client}
            while True:
                # Bytes TLS already decrypted are invisible to select: serve them first.
                held = [s for s in ends if isinstance(s, ssl.SSLSocket) and s.pending()]
                ready = held or select.select(list(ends), [], [], 1.0)[0]
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    ends[sock].sendall(data)
        finally:
            self._track(upstream, False)
            upstream.close()

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            (self._open.add if add else self._open.discard)(sock)

    def _refuse(self) -> None:
        with self._lock:
            self.refused += 1


class HttpProxy(_Proxy):
    """An HTTP CONNECT proxy on loopback; with `auth=(user, password)` it requires Basic credentials."""

    scheme = "http"

    def __init__(self, *, auth: Optional[Tuple[str, str]] = None, host: str = "127.0.0.1",
                 ssl_context: Optional[ssl.SSLContext] = None) -> None:
        super().__init__(auth=auth, host=host)
        self.ssl_context = ssl_context

    def _handshake(self, client: socket.socket) -> Optional[socket.socket]:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk or len(head) > _HEAD_LIMIT:
                return None
            head += chunk
            if not head[:1].isalpha():  # not HTTP (a TLS hello to the plain port): refused at once, as squid does
                client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return None
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        method, _, rest = lines[0].partition(" ")
        target = rest.rpartition(" ")[0]
        if method != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nAllow: CONNECT\r\nContent-Length: 0\r\n\r\n")
            return None
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if self.auth is not None and not self._authorized(headers.get("proxy-authorization", "")):
            self._refuse()
            client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                           b"Proxy-Authenticate: Basic realm=\"rtsync\"\r\nContent-Length: 0\r\n\r\n")
            return None
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit():
            client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return None
        upstream = self._dial(host.strip("[]"), int(port))
        if upstream is None:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return None
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        return upstream

    def _authorized(self, value: str) -> bool:
        assert self.auth is not None
        kind, _, token = value.partition(" ")
        expected = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        return kind.lower() == "basic" and token.strip() == expected


class Socks5Proxy(_Proxy):
    """A SOCKS5 proxy (CONNECT only) on loopback; with `auth=(user, password)` it requires RFC 1929 login."""

    scheme = "socks5"

    def _handshake(self, client: socket.socket) -> Optional[socket.socket]:
        version, count = _exactly(client, 2)
        if version != 5:
            return None
        methods = _exactly(client, count)
        wanted = 2 if self.auth is not None else 0
        if wanted not in methods:
            self._refuse()
            client.sendall(b"\x05\xff")
            return None
        client.sendall(bytes([5, wanted]))
        if wanted == 2 and not self._login(client):
            return None
        version, command, _, kind = _exactly(client, 4)
        if version != 5:
            return None
        if kind == 1:
            host = str(ipaddress.IPv4Address(_exactly(client, 4)))
        elif kind == 4:
            host = str(ipaddress.IPv6Address(_exactly(client, 16)))
        elif kind == 3:
            host = _exactly(client, _exactly(client, 1)[0]).decode("idna")
        else:
            client.sendall(b"\x05\x08\x00\x01\x00\x00\x00\x00\x00\x00")  # address type not supported
            return None
        port = struct.unpack("!H", _exactly(client, 2))[0]
        if command != 1:
            client.sendall(b"\x05\x07\x00\x01\x00\x00\x00\x00\x00\x00")  # command not supported
            return None
        upstream = self._dial(host, port)
        if upstream is None:
            client.sendall(b"\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00")  # connection refused
            return None
        client.sendall(b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00")
        return upstream

    def _login(self, client: socket.socket) -> bool:
        assert self.auth is not None
        version, length = _exactly(client, 2)
        user = _exactly(client, length)
        password = _exactly(client, _exactly(client, 1)[0])
        ok = version == 1 and (user, password) == (self.auth[0].encode(), self.auth[1].encode())
        client.sendall(b"\x01\x00" if ok else b"\x01\x01")
        if not ok:
            self._refuse()
        return ok


def _exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionResetError("the client closed the connection mid-handshake")
        data += chunk
    return data
