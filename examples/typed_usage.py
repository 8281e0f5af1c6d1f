"""A typed program using all five clients, typed payloads and MockLink: CI checks it with `mypy --strict`.

It is also a runnable example: every client replays a recorded session
through `rtsync.testing.MockLink`, so it needs no account and no network.
"""

from __future__ import annotations

import json
from typing import List

import rtsync
from rtsync.testing import MockLink
from rtsync.vendors.voxsig.models import Message
from rtsync.vendors.voxsig.protocol import build_identifier


def doshii_orders() -> List[str]:
    link = MockLink(['{"doshii":{"pong":1}}', '{"emit":["order_created",{"id":"7","status":"pending"}]}'])
    client = rtsync.DoshiiClient("client-id", link=link)
    ids: List[str] = []

    @client.on("order_created")
    def on_order(event: rtsync.Event) -> None:  # the decorator keeps the function's type
        ids.append(str(event.id))

    with client as running:  # `with` gives back a DoshiiClient, not a bare Client
        assert running.wait_connected(5)
        link.replayed(5)
    stats: rtsync.Stats = client.stats
    assert stats.events == len(ids)
    return ids


def voxsig_messages() -> List[str]:
    ident = build_identifier({"channel": "RoomChannel", "pubsub_token": "tok", "account_id": 1, "user_id": 7})
    message = {"event": "message.created", "data": {"id": 1, "content": "hello", "message_type": 0}}
    link = MockLink(['{"type":"welcome"}', json.dumps({"identifier": ident, "type": "confirm_subscription"}),
                     json.dumps({"identifier": ident, "message": message})], subprotocol="actioncable-v1-json")
    client = rtsync.VoxsigClient("tok", account_id=1, user_id=7, url="wss://example.invalid/cable", link=link)
    texts: List[str] = []
    with client:
        while len(texts) < 1:
            event = client.receive(timeout=5)  # pull style
            if isinstance(event.typed, Message) and event.typed.content is not None:
                texts.append(event.typed.content)
    assert client.state is rtsync.State.STOPPED
    return texts


def constructors() -> List[rtsync.Client]:
    return [
        rtsync.DashlyClient("token", channels=["conversation_reply.100"], transport="longpoll"),
        rtsync.QuickMeetClient("ann", "password", url="wss://chat.example/websocket", ping_interval=25.0),
        rtsync.DialpadClient("api-key", url="https://dialpad.com", ping_timeout=15.0),
        rtsync.DoshiiClient("client-id", environment="sandbox", ping_interval=30.0),
        rtsync.VoxsigClient("pubsub-token", account_id=1, user_id=7, ping_timeout=6.0),
    ]


if __name__ == "__main__":
    print(doshii_orders(), voxsig_messages(), [type(c).__name__ for c in constructors()])
