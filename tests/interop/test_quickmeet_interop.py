"""QuickMeet interop: widely used DDP clients (npm `@rocket.chat/ddp-client`, `ddp`) against our local server.

They complete handshake, password-digest login, a stream subscription, receive a `changed` event, call
`sendMessage` and get a 404 for an unknown method, against both server modes (Meteor monolith and
ddp-streamer), which keeps rtsync.testing.quickmeet faithful to what real clients expect. They skip locally without Node and fail under CI=true.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Iterator, List

import pytest

from rtsync.testing.quickmeet import QuickMeetServer
from tests.conftest import need, wait_for

HERE = Path(__file__).resolve().parent / "quickmeet_js"


@pytest.fixture(params=["meteor", "streamer"])
def server(request: pytest.FixtureRequest) -> Iterator[QuickMeetServer]:
    need(bool(shutil.which("node")) and (HERE / "node_modules" / "ddp").exists()
         and (HERE / "node_modules" / "@rocket.chat" / "ddp-client").exists(),
         "the DDP peers need node and `npm ci` in tests/interop/quickmeet_js")
    with QuickMeetServer(mode=request.param) as s:
        yield s


@pytest.mark.parametrize("kind", ["rc", "ddp"])
def test_npm_ddp_client_against_our_server(server: QuickMeetServer, kind: str) -> None:
    proc = subprocess.Popen(["node", "peer.js", kind, server.url, "alice", "alice-password", "GENERAL"],
                            cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: List[dict] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(json.loads(line))

    threading.Thread(target=read, daemon=True).start()
    try:
        assert wait_for(lambda: any(l["what"] == "ready" for l in lines), timeout=30), lines
        server.publish("GENERAL", "hello peers", user="bob")
        assert wait_for(lambda: any(l["what"] == "error" for l in lines), timeout=30), lines
    finally:
        proc.kill()
        proc.wait(10)
    steps = {line["what"]: line["data"] for line in lines}
    assert "fatal" not in steps, steps
    assert steps["logged-in"]["uid"] == "alice-id"
    assert steps["received"]["msg"] == "hello peers" and steps["received"]["u"]["username"] == "bob"
    assert steps["result"]["msg"].startswith("hello from") and steps["result"]["rid"] == "GENERAL"
    assert steps["error"]["error"] == 404 and "not found" in steps["error"]["reason"]
    assert server.closes == []  # in streamer mode: no 1002 for answering the early ping before connect
    login = next(f for f in server.frames_in if f.get("method") == "login")
    assert login["params"][0]["password"]["algorithm"] == "sha-256"
