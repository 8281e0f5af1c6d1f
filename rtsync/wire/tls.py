"""TLS inside TLS (a wss:// or https:// target through an https:// proxy), for the WebSocket link and urllib3 alike.

Python's `ssl` cannot wrap an `SSLSocket` in another one; urllib3's
`SSLTransport` (an `SSLObject` over memory BIOs, the same class urllib3 uses
for its own https:// proxies, with one API in 1.26 and 2.x) does the inner
TLS over the proxy's `SSLSocket`. `TlsInTls` adds what our transports need on
top: `shutdown()` so that `abort()`/`cancel()` end it from another thread, and
`pending()` so that a reader never waits on `poll` for bytes TLS already holds.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any, Optional, cast

from urllib3.util.ssltransport import SSLTransport

__all__ = ["TlsInTls", "TunnelAwareContext", "start_tls"]


class TlsInTls(SSLTransport):
    """TLS to the target over the TLS connection to the proxy; the handshake runs in the constructor."""

    def shutdown(self, how: int) -> None:
        # The outer socket's shutdown reaches the TCP connection below both TLS layers, so a
        # recv or handshake blocked in another thread fails at once.
        self.socket.shutdown(how)

    def pending(self) -> int:
        """Bytes either layer holds and has not handed on, invisible to poll on the descriptor: the
        inner record being read, inner records already received whole, the outer layer's plaintext.
        A partial inner record counts too: its sender wrote it whole, so the rest is on its way."""
        outer = self.socket.pending() if isinstance(self.socket, ssl.SSLSocket) else 0
        return int(self.sslobj.pending()) + self.incoming.pending + outer

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        data = super().recv(buflen, flags)
        return data if isinstance(data, bytes) else b""  # a ragged EOF comes back as 0, not b""

    def setblocking(self, flag: bool) -> None:
        self.socket.setblocking(flag)


def start_tls(context: ssl.SSLContext, sock: socket.socket, server_hostname: Optional[str]) -> socket.socket:
    """TLS to `server_hostname` over `sock`: TLS-in-TLS when `sock` is already TLS (to a proxy),
    else an `SSLSocket` whose handshake the caller runs (so it can track the socket first).

    A `TlsInTls` is typed as the socket it stands in for: it has every method our transports use.
    """
    if isinstance(sock, ssl.SSLSocket):
        SSLTransport._validate_ssl_context_for_tls_in_tls(context)
        return cast(socket.socket, TlsInTls(sock, context, server_hostname))
    return context.wrap_socket(sock, server_hostname=server_hostname, do_handshake_on_connect=False)


class TunnelAwareContext:
    """An `SSLContext` stand-in for urllib3: everything goes to the real context, except that
    wrapping a socket that is already TLS (a tunnel through an https:// proxy) does TLS-in-TLS.

    urllib3 wraps whatever socket our connection class opened with `context.wrap_socket`; it
    only does TLS-in-TLS itself for proxies it manages, and ours are ours (abortable).
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        object.__setattr__(self, "_context", context)

    def wrap_socket(self, sock: socket.socket, server_hostname: Optional[str] = None, **kwargs: Any) -> Any:
        if isinstance(sock, ssl.SSLSocket):
            return start_tls(self._context, sock, server_hostname)
        return self._context.wrap_socket(sock, server_hostname=server_hostname, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._context, name, value)  # urllib3 sets verify_mode: the real context must see it
