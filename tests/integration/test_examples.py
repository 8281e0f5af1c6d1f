"""Every file in examples/ runs as a script against the local servers and prints the events it received."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Dict, List

import pytest

from rtsync.testing.dashly import DashlyServer
from rtsync.testing.dialpad import DialpadServer, call_event
from rtsync.testing.doshii import SAMPLE_EVENTS, DoshiiServer
from rtsync.testing.quickmeet import QuickMeetServer
from rtsync.testing.voxsig import VoxsigServer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TESTED = {"dashly_listen.py", "dashly_cron.py", "dialpad_listen.py", "doshii_listen.py", "quickmeet_bot.py",
          "voxsig_listen.py", "typed_usage.py"}  # typed_usage.py: tests/conformance/test_typing.py


def _env(**extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTSYNC_")}
    env.update(extra, PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    return env


class Script:
    """An example running as a subprocess, its output read line by line on a thread."""

    def __init__(self, name: str, argv: List[str], env: Dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, str(EXAMPLES / name)] + argv, env=env, cwd=str(ROOT),
                                     text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.seen: List[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, text: str, timeout: float = 30) -> str:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                self.proc.kill()
                raise AssertionError(f"no {text!r} in {timeout} s: {self.seen}; stderr: "
                                     f"{self.proc.stderr.read() if self.proc.stderr else ''}") from None
            self.seen.append(line)
            if text in line:
                return line

    def interrupt(self) -> None:
        """Ctrl-C: every example stops cleanly and exits 0."""
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=15)
        assert self.proc.returncode == 0, err
        assert "Traceback" not in err, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def test_every_example_is_tested_here() -> None:
    assert {p.name for p in EXAMPLES.glob("*.py")} == TESTED


def _listening(name: str, argv: List[str], env: Dict[str, str], publish: Callable[[], object],
               wanted: str) -> None:
    script = Script(name, argv, env)
    try:
        script.expect("connected")
        publish()
        script.expect(wanted)
        script.interrupt()
    finally:
        script.kill()


def test_dashly_listen() -> None:
    with DashlyServer(tokens={"tok"}) as server:
        _listening("dashly_listen.py", ["--url", server.url, "--app-id", "7"], _env(RTSYNC_DASHLY_TOKEN="tok"),
                   lambda: server.publish("conversation_reply.7", {"text": "hello from the test"}),
                   "reply #1: {'text': 'hello from the test'}")


def test_dashly_listen_takes_rtsync_url_from_the_environment() -> None:
    with DashlyServer(tokens={"tok"}) as server:
        _listening("dashly_listen.py", [], _env(RTSYNC_DASHLY_TOKEN="tok", RTSYNC_URL=server.url),
                   lambda: server.publish("conversation_reply.100", {"n": 1}), "reply #1: {'n': 1}")


def test_dashly_cron_bootstraps_then_prints_what_came_since(tmp_path: Path) -> None:
    argv = [sys.executable, str(EXAMPLES / "dashly_cron.py"), "--checkpoint", str(tmp_path / "cursor")]
    with DashlyServer(tokens={"tok"}) as server:
        env = _env(RTSYNC_DASHLY_TOKEN="tok", RTSYNC_URL=server.url)
        first = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        assert first.returncode == 0 and first.stdout == "0 event(s) since the last run\n", first.stderr
        server.publish("conversation_reply.100", {"text": "while cron slept"})
        second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == ["reply: {'text': 'while cron slept'}", "1 event(s) since the last run"]


def test_dialpad_listen() -> None:
    with DialpadServer(api_keys={"key"}) as server:
        _listening("dialpad_listen.py", ["--url", server.url], _env(RTSYNC_DIALPAD_API_KEY="key"),
                   lambda: server.publish(call_event("ringing"), route=True),
                   "call.ringing     +15102609745 -> +15106666687")


def test_doshii_listen() -> None:
    with DoshiiServer(client_ids={"cid"}) as server:
        _listening("doshii_listen.py", ["--url", server.url], _env(RTSYNC_DOSHII_CLIENT_ID="cid"),
                   lambda: server.publish(*SAMPLE_EVENTS[0]),
                   "order_created: 3 is pending (https://sandbox.doshii.co/partner/v3/orders/3)")


def test_voxsig_listen() -> None:
    with VoxsigServer() as server:
        _listening("voxsig_listen.py", ["--url", server.url, "--account-id", "1", "--user-id", "1"],
                   _env(RTSYNC_VOXSIG_TOKEN="good-user-token"),
                   lambda: server.publish("account_1", "message.created",
                                          {"id": 1, "conversation_id": 42, "content": "hi", "message_type": 0}),
                   "#42: hi")


def test_quickmeet_bot_answers_ping_with_pong() -> None:
    with QuickMeetServer() as server:
        _listening("quickmeet_bot.py", ["--url", server.url, "--username", "alice", "--room", "GENERAL"],
                   _env(RTSYNC_QUICKMEET_PASSWORD="alice-password"),
                   lambda: server.publish("GENERAL", "ping", user="bob"), "pong sent to GENERAL")
        answers = [(m["u"]["username"], m["msg"]) for m in server.messages["GENERAL"]]
    assert answers[-2:] == [("bob", "ping"), ("alice", "pong")]


@pytest.mark.parametrize("name", sorted(TESTED - {"typed_usage.py"}))
def test_every_example_takes_url_and_documents_it(name: str) -> None:
    done = subprocess.run([sys.executable, str(EXAMPLES / name), "--help"], env=_env(), capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0 and "--url" in done.stdout and "RTSYNC_URL" in done.stdout, done.stderr
