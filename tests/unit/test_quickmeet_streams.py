"""QuickMeet's streams and login upkeep on recorded frames: sub parameters, rate-limited subs, gaps, token refresh."""

from __future__ import annotations

import json
from typing import Any, Dict, List

from rtsync.errors import AuthenticationError, RateLimited
from rtsync.events import GAP
from rtsync.sansio import Connected, Reply, Report, Send
from rtsync.vendors.quickmeet.models import Activity, Message
from rtsync.vendors.quickmeet.protocol import QuickMeetProtocol
from tests.unit.test_quickmeet_protocol import CONNECTED, LOGIN, LOGIN_OK, frames, logged_in

TOO_MANY_SUB = {"msg": "nosub", "id": "s2", "error": {
    "isClientSafe": True, "error": "too-many-requests",
    "reason": "Error, too many requests. Please slow down. You must wait 7 seconds before trying again.",
    "details": {"timeToReset": 6432}, "message": "... [too-many-requests]", "errorType": "Meteor.Error"}}
MY_MESSAGE = {"msg": "changed", "collection": "stream-room-messages", "id": "id", "fields": {
    "eventName": "__my_messages__", "args": [
        {"_id": "m1", "rid": "sandbox", "msg": "hi", "ts": {"$date": 1000}, "_updatedAt": {"$date": 1000}},
        {"roomParticipant": True, "roomType": "p", "roomName": "sandbox"}]}}


def relink(p: QuickMeetProtocol, now: float) -> List[Any]:
    """Drop the link and log in again; the outputs of the login's answer."""
    p.lost()
    p.opened(now)
    (login,) = frames(p.received(CONNECTED, now))
    return p.received(LOGIN_OK.replace('"login1"', f'"{login["id"]}"'), now)


def ready(p: QuickMeetProtocol, *ids: str, now: float = 0) -> List[Any]:
    return p.received(json.dumps({"msg": "ready", "subs": list(ids)}), now)


def result(p: QuickMeetProtocol, call: Dict[str, Any], value: Any, now: float = 0) -> List[Any]:
    return p.received(json.dumps({"msg": "result", "id": call["id"], "result": value}), now)


def test_a_stream_gets_its_own_parameters_and_keeps_them_after_a_reconnect() -> None:
    p = logged_in()
    sub_id, out = p.subscribe("stream-livechat-room", "room1", [{"token": "visitor-token"}])
    expected = {"msg": "sub", "id": sub_id, "name": "stream-livechat-room",
                "params": ["room1", {"useCollection": False, "args": [{"token": "visitor-token"}]}]}
    assert frames(out) == [expected]
    presence, out = p.subscribe("stream-user-presence", "", [{"added": ["u1"]}])  # the one stream with no name
    assert frames(out)[0]["params"] == ["", {"useCollection": False, "args": [{"added": ["u1"]}]}]
    assert expected in frames(relink(p, 5))


def test_a_rate_limited_sub_is_reported_and_sent_again_after_time_to_reset() -> None:
    p = logged_in()
    sub_id, _ = p.subscribe("stream-room-messages", "GENERAL")
    (report,) = p.received(json.dumps(TOO_MANY_SUB), 10)
    assert isinstance(report, Report) and isinstance(report.error, RateLimited)
    assert report.error.retry_after == 6.432 and sub_id in p.subs  # not dropped, not a refusal
    assert p.deadline() == 10 + 6.432
    assert p.tick(16) == []
    (again,) = frames(p.tick(16.5))
    assert again["msg"] == "sub" and again["id"] == sub_id
    reply = ready(p, sub_id, now=17)[0]
    assert isinstance(reply, Reply) and reply.result == sub_id  # the waiting subscribe() returns


def test_my_messages_keep_their_room_details_and_type() -> None:
    p = logged_in()
    p.subscribe("stream-room-messages", "__my_messages__")
    (event,) = p.received(json.dumps(MY_MESSAGE), 0)
    assert event.channel == "__my_messages__" and event.data[1]["roomName"] == "sandbox"
    message = event.typed
    assert isinstance(message, Message) and message.rid == "sandbox" and message.room == MY_MESSAGE["fields"]["args"][1]


def test_my_messages_are_filled_per_room_after_a_reconnect() -> None:
    p = logged_in()
    sub_id, _ = p.subscribe("stream-room-messages", "__my_messages__")
    (baseline,) = frames(ready(p, sub_id)[1:])
    assert (baseline["method"], baseline["params"]) == ("rooms/get", [])
    result(p, baseline, [{"_id": "sandbox", "lm": {"$date": 900}}, {"_id": "quiet", "_updatedAt": {"$date": 500}}])
    p.received(json.dumps(MY_MESSAGE), 0)
    relink(p, 5)
    (rooms,) = frames(ready(p, sub_id, now=5)[1:])
    assert rooms["method"] == "rooms/get"
    held = dict(MY_MESSAGE, fields=dict(MY_MESSAGE["fields"], args=[
        {"_id": "live", "rid": "quiet", "msg": "live", "ts": {"$date": 3000}}, {}]))
    assert p.received(json.dumps(held), 5) == []  # held until we know which rooms are filled
    fills = frames(result(p, rooms, [{"_id": "sandbox"}, {"_id": "quiet"}], 5))
    assert [(f["method"], f["params"]) for f in fills] == [
        ("loadMissedMessages", ["sandbox", {"$date": 999}]),  # from its newest delivered message
        ("messages/get", ["sandbox", {"lastUpdate": {"$date": 999}}]),  # and older messages edited since
        ("loadMissedMessages", ["quiet", {"$date": 999}]),  # from the newest known anywhere
        ("messages/get", ["quiet", {"lastUpdate": {"$date": 999}}])]
    assert result(p, fills[0], [], 5) == []
    out = result(p, fills[2], [{"_id": "q1", "rid": "quiet", "msg": "missed", "ts": {"$date": 2000}}], 5)
    assert [(e.id, e.channel) for e in out] == [("q1", "__my_messages__"), ("live", "__my_messages__")]
    edited = {"_id": "m1", "rid": "sandbox", "msg": "hi (edited)", "ts": {"$date": 1000}, "_updatedAt": {"$date": 4000}}
    out = result(p, fills[1], {"updated": [edited], "deleted": []}, 5)
    assert [(e.id, e.channel, e.data[0]["msg"]) for e in out] == [("m1", "__my_messages__", "hi (edited)")]
    not_found = {"error": 404, "reason": "Method 'messages/get' not found"}
    (gap,) = p.received(json.dumps({"msg": "result", "id": fills[3]["id"], "error": not_found}), 5)
    assert gap.name == GAP and gap.channel == "__my_messages__" and "edits and reactions" in gap.data["reason"]
    announced = [o for o in relink(p, 9) + ready(p, sub_id, now=9) if isinstance(o, Connected)]
    assert announced == [Connected(resumed=True, detail={"user_id": "3Dw26TXWxvi8gwfgM"})]


def test_streams_that_cannot_be_replayed_are_gaps_with_the_uniform_keys() -> None:
    p = logged_in()
    note, _ = p.subscribe("stream-notify-user", "3Dw26TXWxvi8gwfgM/notification")
    typing, _ = p.subscribe("stream-notify-room", "GENERAL/user-activity")
    ready(p, note, typing)
    relink(p, 5)
    out = ready(p, note, typing, now=5)
    (gap,) = [o for o in out if getattr(o, "name", None) == GAP]
    assert gap.data == {"channel": "3Dw26TXWxvi8gwfgM/notification", "missing": None,
                        "reason": gap.data["reason"], "stream": "stream-notify-user"}
    assert [o for o in out if isinstance(o, Connected)][0].resumed is False  # something was lost


def test_a_failed_room_fill_is_a_gap_with_channel_missing_reason_and_the_old_keys() -> None:
    p = logged_in()
    sub_id, _ = p.subscribe("stream-room-messages", "GENERAL")
    (baseline,) = frames(ready(p, sub_id)[1:])
    result(p, baseline, {"messages": [{"_id": "old", "ts": {"$date": 700}}]})
    relink(p, 5)
    fill, _edits = frames(ready(p, sub_id, now=5)[1:])
    assert fill["params"] == ["GENERAL", {"$date": 699}]  # from the starting point the baseline gave
    (gap,) = result(p, fill, False, 5)
    assert gap.data == {"channel": "GENERAL", "missing": None, "reason": "no access to the room's history",
                        "room": "GENERAL", "since": {"$date": 700}}


def test_user_activity_and_legacy_typing_are_typed_alike() -> None:
    p = logged_in()
    p.subscribe("stream-notify-room", "GENERAL/user-activity")
    frame = {"msg": "changed", "collection": "stream-notify-room", "id": "id",
             "fields": {"eventName": "GENERAL/user-activity", "args": ["bob", ["user-typing"], {}]}}
    (event,) = p.received(json.dumps(frame), 0)
    assert isinstance(event.typed, Activity) and event.typed.typing and event.typed.username == "bob"
    frame["fields"] = {"eventName": "GENERAL/typing", "args": ["bob", False]}
    (event,) = p.received(json.dumps(frame), 0)
    assert isinstance(event.typed, Activity) and not event.typed.typing


def test_the_token_is_renewed_with_the_password_before_it_lapses() -> None:
    wall = [1696417505.309 - 3 * 24 * 3600]  # three days before the LOGIN_OK token's tokenExpires
    p = QuickMeetProtocol("wss://x/websocket", LOGIN, wall_clock=lambda: wall[0], refresh_before=24 * 3600,
                          ping_after=10**9)
    p.opened(0)
    p.received(CONNECTED, 0)
    p.received(LOGIN_OK, 0)
    assert abs(p.deadline() - 2 * 24 * 3600) < 1e-3  # one day ahead of the expiry
    (relogin,) = frames(p.tick(2 * 24 * 3600))
    assert relogin["method"] == "login" and relogin["params"] == [LOGIN]
    renewed = LOGIN_OK.replace('"login1"', f'"{relogin["id"]}"').replace("1696417505309", "1704193505309") \
        .replace("72kB2z5", "newtok5")
    assert p.received(renewed, 2 * 24 * 3600) == []  # no resubscribing: the link stays as it is
    assert p.resume_token.startswith("newtok5") and p.token_expires.year == 2024 and p.state == "ready"


def test_a_token_that_cannot_be_renewed_warns_once() -> None:
    p = QuickMeetProtocol("wss://x/websocket", {}, resume_token="pat", wall_clock=lambda: 1696417505.309 - 60,
                          ping_after=10**9)
    p.opened(0)
    p.received(CONNECTED, 0)
    p.received(LOGIN_OK, 0)
    due = p.deadline()
    assert due == 60  # a minute after the login at the soonest, however close the expiry
    (warning,) = p.tick(due)
    assert isinstance(warning.error, AuthenticationError) and "cannot renew it" in str(warning.error)
    assert p.tick(due + 1) == []


def test_a_rate_limited_sub_never_spins_the_timer_while_the_link_is_down() -> None:
    p = logged_in()
    p.ping_after = 10**9
    sub_id, _ = p.subscribe("stream-room-messages", "GENERAL")
    p.received(json.dumps(TOO_MANY_SUB), 0)
    p.lost()
    p.opened(1)
    assert p.deadline() == 1 + p.handshake_timeout  # not the sub's retry time, which passes meanwhile
    out = frames(relink(p, 20))
    assert [f["id"] for f in out if f["msg"] == "sub"] == [sub_id]  # sent with the login instead


def test_the_username_comes_from_the_users_record_before_the_login_result() -> None:
    p = QuickMeetProtocol("wss://x/websocket", LOGIN)
    p.opened(0)
    p.received(CONNECTED, 0)
    p.received('{"msg":"added","collection":"users","id":"someone-else","fields":{"username":"eve"}}', 0)
    p.received('{"msg":"added","collection":"users","id":"3Dw26TXWxvi8gwfgM","fields":{"username":"him"}}', 0)
    p.received(LOGIN_OK, 0)
    assert p.username == "him"


def test_params_ejson_cannot_carry_fail_in_the_caller_and_send_nothing() -> None:
    p = logged_in()
    try:
        p.call("x", [object()])
    except TypeError as exc:
        assert "object" in str(exc)
    else:
        raise AssertionError("no TypeError")
    assert not [o for o in p.call("y", [b"\x00"])[1] if not isinstance(o, Send)]


def test_a_restored_checkpoint_fills_from_its_rooms_and_skips_what_was_delivered() -> None:
    p = QuickMeetProtocol("wss://x/websocket", LOGIN, ping_after=10**9)
    p.restore({"GENERAL": 1000}, 1000, {"done-at-1000"})
    p.opened(0)
    (login,) = frames(p.received(CONNECTED, 0))
    (connected,) = p.received(LOGIN_OK.replace('"login1"', f'"{login["id"]}"'), 0)
    assert connected == Connected(resumed=True, detail={"user_id": "3Dw26TXWxvi8gwfgM"})  # from the checkpoint
    sub_id, _ = p.subscribe("stream-room-messages", "GENERAL")  # subscribed once running, as users do
    fill, edits = frames(ready(p, sub_id))
    assert fill["params"] == ["GENERAL", {"$date": 999}]
    done = {"_id": "done-at-1000", "rid": "GENERAL", "ts": {"$date": 1000}}
    new_same_ms = {"_id": "new-at-1000", "rid": "GENERAL", "ts": {"$date": 1000}}
    later = {"_id": "later", "rid": "GENERAL", "ts": {"$date": 2000}}
    out = result(p, fill, [later, new_same_ms, done])
    assert [e.id for e in out] == ["new-at-1000", "later"]
    edited_done = dict(done, msg="edited later", editedAt={"$date": 3000}, _updatedAt={"$date": 3000})
    out = result(p, edits, {"updated": [edited_done, later, dict(done, _updatedAt={"$date": 1001})], "deleted": []})
    assert [(e.id, e.data[0].get("msg")) for e in out] == [("done-at-1000", "edited later")]


def test_deletions_are_fetched_after_a_reconnect_or_reported_without_messages_get() -> None:
    p = logged_in()
    rooms, _ = p.subscribe("stream-room-messages", "GENERAL")
    deletions, _ = p.subscribe("stream-notify-room", "GENERAL/deleteMessage")
    ready(p, rooms, deletions)
    p.received(json.dumps({"msg": "changed", "collection": "stream-room-messages", "id": "id", "fields": {
        "eventName": "GENERAL", "args": [{"_id": "m1", "rid": "GENERAL", "ts": {"$date": 5000}}]}}), 0)
    live = {"msg": "changed", "collection": "stream-notify-room", "id": "id",
            "fields": {"eventName": "GENERAL/deleteMessage", "args": [{"_id": "gone-before"}]}}
    assert len(p.received(json.dumps(live), 0)) == 1
    relink(p, 5)
    fill, edits, ask = frames(ready(p, rooms, deletions, now=5))
    assert (ask["method"], ask["params"]) == ("messages/get", ["GENERAL", {"lastUpdate": {"$date": 4999}}])
    out = result(p, ask, {"updated": [], "deleted": [{"_id": "gone-after", "_deletedAt": {"$date": 6000}},
                                                     {"_id": "gone-before", "_deletedAt": {"$date": 5001}}]}, 5)
    assert [(e.channel, e.data) for e in out] == [("GENERAL/deleteMessage", [{"_id": "gone-after"}])]
    relink(p, 9)
    _, _, ask = frames(ready(p, rooms, deletions, now=9))
    not_found = {"error": 404, "reason": "Method 'messages/get' not found"}
    (gap,) = p.received(json.dumps({"msg": "result", "id": ask["id"], "error": not_found}), 9)
    assert gap.name == GAP and gap.data["channel"] == "GENERAL/deleteMessage" and "not found" in gap.data["reason"]
