"""The `rtsync` command as a Unix process: pipes closed by `head`, SIGTERM, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import signal
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List

import pytest

from rtsync.testing.dashly import DashlyServer
from tests.conftest import wait_for

ROOT = str(Path(__file__).resolve().parents[2])
RTSYNC = [sys.executable, "-m", "rtsync"]  # this tree's command, whatever `rtsync` script is installed
SHELL_RTSYNC = f"'{sys.executable}' -m rtsync"
TOKEN = "tok-0123456789-secret"


def _env(**extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTSYNC_")}
    env.update(extra, PYTHONPATH=ROOT + os.pathsep + env.get("PYTHONPATH", ""))
    return env


def _pipeline(command: str, env: Dict[str, str], timeout: float = 9) -> subprocess.CompletedProcess:
    """Run `command | ...` in bash and report rtsync's own exit status on the last stderr line."""
    return subprocess.run(["bash", "-c", command + '; echo "rtsync-rc=${PIPESTATUS[0]}" >&2'],
                          capture_output=True, text=True, env=env, timeout=timeout)


def _split(done: subprocess.CompletedProcess) -> tuple:
    *err, last = done.stderr.splitlines()
    assert last.startswith("rtsync-rc="), done.stderr
    return int(last.split("=")[1]), err


def _publishing(server: DashlyServer, stop: threading.Event) -> threading.Thread:
    def run() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            server.publish("c.1", {"n": n})
            time.sleep(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_listen_piped_to_head_ends_quietly_with_0() -> None:
    with DashlyServer(tokens={TOKEN}) as server:
        stop = threading.Event()
        _publishing(server, stop)
        try:
            t0 = time.monotonic()
            done = _pipeline(f"{SHELL_RTSYNC} listen dashly --channel c.1 --url {server.url} "
                             "--event 'c.*' | head -1", _env(RTSYNC_DASHLY_TOKEN=TOKEN))
        finally:
            stop.set()
    rc, err = _split(done)
    assert rc == 0 and err == ["rtsync: connected"], done.stderr  # the status line, then quiet
    assert json.loads(done.stdout)["channel"] == "c.1"
    assert time.monotonic() - t0 < 8


def test_demo_piped_to_head_ends_quietly_with_0() -> None:
    done = _pipeline(f"{SHELL_RTSYNC} demo doshii --quiet | head -2", _env())
    rc, err = _split(done)
    assert rc == 0 and err == [], done.stderr  # --quiet: no narration; and no traceback
    assert len(done.stdout.splitlines()) == 2


def test_poll_piped_to_head_keeps_the_unread_events_for_the_next_run(tmp_path: Path) -> None:
    cp = tmp_path / "cursor.json"
    env = _env(RTSYNC_DASHLY_TOKEN=TOKEN)
    with DashlyServer(tokens={TOKEN}, store_size=3000) as server:
        cmd = f"{SHELL_RTSYNC} poll dashly --channel c.1 --url {server.url} --checkpoint {cp}"
        first = _pipeline(cmd, env)
        assert _split(first) == (0, [f"rtsync: no cursor in {cp} yet: recorded the current position; "
                                     "the next run prints what is published after it"])
        assert first.stdout == ""
        for n in range(1, 2001):  # more than a pipe buffer holds, so the writer does see the pipe close
            server.publish("c.1", {"n": n})
        cut = _pipeline(cmd + " | head -1", env)
        assert _split(cut) == (0, [])
        again = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=env, timeout=9)
    assert again.returncode == 0 and again.stderr == ""
    got = [json.loads(line)["data"].get("n") for line in again.stdout.splitlines()]
    assert got == list(range(1, 2001))  # the cut run's cursor was put back: nothing is lost


def test_sigterm_stops_the_client_cleanly_and_exits_143() -> None:
    with DashlyServer(tokens={TOKEN}) as server:
        proc = subprocess.Popen(RTSYNC + ["-v", "listen", "dashly", "--channel", "c.1", "--url", server.url],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=_env(RTSYNC_DASHLY_TOKEN=TOKEN))
        try:
            assert json.loads(proc.stdout.readline())["name"] == "rtsync.connected"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(8) == 143
            out, err = proc.communicate()
            assert "interrupted; stopping" in err and "Traceback" not in err
            assert wait_for(lambda: not server.websockets, timeout=3)  # the socket was closed by us
        finally:
            proc.kill()


def test_refused_credentials_exit_3_with_one_line_on_stderr() -> None:
    with DashlyServer(tokens={"other"}) as server:
        done = subprocess.run(RTSYNC + ["listen", "dashly", "--token", TOKEN, "--channel", "c.1",
                                        "--url", server.url],
                              capture_output=True, text=True, env=_env(), timeout=9)
    assert done.returncode == 3
    assert done.stdout == ""  # the fatal error is not repeated as JSON lines
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rtsync: AuthenticationError: "), done.stderr
    assert TOKEN not in done.stderr


def test_network_failure_exits_1(tmp_path: Path) -> None:
    done = subprocess.run(RTSYNC + ["poll", "dashly", "--channel", "c.1", "--url", "http://127.0.0.1:9",
                                    "--checkpoint", str(tmp_path / "cp.json")],
                          capture_output=True, text=True, env=_env(RTSYNC_DASHLY_TOKEN=TOKEN), timeout=9)
    assert done.returncode == 1
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("rtsync: ConnectionLost: ")


@pytest.mark.parametrize("argv, code", [
    (["listen", "dashly", "--channel", "c.1"], 4),                 # no token: configuration
    (["listen", "nosuchvendor"], 2),                                # usage
    (["demo", "--duration", "0"], 2),
    (["listen", "dashly", "--channel", "c.1", "--tokn", TOKEN], 2),  # a mistyped option: value not echoed
])
def test_exit_codes_and_errors_print_once_without_secrets(argv: List[str], code: int) -> None:
    done = subprocess.run(RTSYNC + argv, capture_output=True, text=True, env=_env(), timeout=9)
    assert done.returncode == code
    assert done.stdout == "" and "Traceback" not in done.stderr and TOKEN not in done.stderr
    if code != 2:
        assert len(done.stderr.splitlines()) == 1


def test_a_demo_that_cannot_finish_in_time_says_so() -> None:
    done = subprocess.run(RTSYNC + ["demo", "dashly", "--duration", "0.001"], capture_output=True, text=True,
                          env=_env(), timeout=9)
    assert done.returncode == 1
    # Which step runs out of time depends on the machine's speed; the message always names one.
    *narration, last = done.stderr.splitlines()
    assert re.fullmatch(r"rtsync demo dashly: .+ within 0\.001 s; try a longer --duration", last), done.stderr
    assert all(line.startswith("rtsync demo dashly: ") and "done" not in line for line in narration)


def test_a_one_second_demo_finishes() -> None:
    done = subprocess.run(RTSYNC + ["demo", "dashly", "--duration", "1"], capture_output=True, text=True,
                          env=_env(), timeout=9)
    assert done.returncode == 0, done.stderr
    assert "recovered by resume" in done.stdout.splitlines()[-1]


def test_status_lines_tell_connect_and_reconnect_on_stderr_unless_quiet() -> None:
    with DashlyServer(tokens={TOKEN}) as server:
        for quiet in (False, True):
            argv = RTSYNC + (["--quiet"] if quiet else []) + ["listen", "dashly", "--channel", "c.1",
                                                              "--url", server.url]
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    env=_env(RTSYNC_DASHLY_TOKEN=TOKEN))
            try:
                assert json.loads(proc.stdout.readline())["name"] == "rtsync.connected"
                server.drop()
                names = [json.loads(proc.stdout.readline())["name"] for _ in range(3)]
                assert names == ["rtsync.disconnected", "rtsync.reconnecting", "rtsync.connected"]
                proc.send_signal(signal.SIGINT)
                out, err = proc.communicate(timeout=10)
            finally:
                proc.kill()
            assert proc.returncode == 130
            if quiet:
                assert err == ""
                continue
            lines = err.splitlines()
            assert lines[0] == "rtsync: connected"
            assert re.fullmatch(r"rtsync: connection lost \(.+\); reconnecting in \d+\.\d s", lines[1]), err
            assert lines[2] == "rtsync: reconnected and resumed" and len(lines) == 3, err


def test_sigterm_saves_the_checkpoint_so_the_next_run_resumes_after_it(tmp_path: Path) -> None:
    cp = tmp_path / "cursor.json"
    env = _env(RTSYNC_DASHLY_TOKEN=TOKEN)
    with DashlyServer(tokens={TOKEN}) as server:
        cmd = RTSYNC + ["--quiet", "listen", "dashly", "--channel", "c.1", "--url", server.url,
                        "--checkpoint", str(cp)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            assert json.loads(proc.stdout.readline())["name"] == "rtsync.connected"
            server.publish("c.1", {"n": 1})
            assert json.loads(proc.stdout.readline())["data"] == {"n": 1}
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=10)
        finally:
            proc.kill()
        assert proc.returncode == 143 and err == "", err
        assert cp.exists()
        server.publish("c.1", {"n": 2})  # while nothing listens
        again = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            lines = [json.loads(again.stdout.readline()) for _ in range(2)]
            again.send_signal(signal.SIGTERM)
            again.communicate(timeout=10)
        finally:
            again.kill()
    assert lines[0]["name"] == "rtsync.connected"
    assert lines[1]["data"] == {"n": 2}  # resumed after n=1: nothing repeated, nothing lost
