"""QuickMeet under faults: drops during calls and during a flood of messages, stale links, bad frames, stop."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Iterator, List

import pytest

import rtsync
from rtsync.events import Event
from rtsync.testing.quickmeet import QuickMeetServer
from tests.conftest import started, wait_for

FAST = rtsync.Backoff(base=0.02, cap=0.1)


@pytest.fixture(params=["meteor", "streamer"])
def server(request: pytest.FixtureRequest) -> Iterator[QuickMeetServer]:
    # Rocket.Chat serves DDP from the Meteor monolith or from its ddp-streamer: a client must handle both.
    with QuickMeetServer(mode=request.param, ping_interval=0.5, ping_timeout=0.5) as s:
        yield s


def alice(server: QuickMeetServer, **kw) -> rtsync.QuickMeetClient:
    kw.setdefault("ping_interval", 0.6)
    kw.setdefault("ping_timeout", 0.6)
    kw.setdefault("handshake_timeout", 1.0)
    return rtsync.QuickMeetClient(url=server.url, username="alice", password="alice-password", backoff=FAST, **kw)



def messages(got: List[Event]) -> List[str]:
    return [e.data[0]["msg"] for e in got if e.name == "stream-room-messages"]


def test_a_drop_during_a_call_fails_it_at_once(server: QuickMeetServer) -> None:
    c = alice(server)
    started(c)
    try:
        server.hold_results = True
        threading.Timer(0.2, server.drop).start()
        t0 = time.monotonic()
        with pytest.raises(rtsync.ConnectionLost):
            c.call("rooms/get", timeout=30)
        assert time.monotonic() - t0 < 2
        server.hold_results = False
        assert wait_for(lambda: c.protocol.state == "ready", timeout=5)
        assert isinstance(c.call("rooms/get"), list)  # and the next call works on the new link
    finally:
        c.stop()


def test_every_message_exactly_once_in_order_across_drops(server: QuickMeetServer) -> None:
    c = alice(server)
    got = started(c)
    try:
        c.subscribe_room_messages("GENERAL")
        total = 120
        for n in range(total):
            server.publish("GENERAL", f"m{n}")
            if n % 30 == 15:
                server.drop()  # messages keep coming while the client logs in again and fills the gap
            time.sleep(0.003)
        assert wait_for(lambda: len([e for e in got if e.name == "stream-room-messages"]) >= total, timeout=15)
        time.sleep(0.5)
    finally:
        c.stop()
    texts = [e.data[0]["msg"] for e in got if e.name == "stream-room-messages"]
    assert texts == [f"m{n}" for n in range(total)]
    assert sum(e.name == "rtsync.connected" for e in got) >= 4
    assert not any(e.name == "rtsync.gap" for e in got)


def listening_in_general(server: QuickMeetServer, pages: int, missed_method: bool = False) -> tuple:
    """A client (history pages of 5) that has seen "first" in GENERAL, and a server gone silent; by
    default one without loadMissedMessages, so that the gap is filled with loadHistory pages."""
    server.missed_messages_method = missed_method
    c = alice(server)
    c.protocol.history_page, c.protocol.history_pages = 5, pages
    got = started(c)
    c.subscribe_room_messages("GENERAL")
    server.publish("GENERAL", "first")
    assert wait_for(lambda: any(e.name == "stream-room-messages" for e in got))
    server.silence(True)
    return c, got


def test_more_missed_than_history_can_hold_is_a_gap(server: QuickMeetServer) -> None:
    c, got = listening_in_general(server, pages=2)
    try:
        for n in range(25):  # far more than 2 pages of 5
            server.publish("GENERAL", f"away{n}")
            time.sleep(0.002)  # distinct milliseconds: ties are the next test's subject
        server.drop()
        server.silence(False)
        assert wait_for(lambda: any(e.name == "rtsync.gap" for e in got), timeout=5)
    finally:
        c.stop()
    gap = next(e for e in got if e.name == "rtsync.gap")
    assert gap.channel == "GENERAL" and "more than 10" in gap.data["reason"]


def test_load_missed_messages_fills_a_gap_of_any_size_in_one_call(server: QuickMeetServer) -> None:
    c, got = listening_in_general(server, pages=2, missed_method=True)
    try:
        for n in range(60):  # far more than 2 history pages of 5: no matter with loadMissedMessages
            server.publish("GENERAL", f"away{n}")
        server.drop()
        server.silence(False)
        assert wait_for(lambda: len(messages(got)) == 61, timeout=5)
        server.publish("GENERAL", "back")
        assert wait_for(lambda: len(messages(got)) == 62)
    finally:
        c.stop()
    assert messages(got) == ["first"] + [f"away{n}" for n in range(60)] + ["back"]
    assert not any(e.name == "rtsync.gap" for e in got)
    fills = [f["method"] for f in server.frames_in if f.get("method") in ("loadMissedMessages", "loadHistory")
             and f["params"][1:3] != [None, 1]]  # not the starting point asked for when first subscribed
    assert fills == ["loadMissedMessages"]


def test_messages_sharing_milliseconds_across_history_pages_are_all_filled(
        server: QuickMeetServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # loadHistory pages by `ts < end` in whole milliseconds; three messages per millisecond put ties on
    # every page boundary (this once lost messages silently).
    c, got = listening_in_general(server, pages=10)
    try:
        calls = itertools.count()
        monkeypatch.setattr("rtsync.testing.quickmeet._now_ms", lambda: 2_000_000_000_000 + next(calls) // 3)
        for n in range(22):
            server.publish("GENERAL", f"away{n}")
        server.drop()
        server.silence(False)
        assert wait_for(lambda: sum(e.name == "stream-room-messages" for e in got) == 23, timeout=5)
    finally:
        c.stop()
    texts = [e.data[0]["msg"] for e in got if e.name == "stream-room-messages"]
    assert texts == ["first"] + [f"away{n}" for n in range(22)]
    assert not any(e.name == "rtsync.gap" for e in got)


def test_room_and_subscription_changes_made_while_away_are_recovered(server: QuickMeetServer) -> None:
    server.add_room("old-team", ["alice", "bob"])
    c = alice(server)
    got = started(c)
    try:
        c.subscribe_room_changes()
        c.subscribe_subscription_changes()
        server.rename_room("GENERAL", "General")  # live
        server.mark_unread("alice", "GENERAL", 1)  # live: both subs are ready, so both baselines were asked
        assert wait_for(lambda: len(changes(got, "rooms-changed")) == 1 and changes(got, "subscriptions-changed"))
        # Answered after the baselines (asked before it, on the same link): a change made from here
        # on is one the baselines did not see, whenever the link drops.
        c.call("rooms/get")
        live_subs = len(changes(got, "subscriptions-changed"))
        server.silence(True)
        server.add_room("new-team", ["alice"])
        server.rename_room("GENERAL", "Lobby")
        server.remove_room("old-team")
        server.mark_unread("alice", "GENERAL", 3)
        server.drop()
        server.silence(False)
        assert wait_for(lambda: len(changes(got, "rooms-changed")) == 4, timeout=5)
        assert wait_for(lambda: any(d[0] == "removed" for d in changes(got, "subscriptions-changed")), timeout=5)
        time.sleep(0.3)  # nothing more may come: no repeats of what was fetched
    finally:
        c.stop()
    rooms = [(action, item.get("name", item["_id"])) for action, item in changes(got, "rooms-changed")]
    assert rooms[0] == ("updated", "General")
    assert sorted(rooms[1:]) == [("inserted", "new-team"), ("removed", "old-team"), ("updated", "Lobby")]
    recovered = changes(got, "subscriptions-changed")[live_subs:]
    subs = {(action, item["_id"]): item for action, item in recovered}
    assert subs[("updated", "GENERAL-alice")]["unread"] == 3 and subs[("updated", "GENERAL-alice")]["name"] == "Lobby"
    assert ("inserted", "new-team-alice") in subs and ("removed", "old-team-alice") in subs
    assert len(subs) == len(recovered)  # each change once


def changes(got: List[Event], kind: str) -> List[list]:
    return [e.data for e in got if e.name == "stream-notify-user" and e.channel.endswith("/" + kind)]


def test_edits_are_delivered_as_new_versions(server: QuickMeetServer) -> None:
    c = alice(server)
    got = started(c)
    try:
        c.subscribe_room_messages("GENERAL")
        sent = server.publish("GENERAL", "typo")
        time.sleep(0.01)
        server.edit(sent["_id"], "fixed")
        assert wait_for(lambda: [e.data[0]["msg"] for e in got if e.name == "stream-room-messages"] == ["typo", "fixed"])
    finally:
        c.stop()


def test_silent_server_is_stale(server: QuickMeetServer) -> None:
    c = alice(server)
    got = started(c)
    try:
        server.silence(True)
        assert wait_for(lambda: any(e.name == "rtsync.disconnected" for e in got), timeout=5)
        server.silence(False)
        assert wait_for(lambda: sum(e.name == "rtsync.connected" for e in got) == 2, timeout=5)
    finally:
        c.stop()
    assert "no frame from QuickMeet" in next(e for e in got if e.name == "rtsync.disconnected").data["reason"]


def test_server_restart_and_malformed_frames(server: QuickMeetServer) -> None:
    c = alice(server)
    got = started(c)
    try:
        c.subscribe_room_messages("GENERAL")
        server.restart()
        assert wait_for(lambda: sum(e.name == "rtsync.connected" for e in got) == 2, timeout=5)

        async def junk() -> None:
            for ws in list(server.websockets):
                await ws.send_str("{not json")
                await ws.send_str('{"msg":"error","reason":"Bad request"}')

        server.call(junk)
        server.publish("GENERAL", "still here")
        assert wait_for(lambda: any(e.name == "stream-room-messages" for e in got))
    finally:
        c.stop()
    assert sum(e.name == "rtsync.error" for e in got) == 2


@pytest.mark.parametrize("code,reason,meaning", [
    (4000, "TIMEOUT", "ping timeout"), (1002, "CLOSE_PROTOCOL_ERROR", "protocol error"),
    (1007, "UNSUPPORTED_DATA", "could not parse"), (1013, "SLOW_CONSUMER", "read too slowly"),
])
def test_the_streamers_close_codes_are_explained_retried_and_lose_nothing(
        server: QuickMeetServer, code: int, reason: str, meaning: str) -> None:
    c = alice(server)
    got = started(c)
    try:
        c.subscribe_room_messages("GENERAL")
        server.publish("GENERAL", "before")
        assert wait_for(lambda: messages(got) == ["before"])
        server.close_all(code, reason)
        server.publish("GENERAL", "during")  # live on the old link, or filled on the new one: once either way
        assert wait_for(lambda: sum(e.name == "rtsync.connected" for e in got) == 2, timeout=5)
        server.publish("GENERAL", "after")
        assert wait_for(lambda: messages(got) == ["before", "during", "after"])
    finally:
        c.stop()
    (lost,) = [e for e in got if e.name == "rtsync.disconnected"]
    assert f"code {code}: {reason}" in lost.data["reason"] and meaning in lost.data["reason"]


def test_broker_mangled_login_errors_are_still_final(server: QuickMeetServer) -> None:
    server.mangle_errors = True  # {"error": "Incorrect password [403]"}: no number, no reason
    c = rtsync.QuickMeetClient(url=server.url, username="alice", password="wrong", backoff=FAST)
    with pytest.raises(rtsync.AuthenticationError, match="403"):
        c.run_forever()
    assert sum(1 for f in server.frames_in if f.get("msg") == "connect") == 1


def test_the_streamer_never_had_a_reason_to_close_on_us() -> None:
    # It pings ~30 ms after open, before `connect`: a client answering that first gets 1002.
    with QuickMeetServer(mode="streamer", ping_interval=0.3, ping_timeout=0.3) as server:
        server.early_ping_after = 0.0
        c = alice(server, ping_interval=0.4, ping_timeout=0.4)
        got = started(c)
        try:
            c.subscribe_room_messages("GENERAL")
            c.subscribe_room_messages("GENERAL")  # the same room twice is one subscription, still fine
            assert c.call("rooms/get")
            time.sleep(1.0)  # several heartbeats both ways
            server.drop()
            assert wait_for(lambda: sum(e.name == "rtsync.connected" for e in got) == 2, timeout=5)
        finally:
            c.stop()
        assert [f["msg"] for f in server.frames_in if f.get("msg") == "connect"] == ["connect", "connect"]
        assert server.frames_in[0]["msg"] == "connect"
        assert server.closes == []
        assert not any(e.name == "rtsync.error" for e in got)


def test_stop_at_any_point(server: QuickMeetServer) -> None:
    for delay in (0.0, 0.005, 0.02, 0.1):
        c = alice(server)
        c.start()
        time.sleep(delay)
        t0 = time.monotonic()
        c.stop()
        assert time.monotonic() - t0 < 1.0


def test_my_messages_fills_every_room_after_a_drop(server: QuickMeetServer) -> None:
    server.add_room("ops", ["alice", "bob"])
    c = alice(server)
    got = started(c)
    try:
        c.subscribe_my_messages()
        server.publish("GENERAL", "seen")
        assert wait_for(lambda: messages(got) == ["seen"])
        server.silence(True)
        server.publish("GENERAL", "missed in general")
        server.publish("ops", "missed in ops")  # a room nothing was seen in before the drop
        server.drop()
        server.silence(False)
        assert wait_for(lambda: len(messages(got)) == 3, timeout=10)
        server.publish("ops", "live again")
        assert wait_for(lambda: len(messages(got)) == 4)
    finally:
        c.stop()
    assert messages(got) == ["seen", "missed in general", "missed in ops", "live again"]
    assert {e.channel for e in got if e.name == "stream-room-messages"} == {"__my_messages__"}
    assert not any(e.name == "rtsync.gap" for e in got)
    resumed = [e.data["resumed"] for e in got if e.name == "rtsync.connected"]
    assert resumed == [False, True]


def test_a_quiet_room_loses_nothing_across_a_drop(server: QuickMeetServer) -> None:
    c = alice(server)
    got = started(c)
    try:
        c.subscribe_room_messages("GENERAL")  # nothing seen yet: the starting point comes from loadHistory
        assert wait_for(lambda: any(f.get("method") == "loadHistory" for f in server.frames_in))
        server.silence(True)
        server.publish("GENERAL", "while away")
        server.drop()
        server.silence(False)
        assert wait_for(lambda: messages(got) == ["while away"], timeout=10)
    finally:
        c.stop()
    assert not any(e.name == "rtsync.gap" for e in got)


def test_notifications_missed_in_a_drop_are_a_gap_and_the_link_is_not_resumed(server: QuickMeetServer) -> None:
    c = alice(server)
    got = started(c)
    try:
        c.subscribe_notifications()
        c.subscribe_deleted_messages("GENERAL")
        c.subscribe_user_activity("GENERAL")  # ephemeral: nothing to report
        server.drop()
        assert wait_for(lambda: len([e for e in got if e.name == "rtsync.connected"]) == 2, timeout=10)
    finally:
        c.stop()
    gaps = [e for e in got if e.name == "rtsync.gap"]
    assert sorted(g.channel for g in gaps) == ["GENERAL/deleteMessage", "alice-id/notification"]
    for g in gaps:
        assert g.data["channel"] == g.channel and g.data["missing"] is None and "not replayed" in g.data["reason"]
    assert [e.data["resumed"] for e in got if e.name == "rtsync.connected"] == [False, False]


def test_messages_deleted_while_away_are_delivered_after_the_drop(server: QuickMeetServer) -> None:
    c = alice(server)
    got = started(c)
    try:
        c.subscribe_room_messages("GENERAL")
        c.subscribe_deleted_messages("GENERAL")
        early = server.publish("GENERAL", "deleted while alice was here")
        doomed = server.publish("GENERAL", "deleted while alice was away")
        assert wait_for(lambda: len(messages(got)) == 2)
        server.delete(early["_id"])
        assert wait_for(lambda: any(e.channel == "GENERAL/deleteMessage" for e in got))
        server.silence(True)
        server.delete(doomed["_id"])
        server.drop()
        server.silence(False)
        assert wait_for(lambda: len([e for e in got if e.channel == "GENERAL/deleteMessage"]) == 2, timeout=10)
    finally:
        c.stop()
    deleted = [e.data[0]["_id"] for e in got if e.channel == "GENERAL/deleteMessage"]
    assert deleted == [early["_id"], doomed["_id"]]  # the earlier one not again
    assert not any(e.name == "rtsync.gap" for e in got)


def test_an_older_message_edited_while_away_comes_again_after_the_drop(server: QuickMeetServer) -> None:
    c = alice(server)
    got = started(c)
    try:
        c.subscribe_room_messages("GENERAL")
        old = server.publish("GENERAL", "draft")
        server.publish("GENERAL", "newer")
        assert wait_for(lambda: messages(got) == ["draft", "newer"])
        server.silence(True)
        server.edit(old["_id"], "final")  # an edit of a message older than the newest seen
        server.publish("GENERAL", "missed")
        server.drop()
        server.silence(False)
        assert wait_for(lambda: len(messages(got)) == 4, timeout=10)
    finally:
        c.stop()
    # Changes to old messages come behind the missed ones (or among them, when they share a millisecond).
    assert messages(got)[:2] == ["draft", "newer"] and sorted(messages(got)[2:]) == ["final", "missed"]
    assert not any(e.name == "rtsync.gap" for e in got)


def test_a_server_without_messages_get_reports_that_edits_may_be_missing(server: QuickMeetServer) -> None:
    server.missing_methods.add("messages/get")
    c = alice(server)
    got = started(c)
    try:
        c.subscribe_room_messages("GENERAL")
        server.publish("GENERAL", "seen")
        assert wait_for(lambda: messages(got) == ["seen"])
        server.drop()
        assert wait_for(lambda: any(e.name == "rtsync.gap" for e in got), timeout=10)
    finally:
        c.stop()
    (gap,) = [e for e in got if e.name == "rtsync.gap"]
    assert gap.data["channel"] == "GENERAL" and "edits and reactions" in gap.data["reason"]
