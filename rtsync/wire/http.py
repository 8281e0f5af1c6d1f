"""HTTP requests through `requests`, cancellable from another thread (for 25 s long polls and REST calls).

`cancel()` shuts down every socket a request of this client has open, so a
blocked `get()` returns at once with ConnectionLost; this is how `stop()`
keeps its one-second promise in the middle of a long poll.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
from urllib.parse import urlsplit
import threading
from typing import Any, Dict, Mapping, Optional, Union

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from ..errors import ConnectionLost
from ..redact import redact_url
from ..sansio import HttpResponse
from .link import Verify, ssl_context
from .tcp import open_tcp
from ..policy import network_cause, seconds, status_error, tls_error

__all__ = ["HttpClient"]


class _RedactQuery(logging.Filter):
    """urllib3 logs every request line at DEBUG, query string (and so credentials) included."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_url(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


# A filter, not a handler: it only rewrites urllib3's own records before any handler sees them.
_pool_log = logging.getLogger("urllib3.connectionpool")
if not any(isinstance(f, _RedactQuery) for f in _pool_log.filters):
    _pool_log.addFilter(_RedactQuery())


_CONNECT_TIMEOUT = 15.0


class _Registry:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        # Each connection's socket as a duplicate descriptor: shutting it down ends the connection
        # even while TLS wraps (and so detaches) the original mid-handshake.
        self.socks: Dict[Any, socket.socket] = {}
        self.cancelled = False


def _tracking(pool_cls: Any, registry: _Registry) -> Any:
    """A connection pool class whose connections record their sockets in `registry`."""

    class Conn(pool_cls.ConnectionCls):  # type: ignore[misc]
        def _new_conn(self) -> socket.socket:
            # Our own connect: registered before it starts, so cancel() also ends a hanging
            # TCP connect or TLS handshake (urllib3's blocks for the whole connect timeout).
            timeout = self.timeout if isinstance(self.timeout, (int, float)) else _CONNECT_TIMEOUT
            try:
                sock = open_tcp(self._dns_host, self.port, timeout,
                                aborted=lambda: registry.cancelled, started=self._track)
            except socket.timeout as exc:
                raise ConnectTimeoutError(self, f"connect to {self.host} timed out") from exc
            except OSError as exc:
                raise NewConnectionError(self, f"could not connect: {type(exc).__name__}") from exc
            for option in self.socket_options or ():
                sock.setsockopt(*option)
            return sock

        def _track(self, sock: socket.socket) -> None:
            with registry.lock:
                if registry.cancelled:
                    raise ConnectionAbortedError("cancelled")
                old = registry.socks.pop(self, None)
                registry.socks[self] = sock.dup()
            if old is not None:
                old.close()

        def close(self) -> None:
            super().close()
            with registry.lock:
                dup = registry.socks.pop(self, None)
            if dup is not None:
                dup.close()

    return type(pool_cls.__name__, (pool_cls,), {"ConnectionCls": Conn})


class _Adapter(HTTPAdapter):
    def __init__(self, registry: _Registry, context: Optional[ssl.SSLContext]) -> None:
        self._registry = registry
        self._context = context
        super().__init__(pool_maxsize=4)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        if self._context is not None:  # requests takes an SSLContext only through the pool manager
            kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _tracking(HTTPConnectionPool, self._registry),
            "https": _tracking(HTTPSConnectionPool, self._registry),
        }


class HttpClient:
    """A requests Session whose in-flight requests `cancel()` can interrupt from any thread."""

    def __init__(self, *, verify: Verify = True, user_agent: str = "rtsync") -> None:
        self._registry = _Registry()
        ssl_context(verify)  # the same checks and errors as the WebSocket side
        context = verify if isinstance(verify, ssl.SSLContext) else None
        # Passed on each request: a Session's `verify` loses to REQUESTS_CA_BUNDLE (requests#3829).
        self.verify: Union[bool, str]
        if isinstance(verify, ssl.SSLContext):
            self.verify = True  # the context in the pool manager decides
        else:
            self.verify = verify if isinstance(verify, bool) else os.fspath(verify)
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        adapter = _Adapter(self._registry, context)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Optional[Mapping[str, str]] = None,
        timeout: float = 30.0,
        what: str = "request",
        json: Any = None,
        check: bool = True,
    ) -> HttpResponse:
        """Send one request. Network failures become ConnectionLost; with `check`, statuses
        >= 400 become the matching rtsync error (401/403 auth, 429 rate limit, 4xx rejected)."""
        if self._registry.cancelled:
            raise ConnectionLost("the client is stopping")
        try:
            resp = self.session.request(
                method, url, headers=dict(headers or {}), timeout=(min(timeout, 15.0), timeout),
                json=json, allow_redirects=False, verify=self.verify,
            )
            body = resp.content
        except requests.exceptions.SSLError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise tls_error(what, "certificate verify failed") from None
            raise ConnectionLost(f"{what} to {_host(url)} failed: {network_cause(exc)}") from None
        except requests.RequestException as exc:
            if self._registry.cancelled:
                raise ConnectionLost("the client is stopping") from None
            raise ConnectionLost(f"{what} to {_host(url)} failed: {network_cause(exc)}") from None
        result = HttpResponse(resp.status_code, dict(resp.headers), body)
        if check and resp.status_code >= 400:
            raise status_error(resp.status_code, what, seconds(resp.headers.get("Retry-After")))
        return result

    def cancel(self) -> None:
        """Interrupt every request in flight and refuse new ones until `reset()`."""
        with self._registry.lock:
            self._registry.cancelled = True
            socks = list(self._registry.socks.values())
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def reset(self) -> None:
        with self._registry.lock:
            self._registry.cancelled = False

    def close(self) -> None:
        self.cancel()
        self.session.close()


def _host(url: str) -> str:
    return urlsplit(url).netloc.rsplit("@", 1)[-1] or url[:40]  # never the userinfo part
