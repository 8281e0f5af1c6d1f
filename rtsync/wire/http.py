"""HTTP requests through `requests`, cancellable from another thread (for 25 s long polls and REST calls).

`cancel()` shuts down every socket a request of this client has open, so a
blocked `get()` returns at once with ConnectionLost; this is how `stop()`
keeps its one-second promise in the middle of a long poll.
"""

from __future__ import annotations

import logging
import socket
from urllib.parse import urlsplit
import threading
from typing import Any, Dict, Mapping, Optional

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from ..errors import ConnectionLost, RtsyncError
from ..redact import redact_url
from ..sansio import HttpResponse
from .network import Network, Verify, cert_hint, client_cert_error
from .tls import TunnelAwareContext
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


def _tracking(pool_cls: Any, registry: _Registry, network: Network) -> Any:
    """A connection pool class whose connections record their sockets in `registry`."""

    secure = pool_cls is HTTPSConnectionPool

    class Conn(pool_cls.ConnectionCls):  # type: ignore[misc]
        def _new_conn(self) -> socket.socket:
            # Our own connect: registered before it starts, so cancel() also ends a hanging
            # TCP connect or TLS handshake (urllib3's blocks for the whole connect timeout).
            timeout = self.timeout if isinstance(self.timeout, (int, float)) else _CONNECT_TIMEOUT
            try:
                # The same proxy tunnel as the WebSocket side (CONNECT for http:// too), so every
                # transport honours proxy= alike and stays abortable; urllib3 adds TLS on top.
                sock = network.connect(self._dns_host, self.port, timeout, secure=secure,
                                       aborted=lambda: registry.cancelled, started=self._track)
            except RtsyncError as exc:  # the proxy's verdict, carried out through urllib3's wrapping
                raise NewConnectionError(self, str(exc)) from exc
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
                # fromfd, not dup(): an https:// proxy's SSLSocket refuses dup()
                registry.socks[self] = socket.fromfd(sock.fileno(), sock.family, sock.type, sock.proto)
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
    def __init__(self, registry: _Registry, network: Network) -> None:
        self._registry = registry
        self._network = network
        super().__init__(pool_maxsize=4)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        # requests takes an SSLContext only through the pool manager; it is the same context the
        # WebSocket side uses (verify= and cert= applied), so both transports trust alike.
        # Wrapped so that a socket already TLS to an https:// proxy gets the target's TLS inside it.
        kwargs["ssl_context"] = TunnelAwareContext(self._network.context)
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _tracking(HTTPConnectionPool, self._registry, self._network),
            "https": _tracking(HTTPSConnectionPool, self._registry, self._network),
        }

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        # The context decides. requests' own settings would make urllib3 rewrite its verify_mode
        # (a ValueError on a context that checks host names, and a shared context changed under
        # the WebSocket side) and load certifi into it.
        conn.cert_reqs = self._network.context.verify_mode
        conn.ca_certs = conn.ca_cert_dir = None


class HttpClient:
    """A requests Session whose in-flight requests `cancel()` can interrupt from any thread."""

    def __init__(self, *, verify: Verify = True, user_agent: str = "rtsync",
                 network: Optional[Network] = None) -> None:
        self._registry = _Registry()
        self.network = network if network is not None else Network(verify=verify)
        self.verify = self.network.verify
        self.session = requests.Session()
        # Proxies, CA bundles and .netrc come from `network`, never from requests' reading of the
        # environment: its proxy managers would bypass our abortable connect.
        self.session.trust_env = False
        self.session.headers["User-Agent"] = user_agent
        adapter = _Adapter(self._registry, self.network)
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
                method, url, headers=self.network.merge_headers(headers or {}),
                timeout=(min(timeout, 15.0), timeout), json=json, allow_redirects=False,
            )
            body = resp.content
        except requests.exceptions.SSLError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise tls_error(what, "certificate verify failed") from None
            refused = client_cert_error(exc, f"{what} to {_host(url)}", self.network.cert is not None)
            if refused is not None:
                raise refused from None
            hint = cert_hint(exc, url.startswith("https:"), self.network.cert is not None)
            raise ConnectionLost(f"{what} to {_host(url)} failed: {network_cause(exc)}{hint}") from None
        except requests.RequestException as exc:
            if self._registry.cancelled:
                raise ConnectionLost("the client is stopping") from None
            verdict = _rtsync_cause(exc)
            if verdict is not None:
                raise verdict from None
            refused = client_cert_error(exc, f"{what} to {_host(url)}", self.network.cert is not None)
            if refused is not None:  # TLS 1.3 sends the alert after the handshake: a read fails
                raise refused from None
            hint = cert_hint(exc, url.startswith("https:"), self.network.cert is not None)
            raise ConnectionLost(f"{what} to {_host(url)} failed: {network_cause(exc)}{hint}") from None
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


def _rtsync_cause(exc: BaseException) -> Optional[RtsyncError]:
    """The rtsync error (a proxy's verdict) under urllib3's and requests' wrapping, if any."""
    seen: Optional[BaseException] = exc
    for _ in range(10):
        if seen is None or isinstance(seen, RtsyncError):
            return seen
        reason = getattr(seen, "reason", None)
        nested = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        seen = seen.__cause__ or (reason if isinstance(reason, BaseException) else None) or nested
    return None


def _host(url: str) -> str:
    return urlsplit(url).netloc.rsplit("@", 1)[-1] or url[:40]  # never the userinfo part
