"""TLS verification is on by default: an untrusted certificate stops the client; a given CA bundle works."""

from __future__ import annotations

import logging
import ssl
import threading
from typing import Iterator, Tuple

import pytest
import trustme

import rtsync
from rtsync.testing.dashly import DashlyServer


@pytest.fixture
def tls_server(tmp_path) -> Iterator[Tuple[DashlyServer, str]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with DashlyServer(tokens={"tok"}, ssl_context=context) as server:
        yield server, str(ca_file)


@pytest.mark.parametrize("transport", ["websocket", "longpoll"])
def test_untrusted_certificate_is_fatal_with_a_clear_error(tls_server, transport: str) -> None:
    server, _ = tls_server
    assert server.http_url.startswith("https://")
    c = rtsync.DashlyClient("tok", channels=["c.1"], transport=transport, url=server.http_url)
    with pytest.raises(rtsync.TLSVerificationError, match="verify="):
        c.run_forever()


@pytest.mark.parametrize("transport", ["websocket", "longpoll"])
def test_a_given_ca_bundle_is_trusted(tls_server, transport: str) -> None:
    server, ca_file = tls_server
    c = rtsync.DashlyClient("tok", channels=["c.1"], transport=transport, url=server.http_url, verify=ca_file)
    got = []
    up = threading.Event()
    c.on("rtsync.connected", lambda e: up.set())
    c.on("c.1", got.append)
    with c:
        assert up.wait(5)
        server.publish("c.1", {"secure": True})
        from tests.conftest import wait_for

        assert wait_for(lambda: len(got) == 1)


# -- verify=ssl.SSLContext, and client certificates (mutual TLS) ---------------------------------

from rtsync.testing.dialpad import DialpadServer  # noqa: E402

FAST = rtsync.Backoff(base=0.05, cap=0.2)


def _received_one(client: rtsync.DashlyClient, server: DashlyServer) -> bool:
    from tests.conftest import wait_for

    got = []
    client.on("c.1", got.append)
    with client:
        assert client.wait_connected(10)
        server.publish("c.1", {"secure": True})
        return wait_for(lambda: len(got) == 1)


@pytest.mark.parametrize("transport", ["websocket", "longpoll"])
def test_an_ssl_context_as_verify_works_end_to_end(tls_server, transport: str) -> None:
    server, ca_file = tls_server
    context = ssl.create_default_context(cafile=ca_file)  # checks host names: urllib3 must not reset it
    c = rtsync.DashlyClient("tok", channels=["c.1"], transport=transport, url=server.http_url, verify=context)
    assert _received_one(c, server)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname  # the user's context unchanged


def test_an_ssl_context_as_verify_works_for_rest_and_socket_alike(tmp_path) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    server = DialpadServer(api_keys={"key"})
    server.ssl_context = server_context
    with server:
        c = rtsync.DialpadClient("key", url=server.http_url, verify=client_context, backoff=FAST)
        with c:
            assert c.wait_connected(10)  # a REST call issued the wss:// URL, then the socket opened


@pytest.fixture
def mtls_server(tmp_path) -> Iterator[Tuple[DashlyServer, trustme.CA, str]]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    context.verify_mode = ssl.CERT_REQUIRED  # no client certificate, no connection
    ca.configure_trust(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with DashlyServer(tokens={"tok"}, ssl_context=context) as server:
        yield server, ca, str(ca_file)


@pytest.mark.parametrize("transport", ["websocket", "longpoll"])
@pytest.mark.parametrize("form", ["one file", "cert and key"])
def test_a_client_certificate_opens_a_server_that_requires_one(mtls_server, tmp_path, transport, form) -> None:
    server, ca, ca_file = mtls_server
    issued = ca.issue_cert("client@example.org")
    if form == "one file":
        pem = tmp_path / "client.pem"
        issued.private_key_and_cert_chain_pem.write_to_path(str(pem))
        cert: object = str(pem)
    else:
        cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
        issued.cert_chain_pems[0].write_to_path(str(cert_file))
        issued.private_key_pem.write_to_path(str(key_file))
        cert = (str(cert_file), key_file)  # a path-like works as well as a str
    c = rtsync.DashlyClient("tok", channels=["c.1"], transport=transport, url=server.http_url,
                            verify=ca_file, cert=cert)  # type: ignore[arg-type]
    assert _received_one(c, server)


@pytest.mark.parametrize("transport", ["websocket", "longpoll"])
def test_without_the_client_certificate_the_failure_hints_at_cert(mtls_server, transport: str, caplog) -> None:
    # The local server, like asyncio's ssl and several gateways, drops such a client without a TLS
    # alert (EOF or reset), so the client cannot be sure: it keeps retrying, saying what to check.
    from tests.conftest import wait_for

    server, _, ca_file = mtls_server
    c = rtsync.DashlyClient("tok", channels=["c.1"], transport=transport, url=server.http_url,
                            verify=ca_file, backoff=FAST)
    with caplog.at_level(logging.WARNING, logger="rtsync"), c:
        assert wait_for(lambda: "pass cert=" in caplog.text)
        assert not c.connected


def test_a_tls_alert_about_the_client_certificate_is_final_and_says_what_to_do() -> None:
    from rtsync.wire.network import client_cert_error

    alert = ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required")
    alert.reason = "TLSV13_ALERT_CERTIFICATE_REQUIRED"  # what OpenSSL sets when the server sent the alert
    wrapped = ConnectionError(alert)  # as requests wraps it
    error = client_cert_error(wrapped, "poll to example.org", given=False)
    assert isinstance(error, rtsync.AuthenticationError) and "pass cert=" in str(error)
    refused = client_cert_error(alert, "poll to example.org", given=True)
    assert refused is not None and "refused the one given in cert=" in str(refused)
    assert client_cert_error(ConnectionResetError(), "poll", given=False) is None


def test_cert_options_are_checked_up_front(tmp_path) -> None:
    with pytest.raises(rtsync.ConfigurationError, match="is not a file"):
        rtsync.DashlyClient("tok", channels=["c"], cert=str(tmp_path / "missing.pem"))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(rtsync.ConfigurationError, match="could not load the client certificate"):
        rtsync.DashlyClient("tok", channels=["c"], cert=str(garbage))
    with pytest.raises(rtsync.ConfigurationError, match="load_cert_chain"):
        rtsync.DashlyClient("tok", channels=["c"], cert=str(garbage), verify=ssl.create_default_context())
    with pytest.raises(rtsync.ConfigurationError, match="cert must be"):
        rtsync.DashlyClient("tok", channels=["c"], cert=("a", "b", "c"))  # type: ignore[arg-type]
