"""Voxsig interop: VoxsigClient against a real ActionCable server, and the official JS client against ours.

Tier A runs Rails' own ActionCable 6.1 (Debian's ruby-actioncable) under Puma with a Chatwoot-like
RoomChannel (tests/interop/voxsig_rails/config.ru). Tier B runs @rails/actioncable under Node against
rtsync.testing.voxsig, so our local server keeps behaving like Rails. Both skip locally without Ruby or
Node and fail under CI=true (.ci/setup.d/voxsig.sh installs them).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path
from typing import Iterator, List, Optional

import pytest
import requests

import rtsync
from rtsync.events import Event
from rtsync.testing.voxsig import VoxsigServer
from tests.conftest import need, wait_for

HERE = Path(__file__).resolve().parent
FAST = rtsync.Backoff(base=0.1, cap=0.5)


def _rails_available() -> bool:
    if not shutil.which("puma") or not shutil.which("ruby"):
        return False
    return subprocess.run(["ruby", "-e", 'require "action_cable"'], capture_output=True).returncode == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Rails:
    """Puma serving tests/interop/voxsig_rails/config.ru on a loopback port; restartable on the same port."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.log = open(os.devnull, "w")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cable(self) -> str:
        return f"ws://127.0.0.1:{self.port}/cable"

    def start(self) -> "Rails":
        self.proc = subprocess.Popen(
            ["puma", "-b", f"tcp://127.0.0.1:{self.port}", "-t", "4:8", "config.ru"],
            cwd=HERE / "voxsig_rails", stdout=self.log, stderr=self.log)
        assert wait_for(self._up, timeout=30), "puma did not start"
        return self

    def _up(self) -> bool:
        try:
            return requests.post(f"{self.base}/control/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def broadcast(self, stream: str, event: str, data: dict) -> None:
        requests.post(f"{self.base}/control/broadcast", timeout=5,
                      json={"stream": stream, "message": {"event": event, "data": data}})


@pytest.fixture
def rails() -> Iterator[Rails]:
    need(_rails_available(), "a real ActionCable server needs ruby-actioncable and puma (apt-get install)")
    server = Rails().start()
    try:
        yield server
    finally:
        server.stop()


def watch(c: rtsync.Client) -> List[Event]:
    got: List[Event] = []
    c.on("*", got.append)
    return got


def count(got: List[Event], name: str) -> int:
    return sum(e.name == name for e in got)


def test_real_rails_broadcasts_presence_and_process_restart(rails: Rails) -> None:
    c = rtsync.VoxsigClient("good-user-token", account_id=1, user_id=1, url=rails.cable, presence_interval=0.5, backoff=FAST)
    got = watch(c)
    with c:
        assert wait_for(lambda: count(got, "rtsync.connected") == 1, timeout=10)
        rails.broadcast("account_1", "message.created", {"id": 1, "content": "from rails"})
        rails.broadcast("good-user-token", "conversation.typing_on", {"conversation": {"id": 3}})
        assert wait_for(lambda: count(got, "message.created") == 1 and count(got, "conversation.typing_on") == 1)
        assert wait_for(lambda: count(got, "presence.update") >= 2)  # our heartbeat, Rails' answers
        rails.stop()  # the whole server process goes away ...
        assert wait_for(lambda: count(got, "rtsync.disconnected") >= 1, timeout=10)
        rails.start()  # ... and comes back on the same port
        assert wait_for(lambda: count(got, "rtsync.connected") == 2, timeout=20)
        rails.broadcast("account_1", "message.created", {"id": 2})
        assert wait_for(lambda: count(got, "message.created") == 2, timeout=10)
    reconnect = [e.data["reconnect"] for e in got if e.name == "rtsync.connected"]
    assert reconnect == [False, True]
    assert next(e for e in got if e.name == "message.created").typed.content == "from rails"


def test_real_rails_server_restart_frame(rails: Rails) -> None:
    c = rtsync.VoxsigClient("good-contact-token", url=rails.cable, backoff=FAST)
    got = watch(c)
    with c:
        assert wait_for(lambda: count(got, "rtsync.connected") == 1, timeout=10)
        requests.post(f"{rails.base}/control/restart", timeout=5)
        assert wait_for(lambda: count(got, "rtsync.connected") == 2, timeout=10)
        rails.broadcast("good-contact-token", "message.created", {"id": 9})
        assert wait_for(lambda: count(got, "message.created") == 1)
    assert "server_restart" in next(e for e in got if e.name == "rtsync.disconnected").data["reason"]


def test_real_rails_silent_on_a_bad_token_ends_in_a_clear_error(rails: Rails) -> None:
    c = rtsync.VoxsigClient("bad-token", account_id=1, user_id=1, url=rails.cable, backoff=FAST, confirm_timeout=1.0)
    with pytest.raises(rtsync.AuthenticationError, match="never confirmed"):
        c.run_forever()


def test_real_rails_unauthorized_connection_is_final(rails: Rails) -> None:
    c = rtsync.VoxsigClient("good-user-token", account_id=1, user_id=1, url=rails.cable + "?reject=1", backoff=FAST)
    with pytest.raises(rtsync.AuthenticationError, match="reconnect: false"):
        c.run_forever()


def test_real_rails_refuses_a_foreign_origin(rails: Rails) -> None:
    c = rtsync.VoxsigClient("good-user-token", account_id=1, user_id=1, url=rails.cable, origin="http://evil.example")
    with pytest.raises(rtsync.RequestRejected, match="404"):
        c.run_forever()


# -- tier B: the official JS client against our local server ------------------------------

def _node_available() -> bool:
    return bool(shutil.which("node")) and (HERE / "voxsig_js" / "node_modules" / "@rails" / "actioncable").exists()


class JsClient:
    def __init__(self, server: VoxsigServer, *args: str) -> None:
        self.proc = subprocess.Popen(
            ["node", "client.js", server.url, server.http_url, *args], cwd=HERE / "voxsig_js",
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: List[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def saw(self, what: str) -> List[dict]:
        return [line["data"] for line in self.lines if line["what"] == what]

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def local() -> Iterator[VoxsigServer]:
    need(_node_available(), "the official client needs node and `npm ci` in tests/interop/voxsig_js")
    with VoxsigServer(ping_interval=0.5) as server:
        yield server


def test_official_client_connects_receives_and_reconnects(local: VoxsigServer) -> None:
    js = JsClient(local, "good-user-token", "1", "1")
    try:
        assert wait_for(lambda: js.saw("connected"), timeout=15)
        assert js.saw("identifier") == ['{"channel":"RoomChannel","pubsub_token":"good-user-token",'
                                        '"account_id":1,"user_id":1}']
        js.send("presence")
        local.publish("account_1", "message.created", {"id": 5})
        assert wait_for(lambda: any(d.get("event") == "message.created" for d in js.saw("received")))
        assert wait_for(lambda: any(d.get("event") == "presence.update" for d in js.saw("received")))
        local.server_restart()  # the official client reconnects by its monitor (6-12 s) and resubscribes
        assert wait_for(lambda: any(d.get("reconnected") for d in js.saw("connected")), timeout=30)
        local.publish("account_1", "message.created", {"id": 6})
        assert wait_for(lambda: any(d.get("data", {}).get("id") == 6 for d in js.saw("received")))
    finally:
        js.close()


def test_official_client_sees_rejection_and_unauthorized(local: VoxsigServer) -> None:
    local.reject_mode = True
    js = JsClient(local, "bad-token")
    try:
        assert wait_for(lambda: js.saw("rejected"), timeout=15)
    finally:
        js.close()
    local.reject_connections = True
    js = JsClient(local, "good-contact-token")
    try:
        assert wait_for(lambda: js.saw("disconnected"), timeout=15)
        assert js.saw("disconnected")[0].get("willAttemptReconnect") is False
    finally:
        js.close()
