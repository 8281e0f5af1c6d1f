"""`rtsync serve <vendor>` in one process, its printed `listen` line in another, its `publish` line in a third."""

from __future__ import annotations

import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Dict, List

import pytest

from rtsync.cli.publish import _origin
from rtsync.testing._server import _loopback
from rtsync.testing.voxsig import VoxsigServer

ROOT = str(Path(__file__).resolve().parents[2])
RTSYNC = [sys.executable, "-m", "rtsync"]
VENDORS = ["dashly", "voxsig", "quickmeet", "dialpad", "doshii"]


def _env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTSYNC_")}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _lines(stream: IO[str]) -> "queue.Queue[str]":
    """Read a pipe on a thread so that a test can wait for a line with a timeout."""
    got: "queue.Queue[str]" = queue.Queue()

    def pump() -> None:
        for line in stream:
            got.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return got


def _until(lines: "queue.Queue[str]", wanted: str, timeout: float = 20) -> List[str]:
    seen: List[str] = []
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line with {wanted!r} in {timeout} s; saw {seen}") from None
        seen.append(line)
        if wanted in line:
            return seen


def _words(line: str) -> List[str]:
    """A printed command line as argv: `VAR=value` words become the environment, `rtsync` this tree's command."""
    words = shlex.split(line)
    assert words[words.index("rtsync") + 1] in ("listen", "publish")
    return words


def _run_line(line: str, **kwargs: object) -> "subprocess.Popen[str]":
    words = _words(line)
    env = _env()
    while "=" in words[0]:
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    assert words[0] == "rtsync"
    return subprocess.Popen(RTSYNC + words[1:], env=env, text=True, **kwargs)  # type: ignore[call-overload]


@pytest.mark.parametrize("vendor", VENDORS)
def test_serve_prints_commands_that_work_and_ends_cleanly_on_sigterm(vendor: str) -> None:
    server = subprocess.Popen(RTSYNC + ["serve", vendor], env=_env(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    listener = None
    try:
        out = _lines(server.stdout)  # type: ignore[arg-type]
        url = out.get(timeout=20)
        assert url.split("://")[0] in ("http", "ws"), url
        printed = _until(out, "rtsync publish")
        listen = next(line for line in printed if " rtsync listen " in f" {line}")
        publish = printed[-1]
        assert url in listen and url in publish

        listener = _run_line(listen, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        status = _lines(listener.stderr)  # type: ignore[arg-type]
        events = _lines(listener.stdout)  # type: ignore[arg-type]
        _until(status, "rtsync: connected")
        sent = _run_line(publish, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        answer, errors = sent.communicate(timeout=20)
        assert sent.returncode == 0 and errors == "", errors
        assert answer.strip()
        received = _until(events, '"provider"')  # skip nothing but wait for the first event...
        while all(json.loads(line)["name"].startswith("rtsync.") for line in received):
            received += _until(events, '"provider"')  # ...until the published one
        event = json.loads(received[-1])
        assert event["provider"] == vendor and not event["name"].startswith("rtsync.")

        listener.send_signal(signal.SIGINT)
        assert listener.wait(10) == 130
        server.send_signal(signal.SIGTERM)
        assert server.wait(10) == 0
        tail = server.stderr.read()  # type: ignore[union-attr]
        assert tail.strip() == "rtsync serve: stopped", tail
    finally:
        for proc in (listener, server):
            if proc is not None and proc.poll() is None:
                proc.kill()


def test_serve_quiet_prints_only_the_url_and_ctrl_c_ends_with_0() -> None:
    server = subprocess.Popen(RTSYNC + ["serve", "doshii", "--quiet"], env=_env(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = server.stdout.readline().strip()  # type: ignore[union-attr]
        assert url.startswith("ws://127.0.0.1:") and url.endswith("/app/socket/v3")
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=10)
        assert server.returncode == 0 and out == "" and err == ""
    finally:
        server.kill()


def test_publish_to_nothing_says_where_it_looked_and_exits_1() -> None:
    done = subprocess.run(RTSYNC + ["publish", "doshii", "--url", "ws://127.0.0.1:9/app/socket/v3",
                                    "--event", "order_created", "{}"],
                          capture_output=True, text=True, env=_env(), timeout=20)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "rtsync: ConnectionLost: cannot reach http://127.0.0.1:9 (ConnectionError); "
        "is `rtsync serve doshii` running there?"]


def test_publish_bad_json_is_a_configuration_error() -> None:
    done = subprocess.run(RTSYNC + ["publish", "dashly", "--url", "http://127.0.0.1:9", "--channel", "c",
                                    "{not json"], capture_output=True, text=True, env=_env(), timeout=20)
    assert done.returncode == 4
    assert len(done.stderr.splitlines()) == 1 and "DATA is not JSON" in done.stderr


def test_publish_needs_the_door_that_only_serve_opens() -> None:
    with VoxsigServer() as server:  # a server in a user's test: no control door
        done = subprocess.run(RTSYNC + ["publish", "voxsig", "--url", server.url, "--event", "x", "{}"],
                              capture_output=True, text=True, env=_env(), timeout=20)
    assert done.returncode == 4
    assert done.stderr.splitlines() == [
        f"rtsync: ConfigurationError: {_origin(server.url)} has no publish door: "
        "start the server with `rtsync serve voxsig`"]


def test_the_server_refuses_a_bad_publish_call_with_its_reason() -> None:
    from rtsync.testing.serve import serve

    with serve("voxsig") as server:
        done = subprocess.run(RTSYNC + ["publish", "voxsig", "--url", server.url, "--event", "x", "[1]"],
                              capture_output=True, text=True, env=_env(), timeout=20)
        assert done.returncode == 4 and "must be a JSON object" in done.stderr
        import requests

        answer = requests.post(f"{server.http_url}/_rtsync/publish", json={"args": ["s"]}, timeout=10)
        assert answer.status_code == 400 and "TypeError" in answer.json()["error"]
        answer = requests.post(f"{server.http_url}/_rtsync/publish", data=b"[", timeout=10)
        assert answer.status_code == 400 and "not JSON" in answer.json()["error"]


@pytest.mark.parametrize("remote, ok", [("127.0.0.1", True), ("::1", True), ("127.8.9.1", True),
                                        ("10.0.0.7", False), ("192.168.1.2", False), (None, False),
                                        ("not-an-address", False)])
def test_the_control_door_is_for_this_host_only(remote: object, ok: bool) -> None:
    assert _loopback(remote) is ok  # type: ignore[arg-type]


def test_serve_on_a_taken_port_says_so_in_one_line() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(RTSYNC + ["serve", "voxsig", "--port", str(port)], capture_output=True, text=True,
                              env=_env(), timeout=30)
    assert done.returncode == 4 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"rtsync: ConfigurationError: cannot listen on 127.0.0.1:{port} (Address already in use); "
        "pick another --port, or leave it out for any free port"]
