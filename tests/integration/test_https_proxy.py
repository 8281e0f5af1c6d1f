"""https:// proxies on every transport: TLS to the proxy (checked with verify=), CONNECT inside it, and
TLS-in-TLS to a wss:// or https:// target; untrusted proxy certificates, stop() mid-handshake and mid-poll."""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import ssl
import threading
from typing import Any, Iterator, List

import pytest

import rtsync
from rtsync.testing.dashly import DashlyServer
from rtsync.testing.dialpad import DialpadServer
from rtsync.testing.proxy import HttpProxy
from tests.conftest import wait_for
from tests.integration.test_network_options import _ENV, FAST, PASSWORD, USER, Tls, _connect_dashly


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return Tls(tmp_path_factory.mktemp("tls"))


def _https_proxy(tls: Tls, context: Any = None) -> HttpProxy:
    return HttpProxy(auth=(USER, PASSWORD), ssl_context=context or tls.server_context())


@pytest.mark.parametrize("secure", [False, True], ids=["plain-target", "tls-in-tls"])
@pytest.mark.parametrize("transport", ["websocket", "longpoll", "shortpoll"])
def test_dashly_through_an_https_proxy(transport: str, secure: bool, tls: Tls) -> None:
    server_tls = tls.server_context() if secure else None
    with _https_proxy(tls) as proxy, DashlyServer(tokens={"tok"}, longpoll_timeout=1.0,
                                                 ssl_context=server_tls) as server:
        assert proxy.url.startswith("https://") and server.url.startswith("https" if secure else "http:")
        got: List[rtsync.Event] = []
        c = rtsync.DashlyClient("tok", channels=["c.1"], transport=transport, url=server.url,
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
        with rtsync.DialpadClient("key", url=server.url, proxy=proxy.url, verify=tls.ca_file,
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
            with rtsync.DashlyClient("tok", channels=["c"], transport=transport, url=server.url,
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
        c = rtsync.DashlyClient("tok", channels=["c"], transport=transport, url=server.url,
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
        c = rtsync.DashlyClient("tok", channels=["c"], transport=transport, url=server.url,
                                proxy=proxy.url.replace("http://", "https://"), backoff=FAST,
                                fail_fast=False)
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
        with rtsync.DashlyClient("tok", channels=["c"], transport=transport, url=server.url,
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
        c = rtsync.DashlyClient("tok", channels=["c"], transport="longpoll", url=server.url,
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
