"""proxy= (HTTP CONNECT, https:// proxies, SOCKS5, the environment's) and headers= on every client, WebSocket and
REST alike (https:// proxy specifics: test_https_proxy.py)."""

from __future__ import annotations

import logging
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
            c = make(rtsync.DashlyClient, "tok", channels=["c.1"], transport=transport, url=server.url)
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
        with make(rtsync.DialpadClient, "key", url=server.url) as c:
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
        with rtsync.DashlyClient("tok", channels=["c"], transport=transport, url=server.url,
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
        with rtsync.DashlyClient("tok", channels=["c"], transport=transport, url=server.url,
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
        c = rtsync.DashlyClient("tok", channels=["c"], transport=transport, url=server.url, proxy=url,
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
        with rtsync.DashlyClient("tok", channels=["c"], url=server.url, proxy=url, backoff=FAST,
                                 fail_fast=False) as c:
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
        c = rtsync.DashlyClient("tok", channels=["c"], url=server.url, backoff=FAST)
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
        c = rtsync.DashlyClient("tok", channels=["c.1"], url=server.url, **via(proxy, tls), backoff=FAST)
        c.on("c.1", got.append)
        with c:
            assert c.wait_connected(10)
            before = proxy.tunnels
            proxy.drop()
            assert wait_for(lambda: proxy.tunnels > before and c.connected)
            server.publish("c.1", {"after": "drop"})
            assert wait_for(lambda: len(got) == 1)
