"""The `rtsync` command: demo exits by itself, listen prints JSON lines until Ctrl-C, poll works for cron."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from rtsync.testing.dashly import DashlyServer
from tests.conftest import wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rtsync_cmd() -> list:
    # This tree's command (an installed `rtsync` script may belong to another checkout).
    return [sys.executable, "-m", "rtsync"]


def test_the_console_script_entry_point_is_rtsync_cli_main() -> None:
    import configparser
    import importlib

    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    target = cfg["options.entry_points"]["console_scripts"].strip()
    assert target == "rtsync = rtsync.cli:main"
    module, _, name = target.split(" = ")[1].partition(":")
    assert callable(getattr(importlib.import_module(module), name))
    done = subprocess.run([sys.executable, "-m", "rtsync.cli", "--version"], capture_output=True, text=True,
                          cwd=ROOT, timeout=30)
    assert done.returncode == 0 and done.stdout.startswith("rtsync ")


def test_demo_prints_events_and_exits_by_itself_within_30_s() -> None:
    t0 = time.monotonic()
    done = subprocess.run(rtsync_cmd() + ["demo"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - t0 < 30
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    names = [line["name"] for line in lines]
    assert names[0] == "rtsync.connected"
    assert "conversation_reply.100" in names and "rtsync.disconnected" in names
    assert lines[-1]["data"]["text"].startswith("(sent while the connection was down")
    # stderr narrates the script, step by step, and says why the demo ends.
    narration = done.stderr.splitlines()
    assert all(line.startswith("rtsync demo dashly: ") for line in narration), done.stderr
    assert any("dropping the connection now" in line for line in narration)
    assert narration[-1].startswith("rtsync demo dashly: done: the script played to the end")


@pytest.mark.parametrize("vendor", ["voxsig", "quickmeet", "dialpad", "doshii"])
def test_every_vendor_demo_exits_by_itself(vendor: str) -> None:
    done = subprocess.run(rtsync_cmd() + ["demo", vendor], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    names = [json.loads(line)["name"] for line in done.stdout.splitlines()]
    assert names[0] == "rtsync.connected" and len([n for n in names if not n.startswith("rtsync.")]) >= 2


def test_listen_prints_json_lines_and_stops_on_ctrl_c() -> None:
    with DashlyServer(tokens={"tok"}) as server:
        env = dict(os.environ, RTSYNC_DASHLY_TOKEN="tok")
        proc = subprocess.Popen(
            rtsync_cmd() + ["-v", "listen", "dashly", "--channel", "c.1", "--url", server.url,
                            "--event", "c.*"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
        )
        try:
            assert wait_for(lambda: server.websockets, timeout=15)
            server.publish("c.1", {"hello": "world"})
            line = proc.stdout.readline()
            assert json.loads(line)["data"] == {"hello": "world"}
            proc.send_signal(signal.SIGINT)
            assert proc.wait(10) == 130  # interrupted, after a clean stop
            err = proc.stderr.read()
            assert "interrupted; stopping" in err and "Traceback" not in err
        finally:
            proc.kill()
            proc.communicate()


def test_missing_token_is_a_configuration_error(capsys: pytest.CaptureFixture,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from rtsync.cli import main

    monkeypatch.delenv("RTSYNC_DASHLY_TOKEN", raising=False)
    assert main(["listen", "dashly", "--channel", "c.1"]) == 4
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "RTSYNC_DASHLY_TOKEN" in err
