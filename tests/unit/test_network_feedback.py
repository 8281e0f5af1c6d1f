"""A failure to connect names the host and the cause, with the likely fix (not 'failed: ConnectionError')."""

from __future__ import annotations

import socket
import threading

import pytest

import rtsync
from rtsync.sansio import Handshake
from rtsync.wire import WebSocketLink
from rtsync.wire.http import HttpClient


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_refused_and_unresolvable_hosts_say_so() -> None:
    port = _closed_port()
    with pytest.raises(rtsync.ConnectionLost, match="refused.*is the port right"):
        WebSocketLink(Handshake(f"ws://127.0.0.1:{port}/x"), timeout=3).connect()
    with pytest.raises(rtsync.ConnectionLost, match=f"poll to 127.0.0.1:{port} failed: the connection was refused"):
        HttpClient().request("GET", f"http://127.0.0.1:{port}/x", what="poll")
    with pytest.raises(rtsync.ConnectionLost, match="host name could not be resolved"):
        WebSocketLink(Handshake("ws://no-such-host.invalid/x"), timeout=3).connect()


def test_tls_against_a_plain_port_hints_at_the_scheme() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def plain_http() -> None:
        conn, _ = listener.accept()
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        conn.close()

    threading.Thread(target=plain_http, daemon=True).start()
    try:
        with pytest.raises(rtsync.ConnectionLost, match="TLS handshake failed.*plain ws:// or http://"):
            WebSocketLink(Handshake(f"wss://127.0.0.1:{listener.getsockname()[1]}/x"), timeout=3).connect()
    finally:
        listener.close()


def test_the_first_failure_is_a_warning_and_its_repeats_are_not(caplog: pytest.LogCaptureFixture) -> None:
    client = rtsync.DoshiiClient("id", url=f"ws://127.0.0.1:{_closed_port()}/app", backoff=rtsync.Backoff(base=0.01, cap=0.02),
                                 retry_budget=rtsync.RetryBudget(3, 60))
    with caplog.at_level("INFO", logger="rtsync"):
        with pytest.raises(rtsync.ConnectionLost):
            client.run_forever()
    downs = [r for r in caplog.records if r.getMessage().startswith("disconnected (")]
    assert [r.levelname for r in downs] == ["WARNING", "INFO", "INFO"]
    assert "refused" in downs[0].getMessage()
