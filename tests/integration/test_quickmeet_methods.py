"""QuickMeetClient's bot helpers, typed events, EJSON params, credentials and checkpoints against the local server."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, List

import pytest

import rtsync
from rtsync.events import Event
from rtsync.testing.quickmeet import QuickMeetServer
from rtsync.vendors.quickmeet.failures import VersionMismatch
from rtsync.vendors.quickmeet.fill import ROOM_MESSAGES
from rtsync.vendors.quickmeet.models import Activity, DeletedMessage, Message, Notification, RoomChange, \
    SubscriptionChange
from tests.conftest import started, wait_for

FAST = rtsync.Backoff(base=0.05, cap=0.2)


@pytest.fixture(params=["meteor", "streamer"])
def server(request: pytest.FixtureRequest) -> Iterator[QuickMeetServer]:
    with QuickMeetServer(mode=request.param, ping_interval=0.6, ping_timeout=0.6) as s:
        yield s


def client(server: QuickMeetServer, user: str = "alice", **kw) -> rtsync.QuickMeetClient:
    kw.setdefault("backoff", FAST)
    kw.setdefault("ping_interval", 1.0)
    kw.setdefault("ping_timeout", 1.0)
    kw.setdefault("password", f"{user}-password")
    return rtsync.QuickMeetClient(user, url=server.url, **kw)


def messages(got: List[Event]) -> List[str]:
    return [e.data[0]["msg"] for e in got if e.name == "stream-room-messages"]


def test_a_bot_joins_sends_threads_edits_reacts_reads_and_leaves(server: QuickMeetServer) -> None:
    server.add_room("lobby", ["bob"])
    server.room_info["lobby"]["t"] = "c"  # a public channel alice may join
    bot = client(server)
    got = started(bot)
    try:
        with pytest.raises(rtsync.CallError) as refused:
            bot.send_message("lobby", "before joining")
        assert refused.value.error == "error-not-allowed"
        bot.join_room("lobby")
        bot.subscribe_room_messages("lobby")
        bot.subscribe_deleted_messages("lobby")
        root = bot.send_message("lobby", "root", alias="Bot", emoji=":robot:")
        reply = bot.send_message("lobby", "in the thread", tmid=root.id,
                                 attachments=[{"title": "report", "text": "all green"}])
        assert (root.alias, root.emoji) == ("Bot", ":robot:")
        assert reply.tmid == root.id and reply.attachments == [{"title": "report", "text": "all green"}]
        bot.update_message("lobby", root.id, "root (edited)")
        bot.react(root.id, "thumbsup")
        bot.delete_message(reply.id)
        assert wait_for(lambda: any(e.channel == "lobby/deleteMessage" for e in got))
        room = bot.get_room_info("lobby")
        assert room.id == "lobby" and room.t == "c"
        assert sorted(m.username for m in bot.get_room_members("lobby")) == ["alice", "bob"]
        server.mark_unread("alice", "lobby", 3)
        bot.mark_read("lobby")
        assert server.unread[("alice", "lobby")] == 0
        bot.leave_room("lobby")
        with pytest.raises(rtsync.CallError) as gone:
            bot.leave_room("lobby")
        assert gone.value.error == "error-user-not-in-room" and "not in this room" in str(gone.value)
    finally:
        bot.stop()
    edits = [e.typed for e in got if e.name == "stream-room-messages"]
    assert all(isinstance(m, Message) for m in edits)
    assert [m.msg for m in edits][:3] == ["root", "in the thread", "root (edited)"]
    assert edits[-1].reactions == {":thumbsup:": {"usernames": ["alice"]}}
    deleted = next(e for e in got if e.channel == "lobby/deleteMessage").typed
    assert isinstance(deleted, DeletedMessage) and deleted.id == reply.id


def test_others_messages_cannot_be_edited_and_the_reason_is_the_servers(server: QuickMeetServer) -> None:
    theirs = server.publish("GENERAL", "bob's words")
    bot = client(server)
    started(bot)
    try:
        with pytest.raises(rtsync.CallError) as refused:
            bot.update_message("GENERAL", theirs["_id"], "mine now")
        assert refused.value.error == "error-action-not-allowed" and "editing not allowed" in str(refused.value)
        with pytest.raises(rtsync.CallError) as unknown:
            bot.react("no-such-message", "thumbsup")
        assert unknown.value.error == "error-invalid-message"
    finally:
        bot.stop()


def test_direct_messages_typing_and_user_activity(server: QuickMeetServer) -> None:
    alice, bob = client(server), client(server, "bob")
    got = started(alice)
    started(bob)
    try:
        rid = bob.create_direct_message("alice")
        assert rid == "alice-idbob-id" and alice.create_direct_message("bob") == rid  # found, not made twice
        alice.subscribe_room_messages(rid)
        alice.subscribe_typing(rid)
        alice.subscribe_user_activity(rid)
        bob.send_typing(rid, legacy=True)
        bob.send_typing(rid, False, legacy=True)
        bob.send_message(rid, "psst")
        assert wait_for(lambda: messages(got) == ["psst"] and
                        len([e for e in got if e.name == "stream-notify-room"]) == 4)
    finally:
        alice.stop()
        bob.stop()
    activity = [e.typed for e in got if e.name == "stream-notify-room"]
    assert all(isinstance(a, Activity) and a.username == "bob" for a in activity)
    assert [a.typing for a in activity] == [True, True, False, False]  # user-activity, then the legacy flag


def test_typed_views_of_notifications_and_room_and_subscription_changes(server: QuickMeetServer) -> None:
    c = client(server)
    got = started(c)
    try:
        c.subscribe_notifications()
        c.subscribe_room_changes()
        c.subscribe_subscription_changes()
        server.notify_user("alice", {"title": "bob", "text": "hi", "payload": {"rid": "GENERAL"}})
        server.add_room("new-room", ["alice"])
        server.mark_unread("alice", "GENERAL", 2)
        assert wait_for(lambda: len([e for e in got if e.name == "stream-notify-user"]) == 3)
    finally:
        c.stop()
    note, room, sub = [e.typed for e in got if e.name == "stream-notify-user"]
    assert isinstance(note, Notification) and note.text == "hi"
    assert isinstance(room, RoomChange) and (room.action, room.item.id) == ("inserted", "new-room")
    assert isinstance(sub, SubscriptionChange) and (sub.item.rid, sub.item.unread) == ("GENERAL", 2)


def test_datetimes_in_call_params_travel_as_ejson_dates(server: QuickMeetServer) -> None:
    first = server.publish("GENERAL", "old")
    c = client(server)
    started(c)
    try:
        sent = datetime.fromtimestamp(first["ts"]["$date"] / 1000, tz=timezone.utc)
        later = sent + timedelta(seconds=1)
        naive = later.replace(tzinfo=None)  # naive datetimes are taken as UTC
        aware = c.call("loadHistory", "GENERAL", later, 10)
        assert [m["msg"] for m in aware["messages"]] == ["old"] and aware["messages"][0]["ts"] == sent
        assert c.call("loadHistory", "GENERAL", naive, 10) == aware
        assert c.call("loadMissedMessages", "GENERAL", later) == []
        with pytest.raises(TypeError, match="cannot send a set"):
            c.call("loadHistory", "GENERAL", {1, 2})
    finally:
        c.stop()


def test_email_login_and_logout_revokes_the_token(server: QuickMeetServer) -> None:
    c = rtsync.QuickMeetClient(email="alice@example.com", password="alice-password", url=server.url, backoff=FAST)
    started(c)
    token = c.resume_token
    try:
        assert c.user_id == "alice-id" and c.login_name == "alice" and token in server.tokens
        assert c.token_expires is not None and c.token_expires > datetime.now(timezone.utc) + timedelta(days=89)
    finally:
        c.logout()
    assert token not in server.tokens and c.state == rtsync.State.STOPPED and c.resume_token is None
    again = rtsync.QuickMeetClient(resume_token=token, url=server.url, backoff=FAST)
    again.start()
    try:
        with pytest.raises(rtsync.AuthenticationError):
            again.wait_connected(timeout=10)
    finally:
        again.stop()


def test_callable_credentials_are_read_before_every_connection(server: QuickMeetServer) -> None:
    reads = itertools.count(1)
    tokens = [server.issue_token("alice"), server.issue_token("alice")]

    def current_token() -> str:
        return tokens[min(next(reads), 2) - 1]

    c = rtsync.QuickMeetClient(resume_token=current_token, url=server.url, backoff=FAST)
    started(c)
    try:
        server.revoked.add(tokens[0])  # rotated in the vault: the old one stops working
        server.drop()
        assert wait_for(lambda: c.connected and c.stats.connects == 2, timeout=10)
        assert c.call("rooms/get")  # logged in again, with the second token
    finally:
        c.stop()
    logins = [f["params"][0] for f in server.frames_in if f.get("method") == "login"]
    assert logins == [{"resume": tokens[0]}, {"resume": tokens[1]}]
    assert tokens[1] not in repr(c) and tokens[1] not in str(c.stats)


def test_a_callable_password_is_hashed_per_attempt_and_never_shown(server: QuickMeetServer,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    c = client(server, password=lambda: "alice-password")
    started(c)
    c.stop()
    assert "alice-password" not in caplog.text and "alice-password" not in repr(c)
    wrong = client(server, password=lambda: "nope")
    wrong.start()
    try:
        with pytest.raises(rtsync.AuthenticationError):
            wrong.wait_connected(timeout=10)
    finally:
        wrong.stop()


def test_a_server_without_ddp_1_is_final_with_what_to_do() -> None:
    # Only the Meteor monolith checks versions; the ddp-streamer always answers connected (section 9.1).
    with QuickMeetServer(mode="meteor") as server:
        server.ddp_versions = ["pre2", "pre1"]
        c = client(server)
        c.start()
        try:
            with pytest.raises(VersionMismatch, match="DDP version 1") as failed:
                c.wait_connected(timeout=10)
            assert "url" in str(failed.value) and c.state == rtsync.State.FAILED
        finally:
            c.stop()
        assert server.connections_total == 1  # not retried
        assert server.frames_out[-1] == {"msg": "failed", "version": "pre2"}


def test_a_rate_limited_subscription_waits_and_goes_out_again(server: QuickMeetServer) -> None:
    c = client(server)
    got = started(c)
    try:
        server.rate_limit_subscriptions("stream-room-messages", time_to_reset_ms=300)
        c.subscribe_room_messages("GENERAL")  # waits out the limit, then is ready
        server.publish("GENERAL", "after the limit")
        assert wait_for(lambda: messages(got) == ["after the limit"])
    finally:
        c.stop()
    (limited,) = [e for e in got if e.name == "rtsync.error"]
    assert isinstance(limited.data["exception"], rtsync.RateLimited) and "rate limited" in limited.data["error"]
    assert limited.data["exception"].retry_after == pytest.approx(0.3)


def test_user_presence_subscription_with_its_own_parameters(server: QuickMeetServer) -> None:
    c = client(server)
    got = started(c)
    try:
        c.subscribe_presence("bob-id")
        server.set_status("bob", 2, "lunch")
        assert wait_for(lambda: any(e.name == "stream-user-presence" for e in got))
    finally:
        c.stop()
    event = next(e for e in got if e.name == "stream-user-presence")
    assert event.channel == "bob-id" and event.data == [["bob", 2, "lunch"]]


def test_a_checkpoint_carries_gap_fill_across_processes(server: QuickMeetServer, tmp_path: Path) -> None:
    saved = rtsync.FileCheckpoint(tmp_path / "qm.json")
    first = client(server, checkpoint=saved)
    got = started(first)
    first.subscribe_room_messages("GENERAL")
    server.publish("GENERAL", "one")
    assert wait_for(lambda: messages(got) == ["one"])
    first.stop()
    for text in ("two", "three", "four"):
        server.publish("GENERAL", text)
    second = client(server, checkpoint=saved)
    got2 = started(second)
    try:
        second.subscribe_room_messages("GENERAL")
        assert wait_for(lambda: messages(got2) == ["two", "three", "four"])
        server.publish("GENERAL", "five")
        assert wait_for(lambda: messages(got2)[-1:] == ["five"])
    finally:
        second.stop()
    assert messages(got2) == ["two", "three", "four", "five"]  # in order, once, nothing from before
    assert not any(e.name == "rtsync.gap" for e in got2)
    assert (saved.load() or {})["rooms"]["GENERAL"][0] == server.messages["GENERAL"][-1]["ts"]["$date"]


@pytest.mark.parametrize("method", ["joinRoom", "leaveRoom", "createDirectMessage", "getRoomById", "updateMessage",
                                    "deleteMessage", "setReaction", "readMessages", "logout"])
def test_the_server_answers_hostile_params_as_rocket_chat_would(server: QuickMeetServer, method: str) -> None:
    c = client(server)
    started(c)
    try:
        for params in ([], [None], [123], [{}], [[1, 2]], [{"_id": ["x"], "rid": {}}], ["GENERAL", "x", "y", 4]):
            try:
                c.call(method, *params, timeout=5)  # an answer, never silence
            except rtsync.CallError as exc:
                assert isinstance(exc.error, str) and exc.error.startswith("error-")
            if method == "logout":
                break  # logged out: what follows is another test's subject
    finally:
        c.stop()


def test_a_checkpoint_of_another_shape_is_a_configuration_error(tmp_path: Path) -> None:
    saved = rtsync.FileCheckpoint(tmp_path / "dashly.json")
    saved.save({"cursor": {"time": "x", "tag": 1}, "channels": {}})  # another vendor's cursor
    with pytest.raises(rtsync.ConfigurationError, match="QuickMeet's per-room positions"):
        rtsync.QuickMeetClient("alice", "pw", url="ws://127.0.0.1:9/websocket", checkpoint=saved)


def test_a_livechat_room_is_read_with_the_visitor_token_as_the_streams_parameter(server: QuickMeetServer) -> None:
    server.add_room("livechat-1", ["bob"])
    server.livechat["livechat-1"] = "visitor-token"
    c = client(server)
    got = started(c)
    try:
        with pytest.raises(rtsync.SubscriptionError, match="not-allowed"):
            c.subscribe(ROOM_MESSAGES, "livechat-1")  # not a member, no token
        c.subscribe(ROOM_MESSAGES, "livechat-1", {"token": "visitor-token"})
        server.publish("livechat-1", "hello visitor")
        assert wait_for(lambda: messages(got) == ["hello visitor"])
        server.drop()  # the parameters go out again with the new link's sub
        assert wait_for(lambda: c.stats.connects == 2 and c.connected, timeout=10)
        server.publish("livechat-1", "still here")
        assert wait_for(lambda: messages(got) == ["hello visitor", "still here"])
    finally:
        c.stop()


def test_activity_right_after_start_waits_for_the_username_the_server_gives(server: QuickMeetServer) -> None:
    token = server.issue_token("bob")
    bob = rtsync.QuickMeetClient(resume_token=token, url=server.url, backoff=FAST)  # no username given
    alice = client(server)
    got = started(alice)
    try:
        alice.subscribe_user_activity("GENERAL")
        with bob:
            bob.send_typing("GENERAL")  # before the login completed: waits, then names bob
            assert wait_for(lambda: any(e.name == "stream-notify-room" for e in got))
    finally:
        alice.stop()
    (activity,) = [e.typed for e in got if e.name == "stream-notify-room"]
    assert isinstance(activity, Activity) and activity.username == "bob" and activity.typing


def test_the_login_is_renewed_on_the_live_link_before_the_token_lapses(server: QuickMeetServer) -> None:
    server.token_lifetime = 3.0
    c = client(server, refresh_before=2.5)
    c.protocol.refresh_floor = 0.1
    got = started(c)
    try:
        first, expires = c.resume_token, c.token_expires
        c.subscribe_room_messages("GENERAL")
        assert wait_for(lambda: c.resume_token != first, timeout=10)
        assert c.token_expires is not None and expires is not None and c.token_expires > expires
        server.publish("GENERAL", "still subscribed")
        assert wait_for(lambda: messages(got) == ["still subscribed"])
    finally:
        c.stop()
    assert c.stats.connects == 1  # renewed without a reconnect
    logins = [f["params"][0] for f in server.frames_in if f.get("method") == "login"]
    assert len(logins) >= 2 and all("password" in login for login in logins)


def test_an_expired_token_without_a_password_is_refused_and_final(server: QuickMeetServer) -> None:
    server.token_lifetime = 0.0
    c = rtsync.QuickMeetClient(resume_token=server.issue_token("alice"), url=server.url, backoff=FAST)
    c.start()
    try:
        with pytest.raises(rtsync.AuthenticationError, match="expired"):
            c.wait_connected(timeout=10)
    finally:
        c.stop()
