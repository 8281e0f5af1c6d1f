"""QuickMeet's DDP protocol on the reference's exact frames (protocols/quickmeet-ddp.md sections 3-9)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from rtsync.errors import (
    AuthenticationError,
    CallError,
    ConnectionLost,
    ProtocolError,
    RateLimited,
    StaleConnection,
    SubscriptionError,
)
from rtsync.events import GAP, Event
from rtsync.sansio import Connected, Fail, Reply, Report, Send
from rtsync.vendors.quickmeet.protocol import (
    QuickMeetProtocol,
    call_error,
    decode_ejson,
)

DIGEST = "52c53f4abbfe42e1ccd4fd9d864453ee57f8efbd4c9ecec6d88bd83d7f7a9c02"
LOGIN = {"user": {"username": "him"}, "password": {"digest": DIGEST, "algorithm": "sha-256"}}
CONNECTED = '{"msg":"connected","session":"m3Gc2kfQWd8pWZN8X"}'
LOGIN_OK = ('{"msg":"result","id":"login1","result":{"id":"3Dw26TXWxvi8gwfgM","token":"72kB2z5SpnWG-vOSKaAXku74PV8'
            '51pVOVAoC67FpFEI","tokenExpires":{"$date":1696417505309},"type":"password"}}')
USER_NOT_FOUND = ('{"msg":"result","id":"login1","error":{"isClientSafe":true,"error":403,"reason":"User not found",'
                  '"message":"User not found [403]","errorType":"Meteor.Error"}}')
LOGGED_OUT = ('{"msg":"result","id":"login1","error":{"isClientSafe":true,"error":403,"reason":"You\'ve been logged '
              'out by the server. Please log in again.","message":"You\'ve been logged out by the server. Please log '
              'in again. [403]","errorType":"Meteor.Error"}}')
TOO_MANY = ('{"msg":"result","id":"login1","error":{"isClientSafe":true,"error":"too-many-requests","reason":"Error, '
            'too many requests. Please slow down. You must wait 7 seconds before trying again.","details":'
            '{"timeToReset":6432},"message":"... [too-many-requests]","errorType":"Meteor.Error"}}')
ROOM_MESSAGE = ('{"msg":"changed","collection":"stream-room-messages","id":"id","fields":{"eventName":"GENERAL","args":'
                '[{"_id":"357Cde8axgiCYd3kY","rid":"GENERAL","msg":"rbot text here","ts":{"$date":1540756719398},"u":'
                '{"_id":"vNW5eZW5Ma823XNt3","username":"nicolas.c","name":"C Nicolas"},"mentions":[],"channels":[],'
                '"_updatedAt":{"$date":1540756719402}}]}}')


def frames(outputs) -> list:
    return [json.loads(o.text) for o in outputs if isinstance(o, Send)]


def logged_in(resume: str = None) -> QuickMeetProtocol:
    p = QuickMeetProtocol("wss://x/websocket", LOGIN, resume_token=resume)
    p.opened(0)
    p.received(CONNECTED, 0)
    p.received(LOGIN_OK if not resume else LOGIN_OK.replace('"login1"', '"login1"'), 0)
    return p


def test_connect_first_then_password_login_with_the_digest() -> None:
    p = QuickMeetProtocol("wss://x/websocket", LOGIN)
    assert frames(p.opened(0)) == [{"msg": "connect", "version": "1", "support": ["1"]}]
    p.received('{"server_id":"0"}', 0)  # ignored, no msg
    (login,) = frames(p.received(CONNECTED, 0))
    assert login == {"msg": "method", "id": "login1", "method": "login", "params": [LOGIN]}
    out = p.received(LOGIN_OK, 0)
    assert isinstance(out[-1], Connected) and p.resume_token.startswith("72kB2z") and p.user_id == "3Dw26TXWxvi8gwfgM"
    assert p.token_expires == datetime.fromtimestamp(1696417505.309, tz=timezone.utc)


def test_pings_answered_with_their_id() -> None:
    p = QuickMeetProtocol("wss://x/websocket", LOGIN)
    assert frames(p.received('{"msg":"ping","id":"abc"}', 0)) == [{"msg": "pong", "id": "abc"}]
    assert frames(p.received('{"msg":"ping"}', 0)) == [{"msg": "pong"}]


def test_resume_token_first_then_the_password_when_refused() -> None:
    p = QuickMeetProtocol("wss://x/websocket", LOGIN, resume_token="tok")
    p.opened(0)
    (login,) = frames(p.received(CONNECTED, 0))
    assert login["params"] == [{"resume": "tok"}]
    (again,) = frames(p.received(LOGGED_OUT, 0))
    assert again["params"] == [LOGIN]
    (fail,) = p.received(USER_NOT_FOUND.replace('"login1"', f'"{again["id"]}"'), 0)
    assert isinstance(fail, Fail) and isinstance(fail.error, AuthenticationError) and "[403]" in str(fail.error)


def test_login_rate_limit_waits_time_to_reset() -> None:
    p = QuickMeetProtocol("wss://x/websocket", LOGIN)
    p.opened(0)
    p.received(CONNECTED, 0)
    (fail,) = p.received(TOO_MANY, 0)
    assert isinstance(fail.error, RateLimited) and fail.error.retry_after == pytest.approx(6.432)


def test_calls_wait_for_the_login_and_resolve_by_id() -> None:
    p = QuickMeetProtocol("wss://x/websocket", LOGIN)
    p.opened(0)
    call_id, out = p.call("rooms/get", [])
    assert out == []  # queued until logged in
    (login,) = frames(p.received(CONNECTED, 0))
    after = frames(p.received(LOGIN_OK.replace('"login1"', f'"{login["id"]}"'), 0))
    assert {"msg": "method", "id": call_id, "method": "rooms/get", "params": []} in after
    (reply,) = p.received(json.dumps({"msg": "result", "id": call_id, "result": [{"_id": "GENERAL"}]}), 0)
    assert reply == Reply(call_id, result=[{"_id": "GENERAL"}])
    call_id, _ = p.call("x", [])
    assert p.received(json.dumps({"msg": "result", "id": call_id}), 0) == [Reply(call_id, result=None)]


def test_call_errors_keep_the_servers_fields_and_mangled_codes() -> None:
    err = call_error("x", {"isClientSafe": True, "error": 404, "reason": "Method 'x' not found",
                           "message": "Method 'x' not found [404]", "errorType": "Meteor.Error"})
    assert isinstance(err, CallError) and (err.error, err.reason) == (404, "Method 'x' not found")
    mangled = call_error("login", {"error": "User not found [403]", "message": "User not found [User not found [403]]"})
    assert mangled.error == 403
    assert isinstance(call_error("x", {"error": "error-too-many-requests", "details": {"seconds": 3}}), RateLimited)


def test_subscribe_ready_nosub_and_routing_on_collection_and_event_name() -> None:
    p = logged_in()
    sub_id, out = p.subscribe("stream-room-messages", "GENERAL")
    assert frames(out) == [{"msg": "sub", "id": sub_id, "name": "stream-room-messages",
                            "params": ["GENERAL", {"useCollection": False, "args": []}]}]
    assert Reply(sub_id, sub_id) in p.received(json.dumps({"msg": "ready", "subs": [sub_id]}), 0)
    (e,) = p.received(ROOM_MESSAGE, 0)
    assert (e.name, e.channel, e.id) == ("stream-room-messages", "GENERAL", "357Cde8axgiCYd3kY")
    assert e.data[0]["ts"] == datetime.fromtimestamp(1540756719.398, tz=timezone.utc)
    assert p.received(ROOM_MESSAGE, 0) == []  # the same version again: dropped
    bad_id, _ = p.subscribe("stream-room-messages", "private")
    nosub = {"msg": "nosub", "id": bad_id, "error": {"isClientSafe": True, "error": "not-allowed",
                                                     "message": "[not-allowed]", "errorType": "Meteor.Error"}}
    reply, report = p.received(json.dumps(nosub), 0)
    assert isinstance(reply.error, SubscriptionError) and "not-allowed" in str(reply.error)
    assert isinstance(report, Report)  # callbacks hear of it too
    with pytest.raises(SubscriptionError):
        p.subscribe("stream-notify-room", "")


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_live_room_message_keeps_its_frame_as_raw(fast_path: bool) -> None:
    # Event.raw is the frame as received; live room messages once carried None unless room details followed.
    p = logged_in()
    p.fast_path = fast_path
    sub_id, _ = p.subscribe("stream-room-messages", "GENERAL")
    p.received(json.dumps({"msg": "ready", "subs": [sub_id]}), 0)
    (e,) = p.received(ROOM_MESSAGE, 0)
    assert e.raw == ROOM_MESSAGE
    odd = ROOM_MESSAGE.replace('"mentions":[]', '"mentions":[{"$binary":"AA=="}]')  # not for the fast path
    (e,) = p.received(odd.replace("357Cde8axgiCYd3kY", "other"), 0)
    assert e.raw == odd.replace("357Cde8axgiCYd3kY", "other")


def test_reconnect_relogs_in_with_the_token_resubscribes_same_ids_and_fills_gaps_in_order() -> None:
    p = logged_in()
    sub_id, _ = p.subscribe("stream-room-messages", "GENERAL")
    p.received(json.dumps({"msg": "ready", "subs": [sub_id]}), 0)
    p.received(ROOM_MESSAGE, 0)
    p.lost()
    p.opened(10)
    (login,) = frames(p.received(CONNECTED, 10))
    assert login["params"] == [{"resume": p.resume_token}]
    after = frames(p.received(LOGIN_OK.replace('"login1"', f'"{login["id"]}"'), 10))
    assert after == [{"msg": "sub", "id": sub_id, "name": "stream-room-messages",
                      "params": ["GENERAL", {"useCollection": False, "args": []}]}]
    fill, edits = frames(p.received(json.dumps({"msg": "ready", "subs": [sub_id]}), 10))  # filled once subscribed
    # and older messages edited meanwhile, from the same point
    assert (edits["method"], edits["params"]) == ("messages/get", ["GENERAL", {"lastUpdate": {"$date": 1540756719397}}])
    # Everything after the last seen message, from one millisecond earlier (the server's `ts > start`).
    assert fill["method"] == "loadMissedMessages" and fill["params"] == ["GENERAL", {"$date": 1540756719397}]
    live = ROOM_MESSAGE.replace("357Cde8axgiCYd3kY", "live1").replace("1540756719398", "1540756719500")
    assert p.received(live, 10) == []  # held until the gap is filled
    missed = {"_id": "missed1", "rid": "GENERAL", "msg": "while away", "ts": {"$date": 1540756719450},
              "_updatedAt": {"$date": 1540756719450}}
    same_ms = {"_id": "missed0", "rid": "GENERAL", "msg": "same ms as the last seen", "ts": {"$date": 1540756719398},
               "_updatedAt": {"$date": 1540756719398}}
    old = {"_id": "357Cde8axgiCYd3kY", "rid": "GENERAL", "msg": "rbot text here", "ts": {"$date": 1540756719398},
           "_updatedAt": {"$date": 1540756719402}}
    out = p.received(json.dumps({"msg": "result", "id": fill["id"], "result": [missed, same_ms, old]}), 10)
    assert [e.id for e in out if isinstance(e, Event)] == ["missed0", "missed1", "live1"]


def test_a_server_without_load_missed_messages_gets_load_history_pages() -> None:
    p = logged_in()
    fill = reconnected_to_fill(p)
    not_found = {"isClientSafe": True, "error": 404, "reason": "Method 'loadMissedMessages' not found",
                 "message": "Method 'loadMissedMessages' not found [404]", "errorType": "Meteor.Error"}
    (history,) = frames(p.received(json.dumps({"msg": "result", "id": fill["id"], "error": not_found}), 1))
    assert history["method"] == "loadHistory" and history["params"] == ["GENERAL", None, 50, {"$date": 1540756719398}]
    assert not p.missed_method  # and later fills go straight to loadHistory


def test_a_fill_never_answered_ends_with_a_gap_and_the_held_messages() -> None:
    p = logged_in()
    p.fill_timeout, p.ping_after = 30, 1000
    reconnected_to_fill(p)  # at t=1; the answer never comes
    live = ROOM_MESSAGE.replace("357Cde8axgiCYd3kY", "live1").replace("1540756719398", "1540756719500")
    assert p.received(live, 2) == []
    assert p.deadline() == 31
    gap, held = p.tick(31)
    assert gap.name == GAP and "did not answer the gap fill within 30 s" in gap.data["reason"]
    assert held.id == "live1"
    assert p.received(live.replace("live1", "live2"), 32)[0].id == "live2"  # no longer held


def reconnected_to_fill(p: QuickMeetProtocol) -> dict:
    """Seen ROOM_MESSAGE in GENERAL, lost the link, logged in again: the first loadHistory frame."""
    sub_id, _ = p.subscribe("stream-room-messages", "GENERAL")
    p.received(json.dumps({"msg": "ready", "subs": [sub_id]}), 0)
    p.received(ROOM_MESSAGE, 0)
    p.lost()
    p.opened(1)
    (login,) = frames(p.received(CONNECTED, 1))
    p.received(LOGIN_OK.replace('"login1"', f'"{login["id"]}"'), 1)
    fill, _edits = frames(p.received(json.dumps({"msg": "ready", "subs": [sub_id]}), 1))
    return fill


def test_history_without_access_is_a_gap_event() -> None:
    p = logged_in()
    history = reconnected_to_fill(p)
    (gap,) = p.received(json.dumps({"msg": "result", "id": history["id"], "result": False}), 1)
    assert gap.name == GAP and gap.channel == "GENERAL" and "no access" in gap.data["reason"]


def test_own_liveness_ping_then_stale() -> None:
    p = logged_in()
    p.ping_after, p.dead_after = 25, 15
    p.opened(0)
    (login,) = frames(p.received(CONNECTED, 0))
    p.received(LOGIN_OK.replace('"login1"', f'"{login["id"]}"'), 0)
    assert p.deadline() == 25
    (ping,) = frames(p.tick(25))
    assert ping["msg"] == "ping" and "id" in ping
    assert p.deadline() == 40
    (fail,) = p.tick(40)
    assert isinstance(fail.error, StaleConnection)


def test_failed_version_and_garbage() -> None:
    p = QuickMeetProtocol("wss://x/websocket", LOGIN)
    (fail,) = p.received('{"msg":"failed","version":"1"}', 0)
    assert isinstance(fail.error, ProtocolError) and not fail.error.retryable  # the same server answers the same
    assert "DDP version 1" in str(fail.error) and "url" in str(fail.error)
    assert isinstance(p.received("{oops", 0)[0], Report)
    assert p.received('{"msg":"updated","methods":["m1"]}', 0) == []


def test_ejson_dates_only_for_exact_objects() -> None:
    assert decode_ejson({"$date": 0}) == datetime(1970, 1, 1, tzinfo=timezone.utc)
    assert decode_ejson({"$date": 1, "x": 2}) == {"$date": 1, "x": 2}
    assert decode_ejson({"$escape": {"$date": 5}}) == {"$date": 5}


def test_a_session_that_never_completes_is_dropped() -> None:
    p = QuickMeetProtocol("wss://x/websocket", LOGIN, ping_after=25, dead_after=15, handshake_timeout=10)
    p.opened(0)
    assert p.deadline() == 10
    p.heard(9)  # pongs keep coming, but no connected / login result
    (fail,) = p.tick(10)
    assert isinstance(fail.error, ConnectionLost) and "connect and login" in str(fail.error)


def test_gap_fill_pages_through_messages_sharing_a_millisecond() -> None:
    # Rocket.Chat's loadHistory returns `ts < end` newest first, in whole milliseconds: three messages
    # share the page boundary's millisecond and one shares the last seen one. None may be skipped.
    p = logged_in()
    p.history_page, p.missed_method = 3, False
    history = reconnected_to_fill(p)  # last seen: ROOM_MESSAGE, ts 1540756719398

    def msg(n: int, ts: int) -> dict:
        return {"_id": f"m{n}", "rid": "GENERAL", "msg": str(n), "ts": {"$date": ts}, "_updatedAt": {"$date": ts}}

    seen = json.loads(ROOM_MESSAGE)["fields"]["args"][0]
    stored = [seen, msg(1, 1540756719398), msg(2, 1540756719399), msg(3, 1540756719400), msg(4, 1540756719400),
              msg(5, 1540756719401), msg(6, 1540756719401)]

    def load(end: object) -> str:
        older = [m for m in stored if end is None or m["ts"]["$date"] < end["$date"]]  # type: ignore[index]
        return json.dumps({"msg": "result", "id": history["id"],
                           "result": {"messages": list(reversed(older))[:3], "unreadNotLoaded": 0}})

    assert history["params"][1] is None
    (history,) = frames(p.received(load(None), 1))  # m6, m5, m4: full, nothing known yet
    assert history["params"][1] == {"$date": 1540756719401}  # one past the oldest: m3 shares m4's millisecond
    (history,) = frames(p.received(load(history["params"][1]), 1))  # m4 again, m3, m2
    assert history["params"][1] == {"$date": 1540756719400}
    out = p.received(load(history["params"][1]), 1)  # m2, m1 and the seen message: known ground reached
    assert [e.id for e in out] == ["m1", "m2", "m3", "m4", "m5", "m6"]


def test_a_full_page_within_one_millisecond_is_a_gap_not_a_loop() -> None:
    p = logged_in()
    p.history_page, p.missed_method = 2, False
    history = reconnected_to_fill(p)
    same = [{"_id": f"s{n}", "rid": "GENERAL", "ts": {"$date": 1540756719500}} for n in (2, 1)]
    gap, *out = p.received(json.dumps({"msg": "result", "id": history["id"], "result": {"messages": same}}), 1)
    assert gap.name == GAP and "share one millisecond" in gap.data["reason"]
    assert [e.id for e in out] == ["s1", "s2"]  # what was found is still delivered, oldest first


# Hostile frames the fuzzer recorded: each is one Report (or the call's Reply carries the error), tokens
# never quoted, and the next good message still arrives.
def good_message(n: int) -> str:
    return ROOM_MESSAGE.replace("357Cde8axgiCYd3kY", f"good{n}").replace("1540756719398", str(1540756719398 + n))


def assert_alive(p: QuickMeetProtocol, n: int = 1) -> None:
    (event,) = p.received(good_message(n), 9)
    assert isinstance(event, Event) and event.id == f"good{n}"


def room_message_with(**fields) -> str:
    message = json.loads(ROOM_MESSAGE)
    message["fields"]["args"][0].update(fields)
    return json.dumps(message)


@pytest.mark.parametrize("date", [1e20, -1e20, float("nan"), float("inf"), "2024-01-01", [1540756719398], True, {}])
def test_recorded_ejson_dates_that_are_not_dates(date: object) -> None:
    with pytest.raises(ProtocolError, match="EJSON date"):
        decode_ejson({"$date": date})
    p = logged_in()
    for frame in (room_message_with(ts={"$date": date}), room_message_with(_updatedAt={"$date": date}),
                  room_message_with(edited={"at": {"$date": date}})):
        (report,) = p.received(frame, 1)
        assert isinstance(report, Report) and isinstance(report.error, ProtocolError), report
        assert "date" in str(report.error) and len(str(report.error)) < 240
    assert_alive(p)


def test_a_call_whose_result_has_a_bad_date_gets_its_reply_with_the_error() -> None:
    p = logged_in()
    call_id, _ = p.call("getRoomInfo", [])
    (reply,) = p.received(json.dumps({"msg": "result", "id": call_id, "result": {"ts": {"$date": 1e20}}}), 1)
    assert isinstance(reply, Reply) and reply.key == call_id and isinstance(reply.error, ProtocolError)
    assert_alive(p)


def test_a_login_answer_with_ill_typed_parts_logs_in_and_says_what_was_ignored() -> None:
    p = QuickMeetProtocol("wss://x/websocket", LOGIN, resume_token="old-resume-token")
    p.opened(0)
    p.received(CONNECTED, 0)
    out = p.received(json.dumps({"msg": "result", "id": "login1",
                                 "result": {"id": ["u"], "token": 5, "tokenExpires": {"$date": float("nan")}}}), 0)
    assert isinstance(out[0], Report) and "token is a int" in str(out[0].error)
    assert isinstance(out[-1], Connected) and p.resume_token == "old-resume-token" and p.token_expires is None
    assert "old-resume-token" not in str(out[0].error)


@pytest.mark.parametrize("frame, says", [
    ('{"msg":"changed","fields":' + "[" * 1000 + "]" * 1000 + "}", "nested too deeply"),
    ('{"msg":"changed","collection":"stream-room-messages","fields":["GENERAL"]}', "fields is a list"),
    ('{"msg":"changed","collection":"stream-room-messages","fields":{"eventName":"GENERAL","args":{"0":{}}}}',
     "args is a dict"),
    ('{"msg":"changed","collection":"stream-room-messages","fields":{"eventName":"GENERAL","args":7}}',
     "args is a int"),
    ('{"msg":"changed","collection":"stream-notify-user","fields":{"eventName":["u1/x"],"args":[]}}', "eventName"),
    ('{"msg":"ready","subs":5}', "subs is a int"),
    ('{"msg":["result"],"id":"login1"}', "msg is a list"),
    ('{"msg":"result","id":["login1"],"result":{"token":"abc-secret-value"}}', "id is a list"),
])
def test_recorded_ill_typed_frames_are_one_report_each(frame: str, says: str) -> None:
    p = logged_in()
    (report,) = p.received(frame, 1)
    assert isinstance(report, Report) and says in str(report.error), report
    assert "abc-secret" not in str(report.error) and "72kB2z" not in str(report.error)
    assert_alive(p)


def test_nosub_and_login_errors_of_any_shape_are_rtsync_errors() -> None:
    p = logged_in()
    sub_id, _ = p.subscribe("stream-room-messages", "GENERAL")
    out = p.received(json.dumps({"msg": "nosub", "id": sub_id, "error": {"error": ["x"], "reason": 42}}), 1)
    assert [type(o) for o in out] == [Reply, Report] and isinstance(out[1].error, SubscriptionError)
    for error in (["x"], "²", "error [²]", {"error": {"a": 1}, "reason": [1]}, 7):
        p2 = QuickMeetProtocol("wss://x/websocket", LOGIN, resume_token="tok")
        p2.opened(0)
        p2.received(CONNECTED, 0)
        out = p2.received(json.dumps({"msg": "result", "id": "login1", "error": error}), 0)
        assert all(isinstance(o, (Fail, Send)) for o in out), out  # refused (or the password tried next)
    limited = call_error("x", {"error": "too-many-requests", "details": {"timeToReset": float("nan")}})
    assert isinstance(limited, RateLimited) and limited.retry_after is None


def test_a_gap_fill_answer_with_a_bad_message_delivers_its_siblings() -> None:
    p = logged_in()
    p.subscribe("stream-room-messages", "GENERAL")
    p.received('{"msg":"ready","subs":["s2"]}', 0)
    p.received(ROOM_MESSAGE, 0)
    p.lost()
    p.opened(1)
    p.received(CONNECTED, 1)
    p.received(LOGIN_OK.replace("login1", "login4"), 1)  # login3 + the room's starting point, i3
    out = p.received('{"msg":"ready","subs":["s2"]}', 1)
    (fill,) = [json.loads(o.text) for o in out if isinstance(o, Send) and "loadMissedMessages" in o.text]
    batch = [{"_id": "n2", "rid": "GENERAL", "ts": {"$date": 1540756719500}},
             {"_id": ["bad"], "rid": "GENERAL", "ts": {"$date": 1540756719450}},
             {"_id": "bad2", "rid": "GENERAL", "ts": {"$date": 1e20}},
             {"_id": "n1", "rid": "GENERAL", "ts": {"$date": 1540756719400}}]
    out = p.received(json.dumps({"msg": "result", "id": fill["id"], "result": batch}), 2)
    assert [o.id for o in out if isinstance(o, Event)] == ["n1", "n2"]
    (report,) = [o for o in out if isinstance(o, Report)]
    assert "2 of 4 messages" in str(report.error)
