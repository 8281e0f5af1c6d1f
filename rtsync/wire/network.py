"""The network options every transport shares: TLS verify and client cert, a proxy (or the environment's), headers."""

from __future__ import annotations

import logging
import os
import re
import socket
import ssl
import urllib.request
from typing import Any, Callable, Dict, Mapping, Optional, Set, Tuple, Union
from urllib.parse import unquote, urlsplit

from python_socks import ProxyError, ProxyTimeoutError, ProxyType
from python_socks.sync import Proxy as SocksProxy

from ..errors import AuthenticationError, ConfigurationError, ConnectionLost, RtsyncError, TLSVerificationError
from ..policy import network_cause
from .tcp import open_tcp

__all__ = ["Cert", "Network", "Proxy", "ProxyOption", "Verify", "cert_hint", "client_cert_error", "ssl_context"]

Verify = Union[bool, str, "os.PathLike[str]", ssl.SSLContext]
Cert = Union[str, "os.PathLike[str]", Tuple[Union[str, "os.PathLike[str]"], Union[str, "os.PathLike[str]"]]]
ProxyOption = Union[None, bool, str]

log = logging.getLogger("rtsync.network")

_PROXY_TYPES = {"http": ProxyType.HTTP, "https": ProxyType.HTTP,  # https: CONNECT inside TLS to the proxy
                "socks5": ProxyType.SOCKS5, "socks5h": ProxyType.SOCKS5}
_DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}
# OpenSSL's reasons for a plain-text answer to its hello (1.1, 3.0-3.1, 3.2+).
_NOT_TLS = frozenset({"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE"})
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Headers that frame the request or the upgrade: a user value would break the handshake, not extend it.
_RESERVED = frozenset({
    "host", "connection", "upgrade", "content-length", "transfer-encoding", "sec-websocket-key",
    "sec-websocket-version", "sec-websocket-accept", "sec-websocket-extensions", "proxy-authorization",
})


def ssl_context(verify: Verify) -> ssl.SSLContext:
    """The TLS context for `verify`: True (system CAs), False (no checks), a CA bundle path, or a context."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if verify is True:
        ctx = ssl.create_default_context()
        if not ctx.cert_store_stats().get("x509_ca"):  # no system store (python.org macOS builds)
            import certifi  # requests' own dependency, so always there

            ctx.load_verify_locations(certifi.where())
        return ctx
    if isinstance(verify, (str, os.PathLike)):
        path = os.fspath(verify)
        try:
            return ssl.create_default_context(cafile=path)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"verify={path!r} is not a readable CA bundle ({exc}); pass the path of a PEM file"
            ) from None
    raise ConfigurationError(
        f"verify must be True, False, a CA bundle path or an ssl.SSLContext, not {type(verify).__name__}"
    )


# TLS alerts by which a server says it wants (another) client certificate: retrying cannot help.
_CLIENT_CERT_ALERTS = ("CERTIFICATE_REQUIRED", "ALERT_BAD_CERTIFICATE", "ALERT_UNKNOWN_CA",
                       "ALERT_CERTIFICATE_UNKNOWN", "ALERT_CERTIFICATE_EXPIRED", "ALERT_CERTIFICATE_REVOKED")


def client_cert_error(exc: BaseException, what: str, given: bool) -> Optional[AuthenticationError]:
    """The final error for a server that refused our client certificate (or its absence), else None."""
    seen: Optional[BaseException] = exc
    for _ in range(10):
        if seen is None:
            return None
        reason = str(getattr(seen, "reason", "") or "") if isinstance(seen, ssl.SSLError) else ""
        if any(alert in reason for alert in _CLIENT_CERT_ALERTS):
            fix = ("it refused the one given in cert= (is it issued by a CA the server trusts, and current?)"
                   if given else "pass cert='client.pem' (certificate and key) or cert=(certfile, keyfile)")
            return AuthenticationError(f"{what} failed: the server requires a client certificate "
                                       f"(TLS alert {reason}); {fix}")
        nested = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        reason_exc = getattr(seen, "reason", None)
        seen = seen.__cause__ or seen.__context__ or nested or (
            reason_exc if isinstance(reason_exc, BaseException) else None)
    return None


def cert_hint(exc: BaseException, secure: bool, cert_given: bool) -> str:
    """A hint for a TLS connection cut right away without an alert: many servers (asyncio's, some
    gateways) drop a client that sent no certificate that way instead of sending the alert."""
    if not secure or cert_given:
        return ""
    seen: Optional[BaseException] = exc
    for _ in range(10):
        if seen is None:
            return ""
        if isinstance(seen, (ssl.SSLEOFError, ConnectionResetError)) or "UNEXPECTED_EOF" in str(seen):
            return "; if the server requires a client certificate, pass cert='client.pem'"
        nested = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        reason = getattr(seen, "reason", None)
        seen = seen.__cause__ or seen.__context__ or nested or (reason if isinstance(reason, BaseException) else None)
    return ""


class Proxy:
    """One proxy server; its credentials stay out of `str`, `repr` and every message."""

    def __init__(self, url: str, *, source: str = "proxy=") -> None:
        if not isinstance(url, str):
            raise ConfigurationError(f"{source} must be a proxy URL string, None or False, not {type(url).__name__}")
        try:
            parts = urlsplit(url if "://" in url else f"http://{url}")  # curl and requests read "host:port" as http
            parts.hostname  # noqa: B018 - raises on a malformed IPv6 literal
        except ValueError:
            raise ConfigurationError(f"{source} is not a valid proxy URL; write it as http://host:port") from None
        scheme = parts.scheme.lower()
        self.shown = f"{scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if _port(parts) else "")
        if scheme not in _PROXY_TYPES:
            raise ConfigurationError(
                f"{source} {self.shown}: unsupported proxy scheme {scheme!r}; "
                "use http://, https://, socks5:// or socks5h://")
        if not parts.hostname:
            raise ConfigurationError(f"{source} has no host: write it as {scheme}://host:port")
        port = _port(parts)
        if port is False:
            raise ConfigurationError(f"{source} {scheme}://{parts.hostname}: the port is not a number")
        self.scheme = scheme
        self.host = parts.hostname
        self.port = int(port) if port else _DEFAULT_PORTS[scheme]
        self.shown = f"{scheme}://{self.host}:{self.port}"
        self._username = unquote(parts.username) if parts.username is not None else None
        self._password = unquote(parts.password) if parts.password is not None else None
        if self._username is not None and self._password is None:
            self._password = ""

    def __repr__(self) -> str:
        return f"Proxy({self.shown!r})"

    __str__ = __repr__

    @property
    def secrets(self) -> Tuple[str, ...]:
        """The credential values, for redaction of anything that might echo them."""
        return tuple(v for v in (self._username, self._password) if v)

    def tunnel(self, host: str, port: int, timeout: float, *, aborted: Callable[[], bool],
               started: Callable[[socket.socket], None], context: Optional[ssl.SSLContext] = None) -> socket.socket:
        """A socket connected through this proxy to host:port (python-socks speaks CONNECT / SOCKS5).

        For an https:// proxy it is an `SSLSocket` (TLS to the proxy, verified with `context`, the
        same trust as the target's); `start_tls` then runs the target's TLS inside it.
        """
        def to_proxy(**_: Any) -> socket.socket:
            try:
                sock = open_tcp(self.host, self.port, timeout, aborted=aborted, started=started)
            except ConnectionAbortedError:
                raise
            except OSError as exc:
                raise ConnectionLost(f"could not connect to the proxy {self.shown}: {network_cause(exc)}") from None
            return self._tls(sock, context, aborted, started) if self.scheme == "https" else sock

        # python-socks' `forward` seam hands it a socket to the proxy; ours is the abortable one.
        forward: Any = _Forward(to_proxy)
        client = SocksProxy(_PROXY_TYPES[self.scheme], self.host, self.port, self._username, self._password,
                            rdns=self.scheme != "socks5", forward=forward)
        try:
            return client.connect(host, port, timeout=timeout)
        except RtsyncError:  # the TLS verdict on the proxy itself
            raise
        except ProxyTimeoutError:
            raise ConnectionLost(f"the proxy {self.shown} did not answer in time") from None
        except ProxyError as exc:
            raise self._refused(exc, host, port) from None
        except ConnectionAbortedError:
            raise
        except OSError as exc:
            if aborted():
                raise ConnectionAbortedError("the connect was aborted") from None
            raise ConnectionLost(f"the proxy {self.shown} failed: {network_cause(exc)}") from None

    def _tls(self, sock: socket.socket, context: Optional[ssl.SSLContext], aborted: Callable[[], bool],
             started: Callable[[socket.socket], None]) -> socket.socket:
        """TLS to the proxy itself; its certificate must be valid for the proxy's host name."""
        try:
            tls = (context or ssl_context(True)).wrap_socket(sock, server_hostname=self.host,
                                                             do_handshake_on_connect=False)
        except BaseException:
            sock.close()
            raise
        try:
            started(tls)  # wrapping detached `sock`: this is the one to shut to end the handshake
            tls.do_handshake()
            return tls
        except ConnectionAbortedError:
            tls.close()
            raise
        except ssl.SSLCertVerificationError as exc:
            tls.close()
            raise TLSVerificationError(
                f"TLS to the proxy {self.shown} failed: the proxy's certificate could not be verified "
                f"({exc.verify_message or exc.reason}). The proxy is checked with the same verify= as the "
                "server: pass a CA bundle holding both CAs (or an ssl.SSLContext that trusts both)") from None
        except OSError as exc:
            tls.close()
            if aborted():
                raise ConnectionAbortedError("the connect was aborted") from None
            reason = getattr(exc, "reason", None)
            if reason in _NOT_TLS:  # it answered in plain text
                raise ConnectionLost(f"TLS to the proxy {self.shown} failed: it does not speak TLS ({reason}); "
                                     "if it is a plain HTTP proxy, write its URL with http://") from None
            raise ConnectionLost(f"TLS to the proxy {self.shown} failed: {network_cause(exc)}") from None

    def _refused(self, exc: ProxyError, host: str, port: int) -> Exception:
        code = getattr(exc, "error_code", None)
        text = str(exc)
        if code == 407 or "authentication" in text.lower():
            given = "the credentials in the proxy URL were refused" if self._username else "it requires credentials"
            return AuthenticationError(
                f"the proxy {self.shown} refused the tunnel to {host}:{port}: {given} "
                f"({'407 Proxy Authentication Required' if code == 407 else text}); "
                "put the right user:password in the proxy URL (http://user:pass@host:port)")
        return ConnectionLost(f"the proxy {self.shown} refused the tunnel to {host}:{port}: {text[:160]}")


class _Forward:
    def __init__(self, connect: Callable[..., socket.socket]) -> None:
        self.connect = connect


def _port(parts: Any) -> Union[int, None, bool]:
    try:
        return parts.port  # type: ignore[no-any-return]
    except ValueError:
        return False


class Network:
    """Validated network options, shared by the WebSocket links and the HTTP client of one client."""

    def __init__(self, *, verify: Verify = True, cert: Optional[Cert] = None, proxy: ProxyOption = None,
                 headers: Optional[Mapping[str, str]] = None) -> None:
        self.verify = verify
        self.cert = cert
        if cert is None and isinstance(verify, bool):
            self.context = _shared_context(verify)
        else:
            self.context = _with_cert(ssl_context(verify), verify, cert)
        if proxy is True:
            proxy = None  # "use a proxy" can only mean the environment's
        self.proxy: Union[None, bool, Proxy] = Proxy(proxy) if isinstance(proxy, str) else proxy
        if self.proxy not in (None, False) and not isinstance(self.proxy, Proxy):
            raise ConfigurationError(
                "proxy must be a proxy URL (http://, https://, socks5://, socks5h://), None or False, "
                f"not {type(proxy).__name__}")
        self.headers = _check_headers(headers)
        self._warned: Set[str] = set()

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "Network":
        """The network options out of a client's `**options` (the others are left to the engine)."""
        return cls(**{k: options[k] for k in ("verify", "cert", "proxy", "headers") if k in options})

    @property
    def secrets(self) -> Tuple[str, ...]:
        return self.proxy.secrets if isinstance(self.proxy, Proxy) else ()

    def proxy_for(self, secure: bool, host: str) -> Optional[Proxy]:
        """The proxy for a connection to `host` (`secure`: wss:// or https://), or None to go direct.

        proxy=None reads the environment as requests and curl do: HTTPS_PROXY for TLS, HTTP_PROXY
        for plain, ALL_PROXY for either, NO_PROXY exempts hosts (lowercase names win).
        """
        if isinstance(self.proxy, Proxy):
            return self.proxy
        if self.proxy is False:
            return None
        env = urllib.request.getproxies_environment()
        if not env or urllib.request.proxy_bypass_environment(host, env):  # type: ignore[attr-defined]
            return None
        key = "https" if secure else "http"
        url = env.get(key) or env.get("all")
        if not url:
            return None
        return Proxy(url, source=f"the {key.upper() if key in env else 'ALL'}_PROXY environment variable")

    def connect(self, host: str, port: int, timeout: float, *, secure: bool, aborted: Callable[[], bool],
                started: Callable[[socket.socket], None]) -> socket.socket:
        """A TCP socket to host:port, through the proxy if one applies (TLS to the target is the
        caller's, with `start_tls`: through an https:// proxy the socket is already TLS, to the proxy)."""
        proxy = self.proxy_for(secure, host)
        if proxy is None:
            return open_tcp(host, port, timeout, aborted=aborted, started=started)
        log.debug("connecting to %s:%s through %s", host, port, proxy.shown)
        return proxy.tunnel(host, port, timeout, aborted=aborted, started=started, context=self.context)

    def merge_headers(self, ours: Mapping[str, str]) -> Dict[str, str]:
        """The vendor's headers plus the user's; on a clash the vendor's win (auth must not be replaced)."""
        merged = dict(ours)
        taken = {name.lower() for name in ours}
        for name, value in self.headers.items():
            if name.lower() in taken:
                if name.lower() not in self._warned:
                    self._warned.add(name.lower())
                    log.warning("headers=: %r is set by the client itself (credentials or protocol), "
                                "so the given value is not sent", name)
                continue
            merged[name] = value
        return merged


_SHARED: Dict[bool, ssl.SSLContext] = {}


def _shared_context(verify: bool) -> ssl.SSLContext:
    """One context per process for `verify=True`/`False` without a client certificate (never changed
    after it is made): each context holds its own copy of the CA store (~1 MB, ~50 ms to load), and a
    process with hundreds of idle clients must not hold hundreds of them."""
    context = _SHARED.get(verify)
    if context is None:
        context = _SHARED.setdefault(verify, ssl_context(verify))  # a race makes two; one is kept
    return context


def _with_cert(context: ssl.SSLContext, verify: Verify, cert: Optional[Cert]) -> ssl.SSLContext:
    if cert is None:
        return context
    if isinstance(verify, ssl.SSLContext):
        raise ConfigurationError(
            "cert= cannot be combined with verify=<ssl.SSLContext>: load the client certificate into "
            "your context instead (context.load_cert_chain(certfile, keyfile))")
    if isinstance(cert, (str, os.PathLike)):
        certfile, keyfile = os.fspath(cert), None
    elif isinstance(cert, tuple) and len(cert) == 2 and all(isinstance(p, (str, os.PathLike)) for p in cert):
        certfile, keyfile = os.fspath(cert[0]), os.fspath(cert[1])
    else:
        raise ConfigurationError("cert must be the path of a PEM file holding certificate and key, "
                                 "or a (certfile, keyfile) tuple of paths")
    for path in (certfile, keyfile):
        if path is not None and not os.path.isfile(path):
            raise ConfigurationError(f"cert=: {path!r} is not a file; pass the path of a PEM file")
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"cert=: could not load the client certificate ({exc.__class__.__name__}: {exc}); it must be PEM "
            "with the private key unencrypted, in the same file or given as (certfile, keyfile)") from None
    return context


def _check_headers(headers: Optional[Mapping[str, str]]) -> Dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise ConfigurationError(f"headers must be a dict of str to str, not {type(headers).__name__}")
    checked: Dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise ConfigurationError(f"headers=: {name!r} is not a valid header name")
        if not isinstance(value, str) or "\r" in value or "\n" in value:
            raise ConfigurationError(f"headers=: the value of {name!r} must be a str on one line")
        if name.lower() in _RESERVED:
            raise ConfigurationError(
                f"headers=: {name!r} is managed by rtsync (it frames the request or the WebSocket upgrade)"
                + ("; put proxy credentials in the proxy URL" if name.lower() == "proxy-authorization" else ""))
        checked[name] = value
    return checked
