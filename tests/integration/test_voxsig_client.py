"""VoxsigClient against the local ActionCable server."""

from __future__ import annotations

import logging
import time
from typing import Iterator

import pytest

import rtsync
from rtsync.testing.voxsig import VoxsigServer
from tests.conftest import wait_for, watch

FAST = rtsync.Backoff(base=0.05, cap=0.2)


@pytest.fixture
def server() -> Iterator[VoxsigServer]:
    with VoxsigServer(ping_interval=0.2) as s:
        yield s


def agent(server: VoxsigServer, **kw) -> rtsync.VoxsigClient:
    kw.setdefault("backoff", FAST)
    kw.setdefault("stale_after", 1.0)
    return rtsync.VoxsigClient("good-user-token", 1, 1, url=server.cable_url, **kw)



def test_agent_receives_account_and_token_streams(server: VoxsigServer) -> None:
    c = agent(server)
    got, up = watch(c, "message.*")
    typing, _ = watch(c, "conversation.typing_on")
    with c:
        assert up.wait(5)
        server.broadcast("account_1", "message.created", {"id": 1, "content": "hello"})
        server.broadcast("good-user-token", "conversation.typing_on", {"conversation": {"id": 9}})
        server.broadcast("account_2", "message.created", {"id": 2})  # not ours
        assert wait_for(lambda: got and typing)
        time.sleep(0.2)
    assert [(e.name, e.data["id"]) for e in got] == [("message.created", 1)]
    assert got[0].typed.content == "hello" and typing[0].typed.conversation.id == 9


def test_contact_token_alone(server: VoxsigServer) -> None:
    c = rtsync.VoxsigClient("good-contact-token", url=server.cable_url, backoff=FAST)
    got, up = watch(c, "message.created")
    with c:
        assert up.wait(5)
        assert server.subscribers("account_1") == 0 and server.subscribers("good-contact-token") == 1
        server.broadcast("good-contact-token", "message.created", {"id": 3})
        assert wait_for(lambda: got)
    assert c.protocol.presence_interval == 60.0


def test_presence_heartbeat_and_replies(server: VoxsigServer) -> None:
    c = agent(server, presence_interval=0.2)
    got, up = watch(c, "presence.update")
    with c:
        assert up.wait(5)
        assert wait_for(lambda: len(got) >= 3, timeout=5)  # right after confirm, then every 0.2 s
        c.update_presence()
        n = len(got)
        assert wait_for(lambda: len(got) > n)
    assert got[0].data["users"] == {"1": "online"}
    presence = [cmd for cmd in server.commands if cmd["command"] == "message"]
    assert all(cmd["data"] == '{"action":"update_presence"}' for cmd in presence)


def test_one_identifier_spelling_means_no_duplicates(server: VoxsigServer) -> None:
    c = agent(server)
    got, up = watch(c, "message.created")
    with c:
        assert up.wait(5)
        time.sleep(0.6)  # several presence beats and pings later
        assert server.subscribers("account_1") == 1
        server.broadcast("account_1", "message.created", {"id": 1})
        assert wait_for(lambda: got)
        time.sleep(0.2)
    assert len(got) == 1
    identifiers = {cmd["identifier"] for cmd in server.commands}
    assert len(identifiers) == 1


def test_invalid_token_ends_with_a_clear_auth_error(server: VoxsigServer) -> None:
    c = rtsync.VoxsigClient("bad-token", 1, 1, url=server.cable_url, backoff=FAST, confirm_timeout=0.5)
    t0 = time.monotonic()
    with pytest.raises(rtsync.AuthenticationError, match="never confirmed"):
        c.run_forever()
    assert time.monotonic() - t0 < 5
    subscribes = [cmd for cmd in server.commands if cmd["command"] == "subscribe"]
    assert 2 <= len(subscribes) <= 8  # resent a few times, then gave up: no endless loop


def test_wrong_account_is_silence_too(server: VoxsigServer) -> None:
    c = rtsync.VoxsigClient("good-user-token", 2, 1, url=server.cable_url, backoff=FAST, confirm_timeout=0.3)
    with pytest.raises(rtsync.AuthenticationError):
        c.run_forever()


def test_reject_subscription_is_final(server: VoxsigServer) -> None:
    server.reject_mode = True
    c = rtsync.VoxsigClient("bad-token", url=server.cable_url, backoff=FAST)
    with pytest.raises(rtsync.AuthenticationError, match="rejected"):
        c.run_forever()
    assert server.connections_total == 1


def test_unauthorized_disconnect_is_final(server: VoxsigServer) -> None:
    server.reject_connections = True
    c = agent(server)
    with pytest.raises(rtsync.AuthenticationError, match="reconnect: false"):
        c.run_forever()
    assert server.connections_total == 1


def test_foreign_origin_is_refused_with_a_clear_error(server: VoxsigServer) -> None:
    c = agent(server, origin="http://evil.example")
    with pytest.raises(rtsync.RequestRejected, match="Origin"):
        c.run_forever()


def test_token_never_leaks(server: VoxsigServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = "good-user-token"
    c = agent(server)
    got, up = watch(c)
    with c:
        assert up.wait(5)
        server.broadcast("account_1", "message.created", {"id": 1})
        assert wait_for(lambda: any(e.name == "message.created" for e in got))
        server.drop()
        assert wait_for(lambda: sum(e.name == "rtsync.connected" for e in got) == 2)
    bad = rtsync.VoxsigClient("bad-secret-token", 1, 1, url=server.cable_url, backoff=FAST, confirm_timeout=0.2)
    with pytest.raises(rtsync.AuthenticationError) as info:
        bad.run_forever()
    text = "\n".join(r.getMessage() for r in caplog.records) + repr(got) + repr(c) + repr(bad) + str(info.value)
    assert token not in text and "bad-secret-token" not in text


def test_unsupported_subprotocol_is_final_and_none_is_accepted(server: VoxsigServer) -> None:
    server.protocols = ("actioncable-unsupported",)
    c = agent(server)
    with pytest.raises(rtsync.RequestRejected, match="actioncable-unsupported"):
        c.run_forever()
    server.protocols = ()  # a server that negotiates no subprotocol at all (not Rails) still works
    c = agent(server)
    got, up = watch(c)
    with c:
        assert up.wait(5)
