"""The sans-I/O contract, end to end with a toy protocol: calls and replies, rotation, budgets, 429 waits."""

from __future__ import annotations

import json
import threading
import time
from typing import Iterator, List, Optional

import pytest
from aiohttp import web

import rtsync
from rtsync.engine import Vendor
from rtsync.events import Event
from rtsync.sansio import (
    Connected,
    Fail,
    Handshake,
    Reply,
    Report,
    Rotate,
    Send,
    WebSocketProtocol,
)
from rtsync.testing import LocalServer
from tests.conftest import started, wait_for


class EchoServer(LocalServer):
    """Answers {"call": id} with {"reply": id}; says {"hello": n} to the n-th connection; 429 on demand."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse_with: Optional[int] = None
        self.answer_calls = True

    def routes(self, app: web.Application) -> None:
        async def ws(request: web.Request) -> web.StreamResponse:
            if self.refuse_with:
                return web.Response(status=self.refuse_with, headers={"Retry-After": "0.3"})
            sock = web.WebSocketResponse()
            await sock.prepare(request)
            self.track(sock)
            await sock.send_str(json.dumps({"hello": self.connections_total}))
            async for msg in sock:
                data = json.loads(msg.data)
                if "call" in data and self.answer_calls:
                    await sock.send_str(json.dumps({"reply": data["call"]}))
                if "say" in data:
                    await sock.send_str(json.dumps({"said": data["say"]}))
            self.untrack(sock)
            return sock

        app.router.add_get("/ws", ws)

    def broadcast(self, text: str) -> None:
        async def go() -> None:
            for sock in list(self.websockets):
                await sock.send_str(text)

        self.call(go)


class Toy(WebSocketProtocol):
    def __init__(self, url: str) -> None:
        self.url = url
        self.rotate_at: Optional[float] = None
        self.next_id = 0

    def handshake(self) -> Handshake:
        return Handshake(self.url)

    def opened(self, now: float) -> list:
        return [Connected()]

    def received(self, text: str, now: float) -> list:
        data = json.loads(text)
        if "reply" in data:
            return [Reply(str(data["reply"]), result=data["reply"])]
        if data.get("bad"):
            return [Report(rtsync.ProtocolError("bad frame")), Event.make("after-bad", provider="toy")]
        if data.get("fatal"):
            return [Fail(rtsync.AuthenticationError("token revoked"))]
        return [Event.make("msg", provider="toy", data=data)]

    def call(self) -> tuple:
        self.next_id += 1
        return str(self.next_id), [Send(json.dumps({"call": self.next_id}))]

    def deadline(self) -> Optional[float]:
        return self.rotate_at

    def tick(self, now: float) -> list:
        self.rotate_at = None
        return [Rotate("test")]


class ToyClient(rtsync.Client):
    def __init__(self, url: str, **kw) -> None:
        kw.setdefault("backoff", rtsync.Backoff(base=0.05, cap=0.1))
        self.protocol = Toy(url)
        super().__init__(Vendor("toy", self.protocol), **kw)

    def call(self, timeout: float = 2.0) -> object:
        return self._request(lambda protocol: protocol.call(), timeout)


@pytest.fixture
def server() -> Iterator[EchoServer]:
    with EchoServer() as s:
        yield s



def test_call_gets_its_reply(server: EchoServer) -> None:
    c = ToyClient(server.ws_url + "/ws")
    started(c)
    try:
        assert [c.call() for _ in range(5)] == [1, 2, 3, 4, 5]
    finally:
        c.stop()


def test_call_in_flight_fails_at_once_when_the_link_drops(server: EchoServer) -> None:
    server.answer_calls = False
    c = ToyClient(server.ws_url + "/ws")
    started(c)
    try:
        threading.Timer(0.2, server.drop).start()
        t0 = time.monotonic()
        with pytest.raises(rtsync.ConnectionLost):
            c.call(timeout=30)
        assert time.monotonic() - t0 < 2
    finally:
        c.stop()


def test_call_times_out_and_fails_when_not_connected(server: EchoServer) -> None:
    server.answer_calls = False
    c = ToyClient(server.ws_url + "/ws")
    with pytest.raises(rtsync.ConnectionLost, match="not connected"):
        c.call()
    started(c)
    try:
        with pytest.raises(rtsync.CallTimeout):
            c.call(timeout=0.2)
    finally:
        c.stop()


def test_rotation_is_make_before_break(server: EchoServer) -> None:
    c = ToyClient(server.ws_url + "/ws")
    got = started(c)
    try:
        assert wait_for(lambda: any(e.data == {"hello": 1} for e in got if e.name == "msg"))
        # A timer set from a user thread, as vendor methods set one (through the engine): the
        # reader, asleep until its next deadline, is woken for the sooner one.
        c._exchange(lambda protocol: setattr(protocol, "rotate_at", time.monotonic()) or [])
        assert wait_for(lambda: any(e.data == {"hello": 2} for e in got if e.name == "msg"))
        assert wait_for(lambda: len(server.websockets) == 1)  # the old link was closed after
        disconnects = [e for e in got if e.name == "rtsync.disconnected"]
        assert disconnects == []  # a rotation is not a disconnection
        assert c.call() == 1  # and the new link is the one in use
    finally:
        c.stop()


def test_report_is_not_fatal_and_fail_is(server: EchoServer) -> None:
    c = ToyClient(server.ws_url + "/ws")
    got = started(c)
    server.broadcast(json.dumps({"bad": True}))
    assert wait_for(lambda: any(e.name == "after-bad" for e in got))
    assert any(e.name == "rtsync.error" and not e.data["fatal"] for e in got)
    server.broadcast(json.dumps({"fatal": True}))
    assert wait_for(lambda: not c.running or c.error is not None)
    c.stop()
    assert isinstance(c.error, rtsync.AuthenticationError)


def test_429_waits_what_the_server_says(server: EchoServer) -> None:
    server.refuse_with = 429
    c = ToyClient(server.ws_url + "/ws")
    waits: List[float] = []
    c.on("rtsync.reconnecting", lambda e: waits.append(e.data["delay"]))
    c.start()
    try:
        assert wait_for(lambda: len(waits) >= 2)
    finally:
        c.stop()
    assert waits[:2] == [0.3, 0.3]


def test_retry_budget_ends_the_client(server: EchoServer) -> None:
    server.refuse_with = 503
    c = ToyClient(server.ws_url + "/ws", retry_budget=rtsync.RetryBudget(attempts=3, window=60))
    t0 = time.monotonic()
    with pytest.raises(rtsync.ConnectionLost, match="gave up after 3 reconnects"):
        c.run_forever()
    assert time.monotonic() - t0 < 5
