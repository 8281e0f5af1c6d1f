"""proxy= (HTTP CONNECT, https:// proxies, SOCKS5, the environment's) and headers= on every client, WebSocket and
REST alike."""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import ssl
import threading
from typing import Any, Callable, Dict, Iterator, List, Type, Union

import pytest
import trustme

import rtsync
from rtsync.testing.dashly import DashlyServer
from rtsync.testing.dialpad import DialpadServer
from rtsync.testing.doshii import DoshiiServer
from rtsync.testing.proxy import HttpProxy, Socks5Proxy
from rtsync.testing.quickmeet import QuickMeetServer
from rtsync.testing.voxsig import VoxsigServer
from tests.conftest import wait_for

FAST = rtsync.Backoff(base=0.05, cap=0.2)
USER, PASSWORD = "proxy-user", "proxy-pa55word-zq7"
DOSHII_ID, DOSHII_SECRET = "doshii-client-id", "doshii-client-secret-0123456789-abcdefgh"

Proxy = Union[HttpProxy, Socks5Proxy]
_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


class Tls:
    """A private CA (trustme) with a certificate for 127.0.0.1, as server-side contexts and a CA file."""

    def __init__(self, directory: Any) -> None:
        self.ca = trustme.CA()
        self.ca_file = str(directory / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)

    def server_context(self, host: str = "127.0.0.1") -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(host).configure_cert(context)
        return context


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return Tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(params=["http-connect", "https-connect", "socks5"])
def proxy(request: Any, tls: Tls) -> Iterator[Proxy]:
    p: Proxy
    if request.param == "socks5":
        p = Socks5Proxy(auth=(USER, PASSWORD))
    else:  # https-connect: TLS to the proxy (a private CA), CONNECT inside it
        p = HttpProxy(auth=(USER, PASSWORD), ssl_context=tls.server_context() if request.param == "https-connect"
                      else None)
    with p:
        yield p


def via(proxy: Proxy, tls: Tls) -> Dict[str, Any]:
    """The client options to go through `proxy`: an https:// one is verified like the server (verify=)."""
    return {"proxy": proxy.url, "verify": tls.ca_file}


# -- each client, each transport, through each kind of proxy ------------------------------------

def _dashly(transport: str) -> Callable[[Any], Any]:
    def case(make: Callable[..., Any]) -> Any:
        with DashlyServer(tokens={"tok"}, longpoll_timeout=1.0) as server:
            got: List[rtsync.Event] = []
            c = make(rtsync.DashlyClient, "tok", channels=["c.1"], transport=transport, url=server.http_url)
            c.on("c.1", got.append)
            with c:
                assert c.wait_connected(10)
                server.publish("c.1", {"via": "proxy"})
                assert wait_for(lambda: len(got) == 1)
            return server
    return case


def _voxsig(make: Callable[..., Any]) -> Any:
    with VoxsigServer() as server:
        with make(rtsync.VoxsigClient, "good-user-token", account_id=1, user_id=1, url=server.url) as c:
            assert c.wait_connected(10)
        return server


def _quickmeet(make: Callable[..., Any]) -> Any:
    with QuickMeetServer() as server:
        with make(rtsync.QuickMeetClient, url=server.url, username="alice", password="alice-password") as c:
            assert c.wait_connected(10)
        return server


def _dialpad(make: Callable[..., Any]) -> Any:
    with DialpadServer(api_keys={"key"}) as server:
        with make(rtsync.DialpadClient, "key", url=server.http_url) as c:
            assert c.wait_connected(10)  # REST issued the socket URL, then the socket opened
        assert any(method == "POST" for method, _, _ in server.seen)
        return server


def _doshii(make: Callable[..., Any]) -> Any:
    with DoshiiServer(client_ids={DOSHII_ID}, client_secrets={DOSHII_ID: DOSHII_SECRET}) as server:
        c = make(rtsync.DoshiiClient, DOSHII_ID, client_secret=DOSHII_SECRET, url=server.url,
                 rest_url=server.rest_url, app_version="tests/1.0")
        with c:
            assert c.wait_connected(10)
            assert isinstance(c.list_devices(), list)  # the REST side
        assert any(path.startswith("/partner/") for _, path, _ in server.seen)
        return server


CASES: Dict[str, Callable[[Any], Any]] = {
    "dashly-websocket": _dashly("websocket"), "dashly-longpoll": _dashly("longpoll"),
    "dashly-shortpoll": _dashly("shortpoll"), "voxsig": _voxsig, "quickmeet": _quickmeet,
    "dialpad": _dialpad, "doshii": _doshii,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_client_goes_through_the_proxy(case: str, proxy: Proxy, tls: Tls) -> None:
    def make(cls: Type[Any], *args: Any, **kw: Any) -> Any:
        return cls(*args, **via(proxy, tls), backoff=FAST, **kw)

    server = CASES[case](make)
    assert proxy.tunnels >= 1
    assert set(proxy.targets) == {("127.0.0.1", server.port)}  # every connection, REST and socket
    assert proxy.refused == 0


@pytest.mark.parametrize("case", ["dashly-websocket", "dashly-longpoll", "dialpad", "doshii"])
def test_headers_reach_the_server_on_handshakes_and_rest_calls(case: str) -> None:
    def make(cls: Type[Any], *args: Any, **kw: Any) -> Any:
        return cls(*args, headers={"X-Trace-Id": "abc-123"}, backoff=FAST, **kw)

    server = CASES[case](make)
    assert server.seen
    assert all(h.get("X-Trace-Id") == "abc-123" for method, path, h in server.seen
               if not path.startswith("/_rtsync"))
    if case in ("dialpad", "doshii"):
        assert any(h.get("Upgrade", "").lower() == "websocket" for _, _, h in server.seen)
        assert any("Upgrade" not in h for _, _, h in server.seen)


def test_a_header_the_client_sets_itself_wins_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    def make(cls: Type[Any], *args: Any, **kw: Any) -> Any:
        return cls(*args, headers={"authorization": "Bearer not-the-key"}, backoff=FAST, **kw)

    with caplog.at_level(logging.WARNING):
        server = _dialpad(make)  # connects: the API key's Authorization was not replaced
    auth = {h.get("Authorization") for method, _, h in server.seen if method == "POST"}
    assert auth == {"Bearer key"}
    assert "'authorization' is set by the client itself" in caplog.text
    assert "not-the-key" not in caplog.text


# -- the environment -----------------------------------------------------------------------------

def _connect_dashly(transport: str, **kw: Any) -> None:
    with DashlyServer(tokens={"tok"}, longpoll_timeout=1.0) as server:
        with rtsync.DashlyClient("tok", channels=["c"], transport=transport, url=server.http_url,
                                 backoff=FAST, **kw) as c:
            assert c.wait_connected(10)


@pytest.mark.parametrize("transport", ["websocket", "longpoll"])
@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_the_environment_proxy_is_honoured(transport: str, variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with Socks5Proxy() as proxy:
        monkeypatch.setenv(variable, proxy.url.replace("socks5://", "socks5h://"))
        _connect_dashly(transport)
    assert proxy.tunnels >= 1
    assert all(host == "127.0.0.1" for host, _ in proxy.targets)  # socks5h: the name went to the proxy


def test_https_proxy_is_for_tls_only_and_no_proxy_and_proxy_false_go_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    with HttpProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        _connect_dashly("websocket")  # ws:// and http:// look at HTTP_PROXY, not HTTPS_PROXY
        assert proxy.tunnels == 0
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        _connect_dashly("websocket")
        _connect_dashly("longpoll")
        assert proxy.tunnels == 0
        monkeypatch.delenv("NO_PROXY")
        _connect_dashly("longpoll", proxy=False)
        assert proxy.tunnels == 0
        _connect_dashly("longpoll")
        assert proxy.tunnels >= 1


@pytest.mark.parametrize("transport", ["websocket", "longpoll"])
def test_tls_connections_take_https_proxy_from_the_environment(transport: str, tmp_path: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with HttpProxy() as plain, HttpProxy() as secure, DashlyServer(tokens={"tok"}, ssl_context=context) as server:
        monkeypatch.setenv("HTTP_PROXY", plain.url)
        monkeypatch.setenv("HTTPS_PROXY", secure.url)
        with rtsync.DashlyClient("tok", channels=["c"], transport=transport, url=server.http_url,
                                 verify=str(ca_file), backoff=FAST) as c:
            assert c.wait_connected(10)  # TLS end to end, through the tunnel
    assert plain.tunnels == 0 and secure.tunnels >= 1


def test_a_given_proxy_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with HttpProxy() as env_proxy, Socks5Proxy() as given:
        monkeypatch.setenv("HTTP_PROXY", env_proxy.url)
        _connect_dashly("websocket", proxy=given.url)
    assert env_proxy.tunnels == 0 and given.tunnels >= 1


# -- failures: named, credentials never shown, 407 final ---------------------------------------

@pytest.mark.parametrize("kind", ["http-connect", "https-connect", "socks5"])
@pytest.mark.parametrize("given", ["no credentials", "wrong password"])
@pytest.mark.parametrize("transport", ["websocket", "longpoll"])
def test_refused_proxy_credentials_are_final_and_named_without_the_password(
        kind: str, given: str, transport: str, tls: Tls, caplog: pytest.LogCaptureFixture) -> None:
    context = tls.server_context() if kind == "https-connect" else None
    made: Proxy = Socks5Proxy(auth=(USER, PASSWORD)) if kind == "socks5" else HttpProxy(auth=(USER, PASSWORD),
                                                                                        ssl_context=context)
    with made as proxy, DashlyServer(tokens={"tok"}) as server:
        credentials = "" if given == "no credentials" else f"{USER}:wrong-{PASSWORD}@"
        url = f"{proxy.url.split('://')[0]}://{credentials}127.0.0.1:{proxy.port}"
        c = rtsync.DashlyClient("tok", channels=["c"], transport=transport, url=server.http_url, proxy=url,
                                verify=tls.ca_file, backoff=FAST)
        with caplog.at_level(logging.DEBUG), pytest.raises(rtsync.AuthenticationError) as failed:
            c.run_forever()
    message = str(failed.value)
    assert f"127.0.0.1:{proxy.port}" in message and "proxy" in message
    assert proxy.refused == 1 and proxy.tunnels == 0  # one attempt, not retried forever
    for text in (message, caplog.text, repr(c), repr(failed.value)):
        assert PASSWORD not in text and USER not in text


def test_proxy_credentials_never_appear_in_debug_logs(proxy: Proxy, tls: Tls,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        _connect_dashly("websocket", **via(proxy, tls))
        _connect_dashly("longpoll", **via(proxy, tls))
    assert proxy.tunnels >= 2
    assert "through" in caplog.text  # the proxy is logged, by host
    assert PASSWORD not in caplog.text and USER not in caplog.text


def test_an_unreachable_proxy_is_named_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{port}"
    with DashlyServer(tokens={"tok"}) as server, caplog.at_level(logging.DEBUG):
        with rtsync.DashlyClient("tok", channels=["c"], url=server.http_url, proxy=url, backoff=FAST) as c:
            assert wait_for(lambda: f"could not connect to the proxy http://127.0.0.1:{port}" in caplog.text)
            assert c.error is None  # transient: still retrying
    assert PASSWORD not in caplog.text


def test_a_proxy_that_refuses_the_target_is_named() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with HttpProxy() as proxy:
        c = rtsync.DialpadClient("key", url=f"http://127.0.0.1:{port}", proxy=proxy.url, backoff=FAST)
        errors: List[rtsync.Event] = []
        c.on("rtsync.error", errors.append)
        c.on("rtsync.disconnected", errors.append)
        with c:
            assert wait_for(lambda: any("refused the tunnel" in str(e.data) for e in errors))


def test_stop_interrupts_a_proxy_that_never_answers() -> None:
    with socket.socket() as hole:  # accepts connections (backlog) and never speaks
        hole.bind(("127.0.0.1", 0))
        hole.listen(8)
        url = f"http://127.0.0.1:{hole.getsockname()[1]}"
        for transport in ("websocket", "longpoll"):
            c = rtsync.DashlyClient("tok", channels=["c"], transport=transport, url="http://127.0.0.1:9",
                                    proxy=url, connect_timeout=120)
            before = set(threading.enumerate())
            c.start()
            assert wait_for(lambda: c.state is rtsync.State.CONNECTING)
            c.stop(timeout=5)
            assert not c.running
            assert not [t for t in set(threading.enumerate()) - before if t.is_alive()]


# -- https:// proxies: TLS to the proxy, CONNECT inside it, TLS-in-TLS to a wss:// or https:// target ---

def _https_proxy(tls: Tls, context: Any = None) -> HttpProxy:
    return HttpProxy(auth=(USER, PASSWORD), ssl_context=context or tls.server_context())


@pytest.mark.parametrize("secure", [False, True], ids=["plain-target", "tls-in-tls"])
@pytest.mark.parametrize("transport", ["websocket", "longpoll", "shortpoll"])
def test_dashly_through_an_https_proxy(transport: str, secure: bool, tls: Tls) -> None:
    server_tls = tls.server_context() if secure else None
    with _https_proxy(tls) as proxy, DashlyServer(tokens={"tok"}, longpoll_timeout=1.0,
                                                 ssl_context=server_tls) as server:
        assert proxy.url.startswith("https://") and server.http_url.startswith("https" if secure else "http:")
        got: List[rtsync.Event] = []
        c = rtsync.DashlyClient("tok", channels=["c.1"], transport=transport, url=server.http_url,
                                proxy=proxy.url, verify=tls.ca_file, backoff=FAST)
        c.on("c.1", got.append)
        with c:
            assert c.wait_connected(10)
            for n in range(3):  # each larger than a TLS record: both layers split, buffer and reassemble
                server.publish("c.1", {"n": n, "pad": "x" * 40_000})
            assert wait_for(lambda: len(got) == 3)
        assert [e.data["n"] for e in got] == [0, 1, 2]
    assert proxy.tunnels >= 1 and set(proxy.targets) == {("127.0.0.1", server.port)}
    assert proxy.tls_failures == 0 and proxy.refused == 0


@pytest.mark.parametrize("secure", [False, True], ids=["http-rest", "https-rest-and-wss"])
def test_dialpad_rest_and_socket_through_an_https_proxy(secure: bool, tls: Tls) -> None:
    server = DialpadServer(api_keys={"key"})
    if secure:
        server.ssl_context = tls.server_context()  # read when it starts: https:// REST, wss:// socket URLs
    with _https_proxy(tls) as proxy, server:
        with rtsync.DialpadClient("key", url=server.http_url, proxy=proxy.url, verify=tls.ca_file,
                                  backoff=FAST) as c:
            assert c.wait_connected(10)  # REST issued the socket URL, then the socket opened
        assert any(method == "POST" for method, _, _ in server.seen)
        assert any(h.get("Upgrade", "").lower() == "websocket" for _, _, h in server.seen)
    assert proxy.tunnels >= 2 and set(proxy.targets) == {("127.0.0.1", server.port)}


@pytest.mark.parametrize("trust", ["one-bundle", "ssl-context"])
def test_proxy_and_server_under_different_cas_need_both_in_verify(trust: str, tls: Tls, tmp_path: Any) -> None:
    proxy_ca = Tls(tmp_path)
    both = tmp_path / "both.pem"
    both.write_bytes(proxy_ca.ca.cert_pem.bytes() + tls.ca.cert_pem.bytes())
    verify: Any = str(both)
    if trust == "ssl-context":
        verify = ssl.create_default_context(cafile=tls.ca_file)
        verify.load_verify_locations(proxy_ca.ca_file)
    with _https_proxy(tls, proxy_ca.server_context()) as proxy, \
            DashlyServer(tokens={"tok"}, ssl_context=tls.server_context()) as server:
        for transport in ("websocket", "longpoll"):
            with rtsync.DashlyClient("tok", channels=["c"], transport=transport, url=server.http_url,
                                     proxy=proxy.url, verify=verify, backoff=FAST) as c:
                assert c.wait_connected(10)
    assert proxy.tunnels >= 2 and proxy.tls_failures == 0


@pytest.mark.parametrize("transport", ["websocket", "longpoll"])
@pytest.mark.parametrize("problem", ["unknown-ca", "wrong-host-name"])
def test_an_untrusted_proxy_certificate_is_a_tls_error_naming_the_proxy(
        transport: str, problem: str, tls: Tls, tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    # The server's certificate is fine (same CA as verify=): only the proxy's is wrong.
    context = Tls(tmp_path).server_context() if problem == "unknown-ca" else tls.server_context("proxy.example")
    with _https_proxy(tls, context) as proxy, DashlyServer(tokens={"tok"}, ssl_context=tls.server_context()) as server:
        c = rtsync.DashlyClient("tok", channels=["c"], transport=transport, url=server.http_url,
                                proxy=proxy.url, verify=tls.ca_file, backoff=FAST)
        with caplog.at_level(logging.DEBUG), pytest.raises(rtsync.TLSVerificationError) as failed:
            c.run_forever()  # final: retrying cannot make the certificate trusted
    message = str(failed.value)
    assert f"the proxy https://127.0.0.1:{proxy.port}" in message
    assert "proxy's certificate could not be verified" in message and "verify=" in message
    assert not re.search(rf":{server.port}\b", message)  # the proxy, not the target
    assert proxy.tunnels == 0 and proxy.tls_failures == 1  # not retried
    for text in (message, caplog.text, repr(c), repr(failed.value)):
        assert PASSWORD not in text and USER not in text


@pytest.mark.parametrize("transport", ["websocket", "longpoll"])
def test_https_written_for_a_plain_http_proxy_says_so(transport: str) -> None:
    with HttpProxy() as proxy, DashlyServer(tokens={"tok"}) as server:
        c = rtsync.DashlyClient("tok", channels=["c"], transport=transport, url=server.http_url,
                                proxy=proxy.url.replace("http://", "https://"), backoff=FAST)
        reasons: List[str] = []
        c.on("rtsync.disconnected", lambda e: reasons.append(str(e.data.get("reason"))))
        with c:
            assert wait_for(lambda: len(reasons) >= 2)
            assert c.error is None  # a proxy may be fixed while we wait: still retrying
    assert all(f"TLS to the proxy https://127.0.0.1:{proxy.port} failed: it does not speak TLS" in r
               and "write its URL with http://" in r for r in reasons)
    assert proxy.tunnels == 0


def test_verify_false_skips_the_proxy_check_too(tmp_path: Any) -> None:
    with HttpProxy(ssl_context=Tls(tmp_path).server_context()) as proxy:
        _connect_dashly("websocket", proxy=proxy.url, verify=False)
        _connect_dashly("longpoll", proxy=proxy.url, verify=False)
    assert proxy.tunnels >= 2


@pytest.mark.parametrize("transport", ["websocket", "longpoll"])
@pytest.mark.parametrize("secure", [False, True], ids=["plain-target", "tls-target"])
def test_https_proxy_urls_from_the_environment(transport: str, secure: bool, tls: Tls,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with _https_proxy(tls) as proxy, DashlyServer(tokens={"tok"}, longpoll_timeout=1.0,
                                                 ssl_context=tls.server_context() if secure else None) as server:
        monkeypatch.setenv("HTTPS_PROXY" if secure else "HTTP_PROXY", proxy.url)
        with rtsync.DashlyClient("tok", channels=["c"], transport=transport, url=server.http_url,
                                 verify=tls.ca_file, backoff=FAST) as c:
            assert c.wait_connected(10)
    assert proxy.tunnels >= 1 and set(proxy.targets) == {("127.0.0.1", server.port)}


@contextlib.contextmanager
def _silent_tls_proxy(context: ssl.SSLContext) -> Iterator[int]:
    """A proxy that completes TLS, then never answers the CONNECT."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: List[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
                conn.settimeout(10)
                held.append(context.wrap_socket(conn, server_side=True))
            except OSError:
                if listener.fileno() == -1:
                    return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        for sock in held:
            sock.close()


def _client_threads(before: Any) -> List[threading.Thread]:
    """The client's threads still alive (the test proxy's own handler threads end on their own)."""
    return [t for t in set(threading.enumerate()) - before if t.is_alive() and t.name.startswith("rtsync-dashly")]


@pytest.mark.parametrize("silent_at", ["tls-handshake", "connect"])
def test_stop_interrupts_an_https_proxy_that_never_answers(silent_at: str, tls: Tls) -> None:
    with contextlib.ExitStack() as stack:
        if silent_at == "connect":
            port = stack.enter_context(_silent_tls_proxy(tls.server_context()))
        else:  # accepts TCP (backlog) and never speaks: the TLS handshake with the proxy hangs
            hole = stack.enter_context(socket.socket())
            hole.bind(("127.0.0.1", 0))
            hole.listen(8)
            port = hole.getsockname()[1]
        for transport in ("websocket", "longpoll"):
            for target in ("http://127.0.0.1:9", "https://127.0.0.1:9"):
                c = rtsync.DashlyClient("tok", channels=["c"], transport=transport, url=target,
                                        proxy=f"https://127.0.0.1:{port}", verify=tls.ca_file, connect_timeout=120)
                before = set(threading.enumerate())
                c.start()
                assert wait_for(lambda: c.state is rtsync.State.CONNECTING)
                c.stop(timeout=5)
                assert not c.running
                assert not _client_threads(before)


def test_stop_ends_a_long_poll_held_inside_tls_in_tls(tls: Tls) -> None:
    # cancel() shuts a duplicate of the descriptor under both TLS layers: the held poll ends at once.
    with _https_proxy(tls) as proxy, DashlyServer(tokens={"tok"}, longpoll_timeout=120,
                                                 ssl_context=tls.server_context()) as server:
        c = rtsync.DashlyClient("tok", channels=["c"], transport="longpoll", url=server.http_url,
                                proxy=proxy.url, verify=tls.ca_file)
        before = set(threading.enumerate())
        c.start()
        assert c.wait_connected(10)
        assert wait_for(lambda: any(method == "GET" for method, _, _ in server.seen))
        c.stop(timeout=5)
        assert not c.running
        assert not _client_threads(before)
    assert proxy.tunnels >= 1


def test_https_proxy_urls_parse_with_port_443_by_default() -> None:
    from rtsync.wire.network import Proxy as ProxyUrl

    given = ProxyUrl(f"https://{USER}:{PASSWORD}@proxy.example")
    assert (given.scheme, given.host, given.port) == ("https", "proxy.example", 443)
    assert repr(given) == "Proxy('https://proxy.example:443')"
    assert given.secrets == (USER, PASSWORD)


# -- options checked up front ---------------------------------------------------------------------

@pytest.mark.parametrize("bad, says", [
    ("ftp://proxy:21", "unsupported proxy scheme 'ftp'"),
    ("socks4://proxy:1080", "unsupported proxy scheme 'socks4'"),
    ("http://", "has no host"),
    ("http://proxy:port", "the port is not a number"),
    ("http://[::1", "not a valid proxy URL"),
    (42, "must be a proxy URL"),
])
def test_bad_proxy_options_are_refused_up_front(bad: Any, says: str) -> None:
    with pytest.raises(rtsync.ConfigurationError, match=says):
        rtsync.VoxsigClient("token", proxy=bad)


def test_a_bad_proxy_message_never_shows_credentials() -> None:
    with pytest.raises(rtsync.ConfigurationError) as failed:
        rtsync.VoxsigClient("token", proxy=f"ftp://{USER}:{PASSWORD}@proxy:21")
    assert PASSWORD not in str(failed.value) and USER not in str(failed.value)


def test_a_bad_environment_proxy_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "ftp://proxy:21")
    with DashlyServer(tokens={"tok"}) as server:
        c = rtsync.DashlyClient("tok", channels=["c"], url=server.http_url, backoff=FAST)
        with pytest.raises(rtsync.ConfigurationError, match="HTTP_PROXY environment variable"):
            c.run_forever()


@pytest.mark.parametrize("headers, says", [
    ({"Host": "x"}, "managed by rtsync"),
    ({"Sec-WebSocket-Key": "x"}, "managed by rtsync"),
    ({"Proxy-Authorization": "Basic x"}, "proxy credentials in the proxy URL"),
    ({"Bad Name": "x"}, "not a valid header name"),
    ({"X-A": "one\r\nX-B: two"}, "on one line"),
    ({"X-A": 1}, "must be a str"),
    (["X-A"], "must be a dict"),
])
def test_bad_headers_are_refused_up_front(headers: Any, says: str) -> None:
    with pytest.raises(rtsync.ConfigurationError, match=says):
        rtsync.DoshiiClient("client-id", headers=headers)


def test_socks5h_hands_the_host_name_to_the_proxy() -> None:
    with Socks5Proxy() as proxy, DashlyServer(tokens={"tok"}) as server:
        url = f"http://localhost:{server.port}"
        with rtsync.DashlyClient("tok", channels=["c"], url=url, proxy=f"socks5h://127.0.0.1:{proxy.port}",
                                 backoff=FAST) as c:
            assert c.wait_connected(10)
    assert set(proxy.targets) == {("localhost", server.port)}


def test_a_tunnel_cut_by_the_proxy_reconnects_through_it(proxy: Proxy, tls: Tls) -> None:
    with DashlyServer(tokens={"tok"}) as server:
        got: List[rtsync.Event] = []
        c = rtsync.DashlyClient("tok", channels=["c.1"], url=server.http_url, **via(proxy, tls), backoff=FAST)
        c.on("c.1", got.append)
        with c:
            assert c.wait_connected(10)
            before = proxy.tunnels
            proxy.drop()
            assert wait_for(lambda: proxy.tunnels > before and c.connected)
            server.publish("c.1", {"after": "drop"})
            assert wait_for(lambda: len(got) == 1)
