"""`rtsync listen dialpad` as a real process against the local Dialpad: what a run creates it says, and
deletes on the way out (SIGTERM, Ctrl-C, errors); a listener that can hear nothing says so."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from rtsync.testing.dialpad import DialpadServer, call_event, contact_event, sms_event
from tests.conftest import wait_for

ROOT = str(Path(__file__).resolve().parents[2])
KEY = "dp-cli-secret-api-key-456"


@pytest.fixture
def server() -> Iterator[DialpadServer]:
    with DialpadServer(api_keys={KEY}) as s:
        yield s


class Listener:
    """`python -m rtsync listen dialpad ...` with its stdout and stderr read line by line as they come."""

    def __init__(self, *args: str, key: str = KEY) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RTSYNC_")}
        env.update(RTSYNC_DIALPAD_API_KEY=key, PYTHONPATH=ROOT + os.pathsep + env.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen([sys.executable, "-m", "rtsync", "listen", "dialpad", *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.out: List[str] = []
        self.err: List[str] = []
        self._readers = [threading.Thread(target=self._read, args=(stream, into), daemon=True)
                         for stream, into in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, into: List[str]) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            into.append(line.rstrip("\n"))

    def events(self) -> List[Dict]:
        return [json.loads(line) for line in self.out]

    def said(self, text: str) -> bool:
        return any(text in line for line in self.err)

    def finish(self, signum: int = 0) -> int:
        if signum:
            self.proc.send_signal(signum)
        try:
            rc = self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        for reader in self._readers:
            reader.join(5)
        return rc


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_run_creates_its_websocket_and_subscriptions_says_so_and_deletes_them(
        server: DialpadServer, signum: int, code: int) -> None:
    run = Listener("--url", server.url, "--subscribe", "call=ringing,hangup", "--subscribe", "sms=inbound",
                   "--subscribe", "contact=local")
    try:
        assert wait_for(lambda: run.events() and run.events()[0]["name"] == "rtsync.connected", timeout=20), run.err
        (websocket,) = server.endpoints()
        subs = server.subscriptions()
        assert sorted(s["kind"] for s in subs) == ["call", "contact", "sms"]
        assert all(s["endpoint_id"] == websocket for s in subs)
        assert run.said(f"created Dialpad websocket {websocket} for this run; it is deleted on exit")
        for sub in subs:
            assert run.said(f"created Dialpad {sub['kind']} subscription {sub['id']} on websocket {websocket}")
        # Routed as Dialpad routes: only what the run's subscriptions ask for arrives.
        for event in (call_event("ringing", call_id=1), call_event("connected", call_id=1),
                      sms_event("out", direction="outbound"), sms_event("in", direction="inbound"),
                      contact_event("Created", contact_type="shared"), contact_event("Updated", contact_type="local")):
            server.publish(event, route=True)
        assert wait_for(lambda: len(run.events()) == 4, timeout=10), run.out
    finally:
        rc = run.finish(signum)
    assert rc == code, run.err
    assert [e["name"] for e in run.events()] == ["rtsync.connected", "call.ringing", "sms", "contact.updated"]
    assert server.endpoints() == [] and server.subscriptions() == []  # nothing leaks
    assert run.said(f"deleted Dialpad websocket {websocket}")
    assert sum("deleted Dialpad" in line for line in run.err) == 4
    assert not any(KEY in line for line in run.err + run.out)


def test_a_run_without_subscriptions_warns_that_nothing_will_arrive_and_still_cleans_up(
        server: DialpadServer) -> None:
    run = Listener("--url", server.url)
    try:
        assert wait_for(lambda: run.events(), timeout=20), run.err
    finally:
        rc = run.finish(signal.SIGTERM)
    assert rc == 143
    assert any("warning" in line and "no event subscription" in line and "--subscribe" in line for line in run.err)
    assert server.endpoints() == []


def test_an_existing_websocket_is_kept_and_checked_for_subscriptions(server: DialpadServer) -> None:
    import rtsync

    websocket = rtsync.DialpadClient(KEY, url=server.url).create_websocket()["id"]
    owner = rtsync.DialpadClient(KEY, url=server.url, websocket_id=websocket)
    bare = Listener("--url", server.url, "--websocket-id", str(websocket))
    try:
        assert wait_for(lambda: bare.events(), timeout=20), bare.err
    finally:
        assert bare.finish(signal.SIGTERM) == 143
    assert any("warning" in line and f"websocket {websocket} has no enabled" in line for line in bare.err)

    sub = owner.create_subscription("changelog")
    subscribed = Listener("--url", server.url, "--websocket-id", str(websocket), "--subscribe", "agent_status")
    try:
        assert wait_for(lambda: subscribed.events(), timeout=20), subscribed.err
    finally:
        assert subscribed.finish(signal.SIGTERM) == 143
    assert not any("warning" in line for line in subscribed.err)
    assert server.endpoints() == [websocket]  # not the run's to delete
    assert [(s["kind"], s["id"]) for s in server.subscriptions()] == [("changelog", sub["id"])]  # only its own went


def test_a_failed_setup_undoes_what_it_created(server: DialpadServer) -> None:
    run = Listener("--url", server.url, "--subscribe", "sms", "--subscribe", "call=ringing,nonsense")
    rc = run.finish()
    assert rc == 1, run.err
    assert run.said("created Dialpad sms subscription") and run.said("was rejected with HTTP 400")
    assert server.endpoints() == [] and server.subscriptions() == []
    assert run.said("deleted Dialpad sms subscription") and run.said("deleted Dialpad websocket")


def test_a_refused_key_creates_nothing_and_exits_3(server: DialpadServer) -> None:
    run = Listener("--url", server.url, "--subscribe", "call", key="wrong-key")
    assert run.finish() == 3
    assert server.endpoints() == [] and len(run.err) == 1 and "AuthenticationError" in run.err[0]


def test_bad_subscribe_values_are_usage_errors(server: DialpadServer) -> None:
    for bad in ("fax", "sms=sideways", "changelog=x"):
        run = Listener("--url", server.url, "--subscribe", bad)
        assert run.finish() == 2 and any("--subscribe" in line for line in run.err)
    assert server.rest_calls == []


def test_environment_and_url_options_choose_the_rest_base() -> None:
    from rtsync.cli import _parser
    from rtsync.cli import dialpad as cli

    def url(*argv: str) -> str:
        return cli.make_client(_parser().parse_args(["listen", "dialpad", "--api-key", KEY, *argv])).url

    assert url() == "https://dialpad.com"
    assert url("--environment", "sandbox") == "https://sandbox.dialpad.com"
    assert url("--environment", "sandbox", "--url", "http://127.0.0.1:9") == "http://127.0.0.1:9"
    assert url("--base-url", "http://127.0.0.1:8") == "http://127.0.0.1:8"  # the old spelling still works
