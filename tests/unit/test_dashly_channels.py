"""The channel-name helpers for Dashly's 17 documented channel kinds, and their typed views."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rtsync
from rtsync.events import Event
from rtsync.vendors.dashly import PING, channels, models
from rtsync.vendors.dashly.cursor import validate_channels
from rtsync.vendors.dashly.state import DashlyState

# The seed's table, row by row: (helper call, channel name).
DOCUMENTED = [
    (lambda: channels.ping(), "ping"),
    (lambda: channels.user_presence_changed(100), "user_presence_changed.100"),
    (lambda: channels.conversation(100), "conversation.100"),
    (lambda: channels.conversation(100, user_id=7), "conversation.100.7"),
    (lambda: channels.conversation_started_user(100), "conversation_started_user.100"),
    (lambda: channels.conversation_reply(100), "conversation_reply.100"),
    (lambda: channels.conversation_reply(100, user_id=7), "conversation_reply.100.7"),
    (lambda: channels.conversation_typing(100), "conversation_typing.100"),
    (lambda: channels.conversation_typing(100, 7), "conversation_typing.100.7"),
    (lambda: channels.conversation_read(100), "conversation_read.100"),
    (lambda: channels.conversation_read(100, 7), "conversation_read.100.7"),
    (lambda: channels.conversation_assigned(100), "conversation_assigned.100"),
    (lambda: channels.conversation_closed(100), "conversation_closed.100"),
    (lambda: channels.conversation_tag_added(100), "conversation_tag_added.100"),
    (lambda: channels.conversation_tag_deleted(100), "conversation_tag_deleted.100"),
    (lambda: channels.user_props_changed(100, 7), "user_props_changed.100.7"),
    (lambda: channels.event(100, 7), "event.100.7"),
]


def test_all_17_documented_channels_and_their_parse() -> None:
    assert len(DOCUMENTED) == 17
    names = [make() for make, _ in DOCUMENTED]
    assert names == [name for _, name in DOCUMENTED]
    assert validate_channels(names) == names  # all acceptable to the server's rules
    for name in names:
        parsed = channels.parse(name)
        assert parsed is not None and name.startswith(parsed.kind)
    assert channels.parse("conversation_reply.100.7") == channels.Channel("conversation_reply", 100, 7)
    assert channels.parse("ping") == channels.Channel("ping")


def test_reachable_from_the_package() -> None:
    assert rtsync.vendors.dashly.channels is channels  # type: ignore[attr-defined]
    from rtsync.vendors.dashly.channels import conversation_reply

    assert conversation_reply(1) == "conversation_reply.1"


@pytest.mark.parametrize("bad", [-1, True, "100", 1.5, None])
def test_ids_must_be_non_negative_integers(bad: object) -> None:
    with pytest.raises(rtsync.ConfigurationError, match="app_id must be a non-negative integer"):
        channels.conversation_reply(bad)  # type: ignore[arg-type]
    with pytest.raises(rtsync.ConfigurationError, match="user_id"):
        channels.event(1, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", [
    "", "pong", "ping.1", "conversation", "conversation.", "conversation.1.2.3", "conversation.x",
    "user_props_changed.1", "event.1", "conversation_closed.1.2", "conversation.-1", "conversation.١",
])
def test_parse_refuses_what_is_not_documented(name: str) -> None:
    assert channels.parse(name) is None


@given(st.text(max_size=60))
def test_parse_never_raises_and_round_trips(name: str) -> None:
    parsed = channels.parse(name)
    if parsed is None:
        return
    rebuilt = parsed.kind if parsed.app_id is None else f"{parsed.kind}.{parsed.app_id}"
    if parsed.user_id is not None:
        rebuilt += f".{parsed.user_id}"
    assert channels.parse(rebuilt) == parsed


def envelope(channel: str, body: str, i: int = 1) -> str:
    return (f'{{"id":{i},"channel":"{channel}","message":{body},"tag":"{i}",'
            f'"time":"Mon, 23 Nov 2026 03:19:06 GMT"}}')


@pytest.mark.parametrize("make,name", DOCUMENTED)
def test_every_kind_has_a_typed_view(make, name: str) -> None:
    state = DashlyState([name])
    (event,) = state.accept(envelope(name, '{"user_id":2,"presence":"idle"}'), 0.0)
    assert isinstance(event, Event)
    typed = event.typed
    assert isinstance(typed, models.DashlyMessage)
    assert typed.kind == channels.parse(name).kind  # type: ignore[union-attr]
    assert typed.model_dump() == {"user_id": 2, "presence": "idle"}  # every field kept, none made up


def test_ping_channel_is_liveness_named_dashly_ping() -> None:
    state = DashlyState(["ping", "conversation.1"])
    out = state.accept(envelope("ping", "{}") + envelope("conversation.1", '{"a":1}', 2), 0.0)
    ping, conv = out
    assert isinstance(ping, Event) and ping.name == PING == "dashly.ping" and ping.channel == "ping"
    assert isinstance(ping.typed, models.Ping)
    assert isinstance(conv, Event) and conv.name == "conversation.1"
    assert state.cursor is not None and state.cursor.tag == 2  # a ping moves the cursor like any message
