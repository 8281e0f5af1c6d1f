"""QuickMeetClient against the local DDP server: login, calls, streams, helpers, auth failures, secrets."""

from __future__ import annotations

import hashlib
import logging
from typing import Iterator, List

import pytest

import rtsync
from rtsync.cli import main
from rtsync.events import Event
from rtsync.testing.quickmeet import QuickMeetServer
from tests.conftest import started, wait_for

FAST = rtsync.Backoff(base=0.05, cap=0.2)


@pytest.fixture(params=["meteor", "streamer"])
def server(request: pytest.FixtureRequest) -> Iterator[QuickMeetServer]:
    # Rocket.Chat serves DDP from the Meteor monolith or from its ddp-streamer: a client must handle both.
    with QuickMeetServer(mode=request.param, ping_interval=0.6, ping_timeout=0.6) as s:
        yield s


def alice(server: QuickMeetServer, **kw) -> rtsync.QuickMeetClient:
    kw.setdefault("backoff", FAST)
    kw.setdefault("ping_interval", 1.0)
    kw.setdefault("ping_timeout", 1.0)
    return rtsync.QuickMeetClient(url=server.url, username="alice", password="alice-password", **kw)



def messages(got: List[Event]) -> List[str]:
    return [e.data[0]["msg"] for e in got if e.name == "stream-room-messages"]


def test_login_call_subscribe_and_receive(server: QuickMeetServer) -> None:
    c = alice(server)
    got = started(c)
    try:
        assert c.user_id == "alice-id" and c.resume_token
        sent = c.send_message("GENERAL", "hello")
        assert sent.msg == "hello" and sent.u.username == "alice"
        c.subscribe_room_messages("GENERAL")
        c.subscribe_typing("GENERAL")
        c.subscribe_notifications()
        server.publish("GENERAL", "hi alice")
        server.notify_user("alice", {"title": "bob", "text": "ping", "payload": {"rid": "GENERAL"}})
        c2 = rtsync.QuickMeetClient(url=server.url, username="bob", password="bob-password", backoff=FAST)
        started(c2)
        c2.call("stream-notify-room", "GENERAL/typing", "bob", True, {})
        c2.stop()
        assert wait_for(lambda: messages(got) == ["hi alice"] and any(e.name == "stream-notify-user" for e in got)
                        and any(e.name == "stream-notify-room" for e in got))
    finally:
        c.stop()
    room = next(e for e in got if e.name == "stream-room-messages")
    assert room.channel == "GENERAL" and rtsync.QuickMeetClient.room_message(room).u.username == "bob"
    note = next(e for e in got if e.name == "stream-notify-user")
    assert note.channel == "alice-id/notification" and rtsync.QuickMeetClient.notification(note).text == "ping"
    typing = next(e for e in got if e.name == "stream-notify-room")
    assert typing.channel == "GENERAL/typing" and typing.data[:2] == ["bob", True]
    sent_digest = server.frames_in[1]["params"][0]["password"]
    assert sent_digest == {"digest": hashlib.sha256(b"alice-password").hexdigest(), "algorithm": "sha-256"}
    assert "alice-password" not in str(server.frames_in)


def test_call_errors_carry_the_servers_error(server: QuickMeetServer) -> None:
    c = alice(server)
    started(c)
    try:
        with pytest.raises(rtsync.CallError) as info:
            c.call("no-such-method")
        assert info.value.error == 404 and "not found" in info.value.reason
        # `false` without access; the streamer omits any falsy result, and a missing result is None.
        assert c.call("loadHistory", "private-room", None, 10, None) is (None if server.streamer else False)
        server.rate_limit("sendMessage", 1500)
        with pytest.raises(rtsync.RateLimited) as limited:
            c.send_message("GENERAL", "too fast")
        assert limited.value.retry_after == 1.5
        with pytest.raises(rtsync.SubscriptionError, match="not-allowed"):
            c.subscribe_room_messages("private-room")
        with pytest.raises(rtsync.SubscriptionError, match="404"):
            c.subscribe("stream-nope", "x")
    finally:
        c.stop()


def test_resume_token_login(server: QuickMeetServer) -> None:
    token = server.issue_token("bob")
    c = rtsync.QuickMeetClient(url=server.url, resume_token=token, backoff=FAST)
    started(c)
    c.stop()
    assert c.user_id == "bob-id"
    assert server.frames_in[1]["params"] == [{"resume": token}]


@pytest.mark.parametrize("kwargs", [{"username": "alice", "password": "wrong"},
                                    {"username": "nobody", "password": "x"}, {"resume_token": "revoked"}])
def test_refused_logins_are_final(server: QuickMeetServer, kwargs) -> None:
    c = rtsync.QuickMeetClient(url=server.url, backoff=FAST, **kwargs)
    with pytest.raises(rtsync.AuthenticationError, match="403"):
        c.run_forever()
    assert sum(1 for f in server.frames_in if f.get("msg") == "connect") == 1


def test_login_rate_limit_waits_then_succeeds(server: QuickMeetServer) -> None:
    server.rate_limit("login", 300)
    c = alice(server)
    waits: List[float] = []
    c.on("rtsync.reconnecting", lambda e: waits.append(e.data["delay"]))
    started(c)
    c.stop()
    assert waits == [0.3]


def test_calls_fail_at_once_when_not_connected(server: QuickMeetServer) -> None:
    c = alice(server)
    with pytest.raises(rtsync.ConnectionLost):
        c.call("rooms/get")


def test_secrets_never_leak(server: QuickMeetServer, caplog: pytest.LogCaptureFixture,
                            capsys: pytest.CaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    c = alice(server)
    got = started(c)
    token = c.resume_token
    try:
        c.subscribe_room_messages("GENERAL")
        server.drop()
        assert wait_for(lambda: sum(e.name == "rtsync.connected" for e in got) == 2)
    finally:
        c.stop()
    bad = rtsync.QuickMeetClient(url=server.url, username="alice", password="not-" + "alice-password")
    with pytest.raises(rtsync.AuthenticationError) as info:
        bad.run_forever()
    assert main(["-vv", "listen", "quickmeet", "--url", server.url, "--username", "alice",
                 "--password", "cli-secret-password"]) == 3
    out, err = capsys.readouterr()
    text = "\n".join(r.getMessage() for r in caplog.records) + repr(got) + repr(c) + str(info.value) + out + err
    for secret in ["alice-password", hashlib.sha256(b"alice-password").hexdigest(), token,
                   "cli-secret-password", hashlib.sha256(b"cli-secret-password").hexdigest()]:
        assert secret not in text


def test_subscriptions_registered_before_start_go_out_with_the_login(server: QuickMeetServer) -> None:
    c = alice(server)
    c.subscribe_room_messages("GENERAL", wait=False)
    c.subscribe_room_messages("private-room", wait=False)  # refused: reported, not fatal
    got = started(c)
    try:
        server.publish("GENERAL", "hello")
        assert wait_for(lambda: messages(got) == ["hello"])
    finally:
        c.stop()
    assert any(e.name == "rtsync.error" and "not-allowed" in e.data["error"] for e in got)


def test_rooms_subscriptions_and_members_methods(server: QuickMeetServer) -> None:
    c = alice(server)
    started(c)
    try:
        rooms = c.call("rooms/get")
        assert [r["_id"] for r in rooms] == ["GENERAL"]
        since = c.call("subscriptions/get", {"$date": 0})  # a Date asks for {update, remove}
        assert [s["rid"] for s in since["update"]] == ["GENERAL"] and since["remove"] == []
        members = c.call("getUsersOfRoom", "GENERAL", True, {"limit": 50, "skip": 0}, "")
        assert members["total"] == 2 and {u["username"] for u in members["records"]} == {"alice", "bob"}
        with pytest.raises(rtsync.CallError, match="not-allowed"):
            c.call("getUsersOfRoom", "private-room", True, {"limit": 50, "skip": 0}, "")
    finally:
        c.stop()


def test_an_account_wanting_a_second_factor_is_final_and_says_what_to_do(server: QuickMeetServer) -> None:
    server.totp["alice"] = "123456"
    c = alice(server)
    with pytest.raises(rtsync.AuthenticationError, match="personal access token"):
        c.run_forever()
    assert sum(1 for f in server.frames_in if f.get("msg") == "connect") == 1
    # The server's second try, as Rocket.Chat's own client makes it: {"totp": {"login": ..., "code"}}.
    bob = rtsync.QuickMeetClient(url=server.url, username="bob", password="bob-password", backoff=FAST)
    started(bob)
    try:
        first = {"user": {"username": "alice"},
                 "password": {"digest": hashlib.sha256(b"alice-password").hexdigest(), "algorithm": "sha-256"}}
        with pytest.raises(rtsync.CallError, match="totp-invalid"):
            bob.call("login", {"totp": {"login": first, "code": "000000"}})
        assert bob.call("login", {"totp": {"login": first, "code": "123456"}})["id"] == "alice-id"
    finally:
        bob.stop()
