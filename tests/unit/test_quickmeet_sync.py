"""Room and subscription changes recovered after a reconnect (protocols/quickmeet-ddp.md sections 9.5 and 10)."""

from __future__ import annotations

import json

from rtsync.events import Event
from rtsync.vendors.quickmeet.protocol import QuickMeetProtocol
from rtsync.vendors.quickmeet.sync import ChangeLog, kind_of
from tests.unit.test_quickmeet_protocol import CONNECTED, LOGIN_OK, frames, logged_in


def room(rid: str, ms: int, name: str = "") -> dict:
    return {"_id": rid, "name": name or rid, "t": "c", "_updatedAt": {"$date": ms}}


def test_only_the_user_change_streams_are_repaired() -> None:
    assert kind_of("stream-notify-user", "uid/rooms-changed") == "rooms-changed"
    assert kind_of("stream-notify-user", "uid/subscriptions-changed") == "subscriptions-changed"
    assert kind_of("stream-notify-user", "uid/notification") is None
    assert kind_of("stream-notify-room", "rid/rooms-changed") is None


def test_baseline_then_what_changed_since() -> None:
    log = ChangeLog("rooms-changed")
    assert (log.method, log.params()) == ("rooms/get", [])
    assert log.answer([room("GENERAL", 100), room("old", 90)]) == []  # the baseline delivers nothing
    assert log.params() == [{"$date": 99}]  # one ms early: `$gt` would skip a change sharing ms 100
    assert log.live(["updated", room("GENERAL", 100, "same ms, new name")])  # a different version: news
    assert not log.live(["updated", room("GENERAL", 100, "same ms, new name")])  # the same again: a repeat
    changes = log.answer({"update": [room("GENERAL", 100, "same ms, new name"), room("new", 120)],
                          "remove": [{"_id": "old", "_deletedAt": {"$date": 130}}, {"_id": "never-known"}]})
    assert changes == [["inserted", room("new", 120)], ["removed", {"_id": "old"}]]
    assert not log.live(["inserted", room("new", 120)])  # the live copy of a fetched change


def test_protocol_asks_for_a_baseline_then_fills_after_a_reconnect() -> None:
    p: QuickMeetProtocol = logged_in()
    sub_id, _ = p.subscribe("stream-notify-user", "3Dw26TXWxvi8gwfgM/rooms-changed")
    (baseline,) = frames(p.received(json.dumps({"msg": "ready", "subs": [sub_id]}), 0)[1:])
    assert (baseline["method"], baseline["params"]) == ("rooms/get", [])
    assert p.received(json.dumps({"msg": "result", "id": baseline["id"], "result": [room("GENERAL", 100)]}), 0) == []
    p.lost()
    p.opened(1)
    (login,) = frames(p.received(CONNECTED, 1))
    sub, sync = frames(p.received(LOGIN_OK.replace('"login1"', f'"{login["id"]}"'), 1))
    assert sub["id"] == sub_id and (sync["method"], sync["params"]) == ("rooms/get", [{"$date": 99}])
    (event,) = p.received(json.dumps({"msg": "result", "id": sync["id"], "result": {
        "update": [room("GENERAL", 150, "renamed")], "remove": []}}), 1)
    assert isinstance(event, Event) and event.name == "stream-notify-user"
    assert event.channel == "3Dw26TXWxvi8gwfgM/rooms-changed" and event.data[0] == "updated"
    assert event.data[1]["name"] == "renamed"


def test_a_failed_sync_is_a_gap() -> None:
    p = logged_in()
    sub_id, _ = p.subscribe("stream-notify-user", "u/subscriptions-changed")
    (baseline,) = frames(p.received(json.dumps({"msg": "ready", "subs": [sub_id]}), 0)[1:])
    (gap,) = p.received(json.dumps({"msg": "result", "id": baseline["id"], "error": {
        "error": 500, "reason": "Internal server error"}}), 0)
    assert gap.name == "rtsync.gap" and "subscriptions/get failed" in gap.data["reason"]
