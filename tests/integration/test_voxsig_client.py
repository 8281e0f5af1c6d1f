"""VoxsigClient against the local ActionCable server."""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Dict, Iterator, List

import pytest

import rtsync
from rtsync.testing.voxsig import VoxsigServer
from tests.conftest import started, wait_for, watch
from tests.voxsig_seed import EVENTS, materialize

FAST = rtsync.Backoff(base=0.05, cap=0.2)


@pytest.fixture
def server() -> Iterator[VoxsigServer]:
    with VoxsigServer(ping_interval=0.2) as s:
        yield s


def agent(server: VoxsigServer, **kw) -> rtsync.VoxsigClient:
    kw.setdefault("backoff", FAST)
    kw.setdefault("ping_timeout", 1.0)
    return rtsync.VoxsigClient("good-user-token", account_id=1, user_id=1, url=server.url, **kw)



def test_agent_receives_account_and_token_streams(server: VoxsigServer) -> None:
    c = agent(server)
    got, up = watch(c, "message.*")
    typing, _ = watch(c, "conversation.typing_on")
    with c:
        assert up.wait(5)
        server.publish("account_1", "message.created", {"id": 1, "content": "hello"})
        server.publish("good-user-token", "conversation.typing_on", {"conversation": {"id": 9}})
        server.publish("account_2", "message.created", {"id": 2})  # not ours
        assert wait_for(lambda: got and typing)
        time.sleep(0.2)
    assert [(e.name, e.data["id"]) for e in got] == [("message.created", 1)]
    assert got[0].typed.content == "hello" and typing[0].typed.conversation.id == 9


def test_contact_token_alone(server: VoxsigServer) -> None:
    c = rtsync.VoxsigClient("good-contact-token", url=server.url, backoff=FAST)
    got, up = watch(c, "message.created")
    with c:
        assert up.wait(5)
        assert server.subscribers("account_1") == 0 and server.subscribers("good-contact-token") == 1
        server.publish("good-contact-token", "message.created", {"id": 3})
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
        server.publish("account_1", "message.created", {"id": 1})
        assert wait_for(lambda: got)
        time.sleep(0.2)
    assert len(got) == 1
    identifiers = {cmd["identifier"] for cmd in server.commands}
    assert len(identifiers) == 1


def test_invalid_token_ends_with_a_clear_auth_error(server: VoxsigServer) -> None:
    c = rtsync.VoxsigClient("bad-token", account_id=1, user_id=1, url=server.url, backoff=FAST, confirm_timeout=0.5)
    t0 = time.monotonic()
    with pytest.raises(rtsync.AuthenticationError, match="never confirmed"):
        c.run_forever()
    assert time.monotonic() - t0 < 5
    subscribes = [cmd for cmd in server.commands if cmd["command"] == "subscribe"]
    assert 2 <= len(subscribes) <= 8  # resent a few times, then gave up: no endless loop


def test_wrong_account_is_silence_too(server: VoxsigServer) -> None:
    c = rtsync.VoxsigClient("good-user-token", account_id=2, user_id=1, url=server.url, backoff=FAST, confirm_timeout=0.3)
    with pytest.raises(rtsync.AuthenticationError):
        c.run_forever()


def test_reject_subscription_is_final(server: VoxsigServer) -> None:
    server.reject_mode = True
    c = rtsync.VoxsigClient("bad-token", url=server.url, backoff=FAST)
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
        server.publish("account_1", "message.created", {"id": 1})
        assert wait_for(lambda: any(e.name == "message.created" for e in got))
        server.drop()
        assert wait_for(lambda: sum(e.name == "rtsync.connected" for e in got) == 2)
    bad = rtsync.VoxsigClient("bad-secret-token", account_id=1, user_id=1, url=server.url, backoff=FAST, confirm_timeout=0.2)
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


# Old-shape RoomChannel (reference section 9.2): the token stream is live before the lookups and the confirm.
def subscribes(server: VoxsigServer) -> int:
    return sum(cmd["command"] == "subscribe" for cmd in server.commands)


def ids(events: List[rtsync.Event]) -> List[Any]:
    return [e.data["id"] for e in events if e.name == "message.created"]


def test_old_shape_delivers_what_precedes_the_confirm_once_and_in_order(server: VoxsigServer) -> None:
    server.old_shape = server.hold_lookups = True
    c = agent(server)
    got, up = watch(c)
    with c:
        assert wait_for(lambda: server.parked == 1 and server.subscribers("good-user-token") == 1)
        assert wait_for(lambda: subscribes(server) >= 2)  # resent while unconfirmed: a no-op
        assert server.publish("account_1", "message.created", {"id": "lost"}) == 0  # needs the lookups
        for i in range(3):
            assert server.publish("good-user-token", "message.created", {"id": i}) == 1
        assert wait_for(lambda: len(ids(got)) == 3)
        assert not up.is_set() and not c.subscribed
        server.hold_lookups = False
        assert server.release_lookups() == 1
        assert up.wait(5)
        for i in range(3, 6):
            server.publish("good-user-token", "message.created", {"id": i})
        server.publish("account_1", "message.created", {"id": "end"})
        assert wait_for(lambda: "end" in ids(got))
        assert wait_for(lambda: any(e.name == "presence.update" for e in got))
    assert ids(got) == [0, 1, 2, 3, 4, 5, "end"]
    names = [e.name for e in got]
    assert names.index("rtsync.connected") == 3  # after the early three, as they arrived


def test_old_shape_wrong_account_leaks_the_token_stream_without_a_confirm(server: VoxsigServer) -> None:
    server.old_shape = True
    c = rtsync.VoxsigClient("good-user-token", account_id=2, user_id=1, url=server.url, backoff=FAST, confirm_timeout=30)
    got, up = watch(c)
    with c:
        assert wait_for(lambda: server.subscribers("good-user-token") == 1 and subscribes(server) >= 2)
        assert server.subscribers("account_2") == 0
        for i in range(3):
            server.publish("good-user-token", "message.created", {"id": i})
        server.publish("good-user-token", "message.created", {"id": "end"})
        assert wait_for(lambda: "end" in ids(got))
        assert not up.is_set() and not c.subscribed
    assert ids(got) == [0, 1, 2, "end"]
    assert not any(cmd["command"] == "message" for cmd in server.commands)  # no presence unconfirmed


def test_old_shape_invalid_token_still_ends_with_the_clear_auth_error(server: VoxsigServer) -> None:
    server.old_shape = True
    c = rtsync.VoxsigClient("bad-token", account_id=1, user_id=1, url=server.url, backoff=FAST, confirm_timeout=1.0)
    c.start()
    try:
        # The bogus token's stream is live and unconfirmed: broadcast until one reaches it.
        assert wait_for(lambda: server.publish("bad-token", "message.created", {"id": 1}) >= 1)
        assert wait_for(lambda: c.error is not None)
    finally:
        c.stop()
    assert isinstance(c.error, rtsync.AuthenticationError) and "never confirmed" in str(c.error)
    assert 2 <= subscribes(server) <= 8 and server.connections_total == 2


def test_old_shape_with_good_ids_is_an_ordinary_subscription(server: VoxsigServer) -> None:
    server.old_shape = True
    c = agent(server)
    try:
        got = started(c)
        server.publish("account_1", "message.created", {"id": 1})
        server.publish("good-user-token", "message.created", {"id": 2})
        assert wait_for(lambda: len(ids(got)) == 2 and any(e.name == "presence.update" for e in got))
    finally:
        c.stop()
    assert ids(got) == [1, 2]


def test_old_shape_with_reject_mode_rejects(server: VoxsigServer) -> None:
    server.old_shape = server.reject_mode = True
    c = rtsync.VoxsigClient("good-user-token", account_id=2, user_id=1, url=server.url, backoff=FAST)
    with pytest.raises(rtsync.AuthenticationError, match="rejected"):
        c.run_forever()
    assert server.connections_total == 1


def test_a_callback_may_call_the_client_while_the_queue_is_full(server: VoxsigServer) -> None:
    # The protocol lock guards protocol state only: with a tiny queue the reader once blocked on it
    # while holding the lock, and a callback calling update_presence() waited for it: 1 of 31 ran.
    c = agent(server, queue_size=2)
    done: List[Any] = []

    def on_message(event: rtsync.Event) -> None:
        c.update_presence()
        done.append(event.data["id"])

    c.on("message.created", on_message)
    try:
        started(c)
        for i in range(31):
            server.publish("good-user-token", "message.created", {"id": i})
        assert wait_for(lambda: len(done) == 31, timeout=8), len(done)
    finally:
        c.stop()
    assert done == list(range(31))


# contact.merged (reference section 9.4): Chatwoot's widget reconnects with the token the event carries.
def contact(server: VoxsigServer, token: Any = "good-contact-token", **kw: Any) -> rtsync.VoxsigClient:
    kw.setdefault("backoff", FAST)
    kw.setdefault("ping_timeout", 1.0)
    return rtsync.VoxsigClient(token, url=server.url, **kw)


def test_contact_merged_switches_to_the_new_token_without_loss(server: VoxsigServer,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    c = contact(server)
    try:
        got = started(c)
        server.publish("good-contact-token", "message.created", {"id": 1})
        assert server.merge_contact("good-contact-token", "merged-contact-token-77") == 1
        # Make-before-break: the new subscription is confirmed on the same connection, then the old one goes.
        assert wait_for(lambda: any(cmd["command"] == "unsubscribe" for cmd in server.commands))
        assert server.subscribers("merged-contact-token-77") == 1 and server.connections_total == 1
        assert c.pubsub_token == "merged-contact-token-77" and c.connected
        server.publish("merged-contact-token-77", "message.created", {"id": 2})
        assert wait_for(lambda: len(ids(got)) == 2)
        # The old token no longer works; a reconnect uses the new one.
        server.drop()
        assert wait_for(lambda: sum(e.name == "rtsync.connected" for e in got) == 2)
        server.publish("merged-contact-token-77", "message.created", {"id": 3})
        assert wait_for(lambda: len(ids(got)) == 3)
    finally:
        c.stop()
    assert ids(got) == [1, 2, 3]
    names = [e.name for e in got if not e.name.startswith("rtsync.")]
    assert names.count("contact.merged") == 1 and "rtsync.error" not in [e.name for e in got]
    merged = next(e for e in got if e.name == "contact.merged")
    assert merged.data["pubsub_token"] == "***" and merged.typed.id == 7
    unsubscribed = next(cmd for cmd in server.commands if cmd["command"] == "unsubscribe")
    assert "good-contact-token" in unsubscribed["identifier"]
    presence = [json.loads(cmd["identifier"])["pubsub_token"] for cmd in server.commands
                if cmd["command"] == "message"]
    assert presence[0] == "good-contact-token" and presence[-1] == "merged-contact-token-77"
    text = "\n".join(r.getMessage() for r in caplog.records) + repr(got) + repr(c)
    assert "merged-contact-token-77" not in text and "good-contact-token" not in text


def test_contact_merged_overrides_a_callable_that_still_returns_the_old_token(server: VoxsigServer) -> None:
    calls: List[str] = []

    def vault() -> str:
        calls.append("good-contact-token")
        return "good-contact-token"

    c = contact(server, vault)
    assert c.pubsub_token is None
    try:
        got = started(c)
        server.merge_contact("good-contact-token", "merged-token-from-merge")
        assert wait_for(lambda: c.pubsub_token == "merged-token-from-merge" and server.subscribers(
            "merged-token-from-merge") == 1)
        server.drop()
        assert wait_for(lambda: sum(e.name == "rtsync.connected" for e in got) == 2)
    finally:
        c.stop()
    assert len(calls) == 2 and c.error is None


def test_an_agent_never_follows_contact_merged(server: VoxsigServer) -> None:
    # For an agent, contact.merged on the account stream is news about a contact, not a new token for us.
    c = agent(server)
    try:
        got = started(c)
        server.publish("account_1", "contact.merged", {"id": 7, "pubsub_token": "someone-elses-token"})
        server.publish("account_1", "message.created", {"id": 1})
        assert wait_for(lambda: ids(got) == [1])
    finally:
        c.stop()
    assert c.pubsub_token == "good-user-token"
    assert not any(cmd["command"] == "unsubscribe" for cmd in server.commands)
    assert next(e for e in got if e.name == "contact.merged").data["pubsub_token"] == "***"


def test_pubsub_token_from_a_callable_is_read_before_each_attempt(server: VoxsigServer) -> None:
    tokens = iter(["bad-rotated-token", "good-user-token", "good-user-token"])
    c = rtsync.VoxsigClient(lambda: next(tokens), account_id=1, user_id=1, url=server.url, backoff=FAST,
                            confirm_timeout=0.3, ping_timeout=1.0)
    try:
        got = started(c)  # the first (silent) attempt times out, the second token is confirmed
        server.publish("account_1", "message.created", {"id": 1})
        assert wait_for(lambda: ids(got) == [1])
    finally:
        c.stop()
    subscribed_with = [json.loads(cmd["identifier"])["pubsub_token"] for cmd in server.commands
                       if cmd["command"] == "subscribe"]
    assert subscribed_with[0] == "bad-rotated-token" and subscribed_with[-1] == "good-user-token"


def test_a_callable_token_that_returns_nothing_ends_the_client_clearly(server: VoxsigServer) -> None:
    c = rtsync.VoxsigClient(lambda: "", url=server.url, backoff=FAST)
    with pytest.raises(rtsync.ConfigurationError, match="pubsub_token must be a non-empty string"):
        c.run_forever()
    with pytest.raises(rtsync.ConfigurationError, match="pubsub_token"):
        rtsync.VoxsigClient("  ", url=server.url)


def test_perform_runs_a_channel_action(server: VoxsigServer) -> None:
    c = agent(server, presence_interval=60)
    got, up = watch(c, "presence.update")
    with c:
        c.perform("update_presence")  # waits for the subscription, then sends
        assert wait_for(lambda: len(got) >= 2)  # the automatic one after confirm, and ours
        c.perform("typing_status", typing_status="on", is_private=False, note="ü")
        assert wait_for(lambda: any(data.get("action") == "typing_status" for _, data in server.actions))
        with pytest.raises(rtsync.ConfigurationError, match="'action'"):
            c.perform("x", action="y")
        with pytest.raises(rtsync.ConfigurationError, match="JSON"):
            c.perform("x", when=object())
    identifier, data = next(a for a in server.actions if a[1].get("action") == "typing_status")
    assert data == {"action": "typing_status", "typing_status": "on", "is_private": False, "note": "ü"}
    assert identifier == c.protocol.identifier
    with pytest.raises(rtsync.ConnectionLost, match="not running"):
        c.perform("update_presence")


def test_perform_while_the_subscription_never_comes_says_so(server: VoxsigServer) -> None:
    server.hold_lookups = True  # the confirm never comes while held
    c = agent(server, confirm_timeout=30, connect_timeout=0.2)
    c._ready_wait = 0.5  # noqa: SLF001  (the readiness wait, shortened for the test)
    try:
        c.start()
        assert wait_for(lambda: server.parked == 1)
        with pytest.raises(rtsync.ConnectionLost, match="not subscribed"):
            c.perform("update_presence")
    finally:
        c.stop()
    assert not server.actions


@pytest.mark.parametrize("reason, reconnect, error, says", [
    ("unauthorized", False, rtsync.AuthenticationError, "connection-level authentication"),
    ("unauthorized", None, rtsync.AuthenticationError, "reconnect: false"),
    ("invalid_request", False, rtsync.RequestRejected, "check url= and origin="),
    ("server_restart", False, rtsync.RequestRejected, "restarting"),
    ("remote", False, rtsync.RequestRejected, "on purpose"),
    ("something_new", False, rtsync.RequestRejected, "does not define"),
])
def test_disconnect_without_reconnect_is_final_and_says_why(server: VoxsigServer, reason: str, reconnect: Any,
                                                            error: type, says: str) -> None:
    c = agent(server)
    try:
        started(c)
        server.disconnect(reason, reconnect)
        assert wait_for(lambda: c.error is not None)
    finally:
        c.stop()
    assert type(c.error) is error and says in str(c.error) and reason in str(c.error)
    assert server.connections_total == 1


@pytest.mark.parametrize("reason, reconnect", [("server_restart", True), ("remote", True),
                                                ("invalid_request", True), ("server_restart", None)])
def test_disconnect_that_allows_reconnecting_reconnects(server: VoxsigServer, reason: str, reconnect: Any) -> None:
    c = agent(server)
    try:
        got = started(c)
        server.disconnect(reason, reconnect)
        assert wait_for(lambda: sum(e.name == "rtsync.connected" for e in got) == 2)
    finally:
        c.stop()
    said = next(e for e in got if e.name == "rtsync.disconnected").data["reason"]
    assert reason in said and c.error is None


def test_every_event_of_the_doc_reaches_a_callback_by_its_name(server: VoxsigServer) -> None:
    # The 14 events of seeds/001 with the doc's payloads, each subscribed by the name the doc gives.
    c = agent(server)
    got: Dict[str, List[rtsync.Event]] = {name: [] for name, _ in EVENTS}
    for name, _ in EVENTS:
        c.on(name, got[name].append)
    try:
        started(c)
        for name, schema in EVENTS:
            wire = "notification.created" if name == "notification_created" else name
            assert server.publish("account_1", wire, materialize(schema)) == 1
        assert wait_for(lambda: all(got.values()))
    finally:
        c.stop()
    for name, schema in EVENTS:
        expected = {**materialize(schema), "account_id": 1}
        # presence.update also answers the client's own presence after the confirm.
        (event,) = [e for e in got[name] if e.data == expected]
        assert event.typed is not None and (len(got[name]) == 1 or name == "presence.update"), name
    assert got["notification_created"][0].typed.notification.push_message_title == "text"
    assert c.off("notification_created") == 1 and c.off("notification.created") == 0


def test_the_doc_spelling_notification_created_on_the_wire_is_one_event_for_both_names(
        server: VoxsigServer) -> None:
    c = agent(server)
    dotted: List[rtsync.Event] = []
    c.on("notification.created", dotted.append)
    c.once("notification_created", dotted.append)  # the same function twice: runs once per event
    try:
        started(c)
        server.publish("good-user-token", "notification_created", {"notification": {"id": 5}, "count": 1})
        assert wait_for(lambda: dotted)
    finally:
        c.stop()
    assert [e.name for e in dotted] == ["notification.created"] and dotted[0].typed.notification.id == 5


def test_perform_after_the_client_ended_raises_what_ended_it(server: VoxsigServer) -> None:
    server.reject_connections = True
    c = agent(server)
    with pytest.raises(rtsync.AuthenticationError):
        c.run_forever()
    with pytest.raises(rtsync.AuthenticationError, match="reconnect: false"):
        c.perform("update_presence")


def test_after_a_merge_the_old_token_gets_no_answer(server: VoxsigServer) -> None:
    server.merge_contact("good-contact-token", "merged-contact-token-88")
    old = contact(server, confirm_timeout=0.3)
    with pytest.raises(rtsync.AuthenticationError, match="never confirmed"):
        old.run_forever()
    assert server.publish("good-contact-token", "message.created", {"id": 1}) == 0
    new = contact(server, "merged-contact-token-88")
    try:
        got = started(new)
        server.publish("merged-contact-token-88", "message.created", {"id": 2})
        assert wait_for(lambda: ids(got) == [2])
    finally:
        new.stop()
