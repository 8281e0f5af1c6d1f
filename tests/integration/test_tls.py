"""TLS verification is on by default: an untrusted certificate stops the client; a given CA bundle works."""

from __future__ import annotations

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
