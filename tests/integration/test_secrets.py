"""Secrets never appear in logs (at DEBUG), reprs, exceptions, lifecycle events or CLI output."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from typing import List

import pytest

import rtsync
from rtsync.cli import main
from rtsync.events import Event
from rtsync.testing.dashly import DashlyServer
from tests.conftest import wait_for

TOKEN = "sEcReT-dashly-token-31337"


def test_dashly_token_never_leaks(caplog: pytest.LogCaptureFixture, tmp_path) -> None:
    caplog.set_level(logging.DEBUG)
    seen: List[str] = []
    with DashlyServer(tokens={TOKEN}, longpoll_timeout=0.5) as server:
        for transport in ("websocket", "longpoll", "shortpoll"):
            c = rtsync.DashlyClient(TOKEN, channels=["c.1"], transport=transport, url=server.url, backoff=rtsync.Backoff(base=0.05, cap=0.1), poll_interval=0.1, checkpoint=rtsync.FileCheckpoint(tmp_path / f"{transport}.json"))
            got: List[Event] = []
            c.on("*", lambda e: (got.append(e), seen.append(repr(e))))
            up = threading.Event()
            c.on("rtsync.connected", lambda e: up.set())
            seen.append(repr(c))
            with c:
                assert up.wait(5)
                server.publish("c.1", {"x": 1})
                assert wait_for(lambda: any(e.name == "c.1" for e in got))
                server.drop()
                time.sleep(0.3)
        bad = rtsync.DashlyClient(TOKEN + "x", channels=["c.1"], url=server.url)
        with pytest.raises(rtsync.AuthenticationError) as info:
            bad.run_forever()
        seen.append(str(info.value))
        seen.append(repr(bad))
    text = "\n".join(r.getMessage() for r in caplog.records) + "\n".join(seen)
    assert "GET" in text and "auth_token=***" in text  # we did log the URLs, redacted
    assert TOKEN not in text


def test_cli_output_and_errors_never_show_the_token(capsys: pytest.CaptureFixture, tmp_path) -> None:
    with DashlyServer(tokens={"other"}) as server:
        code = main(["-vv", "poll", "dashly", "--token", TOKEN, "--channel", "c.1", "--url", server.url,
                     "--checkpoint", str(tmp_path / "cp.json")])
    out, err = capsys.readouterr()
    assert code == 3 and "AuthenticationError" in err
    assert TOKEN not in out + err


def test_cli_debug_logging_in_a_subprocess_never_shows_the_token(tmp_path) -> None:
    with DashlyServer(tokens={TOKEN}) as server:
        server.publish("c.1", {"x": 1})
        cmd = [sys.executable, "-m", "rtsync.cli", "-vv", "poll", "dashly", "--channel", "c.1",
               "--url", server.url, "--checkpoint", str(tmp_path / "cp.json")]
        env = {"RTSYNC_DASHLY_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"}
        import os
        env.update({k: v for k, v in os.environ.items() if k.startswith(("PYTHON", "VIRTUAL"))})
        first = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
        server.publish("c.1", {"x": 2})
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert '"x": 2' in second.stdout
    assert "auth_token=***" in second.stderr
    assert TOKEN not in first.stdout + first.stderr + second.stdout + second.stderr
