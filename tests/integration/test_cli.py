"""The `rtsync` command: demo exits by itself, listen prints JSON lines until Ctrl-C, poll works for cron."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from rtsync.testing.dashly import DashlyServer
from tests.conftest import wait_for


def rtsync_cmd() -> list:
    exe = shutil.which("rtsync")
    return [exe] if exe else [sys.executable, "-m", "rtsync.cli"]


def test_demo_prints_events_and_exits_by_itself_within_30_s() -> None:
    t0 = time.monotonic()
    done = subprocess.run(rtsync_cmd() + ["demo"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - t0 < 30
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    names = [line["name"] for line in lines]
    assert names[0] == "rtsync.connected"
    assert "conversation_reply.100" in names and "rtsync.disconnected" in names
    assert lines[-1]["data"]["text"].startswith("(sent while the connection was down")


@pytest.mark.parametrize("vendor", ["voxsig", "quickmeet", "dialpad", "doshii"])
def test_every_vendor_demo_exits_by_itself(vendor: str) -> None:
    done = subprocess.run(rtsync_cmd() + ["demo", vendor], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    names = [json.loads(line)["name"] for line in done.stdout.splitlines()]
    assert names[0] == "rtsync.connected" and len([n for n in names if not n.startswith("rtsync.")]) >= 2


def test_listen_prints_json_lines_and_stops_on_ctrl_c() -> None:
    with DashlyServer(tokens={"tok"}) as server:
        env = dict(os.environ, RTSYNC_DASHLY_TOKEN="tok")
        proc = subprocess.Popen(
            rtsync_cmd() + ["listen", "dashly", "--channel", "c.1", "--url", server.http_url,
                            "--event", "c.*"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        try:
            assert wait_for(lambda: server.websockets, timeout=15)
            server.publish("c.1", {"hello": "world"})
            line = proc.stdout.readline()
            assert json.loads(line)["data"] == {"hello": "world"}
            proc.send_signal(signal.SIGINT)
            assert proc.wait(10) == 0
        finally:
            proc.kill()


def test_missing_token_is_a_clear_error(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from rtsync.cli import main

    monkeypatch.delenv("RTSYNC_DASHLY_TOKEN", raising=False)
    assert main(["listen", "dashly", "--channel", "c.1"]) == 2
    assert "RTSYNC_DASHLY_TOKEN" in capsys.readouterr().err
