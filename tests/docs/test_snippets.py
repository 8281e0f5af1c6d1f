"""Every Python block in README.rst and docs/ runs against the local servers, and every `rtsync` command line parses.

A block that builds a client is run with the vendor's local server up and the
client class swapped for one that points `url=` at it: `run_forever()` then
returns once the server published an event and the block's callbacks handled
it. A block that starts its own server, or needs none, runs as written. The
names a block may use without defining them are in `NAMESPACE` (the
credentials the prose calls `token`, `api_key`, `client_id`, and `handle`).
"""

from __future__ import annotations

import contextlib
import re
import shlex
import textwrap
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest

import rtsync
from rtsync.cli import _parser
from rtsync.testing.dashly import DashlyServer
from rtsync.testing.dialpad import DialpadServer, call_event
from rtsync.testing.doshii import SAMPLE_EVENTS, DoshiiServer
from rtsync.testing.quickmeet import QuickMeetServer
from rtsync.testing.voxsig import VoxsigServer

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "README.rst"] + sorted((ROOT / "docs").rglob("*.rst"))
FAST = rtsync.Backoff(base=0.05, cap=0.2)

NAMESPACE: Dict[str, Any] = {
    "token": "dashly-token", "api_key": "dialpad-key", "client_id": "doshii-client-id",
    "handle": lambda *event: None, "load_tokens": lambda: {"100": "dashly-token"},
}
# The Redis the deployment guide's blocks name; they run against a local redis-server instead.
DOCS_REDIS = "redis://redis.internal:6379/0"


def _blocks(path: Path, language: str) -> List[Tuple[int, str]]:
    """(line number, dedented text) of every `.. code-block:: <language>` in an RST file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: List[Tuple[int, str]] = []
    for n, line in enumerate(lines):
        head = re.match(r"( *)\.\. code-block:: *(\S+)", line)
        if not head or head.group(2) != language:
            continue
        indent, body = len(head.group(1)), []
        for following in lines[n + 1:]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            body.append(following)
        while body and body[0].strip().startswith(":"):  # the directive's options (:caption: ...)
            body.pop(0)
        text = textwrap.dedent("\n".join(body))
        found.append((n + 1, text.strip("\n") + "\n"))
    return found


PYTHON = [(f"{p.relative_to(ROOT)}:{n}", text) for p in SOURCES for n, text in _blocks(p, "python")]
CONSOLE = [(f"{p.relative_to(ROOT)}:{n}", text) for p in SOURCES for language in ("console", "text", "ini")
           for n, text in _blocks(p, language)]  # shell sessions, crontabs, systemd units


class _Served:
    """One vendor's local server and how a documentation block's client meets it."""

    def __init__(self, server: Any, options: Callable[[Any], Dict[str, Any]], publish: Callable[[Any], None]) -> None:
        self.server, self.options, self.publish = server, options, publish


SERVED: Dict[str, Callable[[], _Served]] = {
    "DashlyClient": lambda: _Served(
        DashlyServer(tokens={"...", "dashly-token", "your-dashly-token"}), lambda s: {"url": s.url},
        lambda s: s.publish(["conversation_reply.100", "c.1"], {"conversation": 42, "text": "hi"})),
    "VoxsigClient": lambda: _Served(
        VoxsigServer(users={"...": (7, [1])}), lambda s: {"url": s.url},
        lambda s: (s.publish("account_1", "conversation.typing_on", {"user": {"id": 2, "name": "Ann"}}),
                   s.publish("account_1", "message.created", {"id": 1, "content": "hi", "message_type": 0}))),
    "QuickMeetClient": lambda: _Served(
        QuickMeetServer(users={"ann": ("...", "ann-id"), "bob": ("bob-password", "bob-id")}),
        lambda s: {"url": s.url}, lambda s: s.publish("GENERAL", "hi ann", user="bob")),
    "DialpadClient": lambda: _Served(
        DialpadServer(api_keys={"dialpad-key"}), lambda s: {"url": s.url},
        lambda s: s.publish(call_event("ringing"), route=True)),
    "DoshiiClient": lambda: _Served(
        DoshiiServer(client_ids={"doshii-client-id", "client-id"}), lambda s: {"url": s.url, "rest_url": s.rest_url},
        lambda s: [s.publish(*event) for event in SAMPLE_EVENTS]),
}


@contextlib.contextmanager
def _local(name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[List[rtsync.Event]]:
    """Serve `name`'s vendor and point every `rtsync.<name>(...)` of the block at it; yields what clients got."""
    served = SERVED[name]()
    original = getattr(rtsync, name)
    got: List[rtsync.Event] = []
    clients: List[Any] = []

    class Local(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("environment", None)
            super().__init__(*args, **{**kwargs, **served.options(served.server), "backoff": FAST})
            self.on("*", got.append)
            clients.append(self)

        def run_forever(self) -> None:
            """Run until the server's events were delivered: what Ctrl-C would end, in a reader's terminal."""
            done = threading.Event()
            self.on("*", lambda e: done.set() if not e.name.startswith("rtsync.") else None)
            with self:
                # Publish until one arrives: a long poll is "connected" only once its first request is
                # answered, and events published before a fresh client's first request are not its own.
                for _ in range(30):
                    if self.error is not None:
                        raise self.error
                    served.publish(served.server)
                    if done.wait(0.5):
                        return
                raise AssertionError(f"no event reached the client: {[e.name for e in got]}")

    with served.server:
        monkeypatch.setattr(rtsync, name, Local)
        yield got
        for client in clients:
            client.stop()


@contextlib.contextmanager
def _redis(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """For a block that names the docs' Redis: a local redis-server, and a Fleet whose
    `run_forever()` returns once its first account's client delivered an event."""
    if DOCS_REDIS not in code:
        yield code
        return
    from tests.redis.conftest import RedisServer

    server = RedisServer(str(tmp_path))
    original = rtsync.Fleet

    class Fleet(original):  # type: ignore[misc, valid-type]
        def run_forever(self) -> None:
            with contextlib.ExitStack() as stack:
                stack.callback(self.stop)
                self.start()
                for _ in range(60):
                    for client in self.clients.values():
                        client.run_forever()  # the docs' client: returns once an event arrived
                        return
                    threading.Event().wait(0.25)
                raise AssertionError("the fleet claimed no account")

    monkeypatch.setattr(rtsync, "Fleet", Fleet)
    try:
        yield code.replace(DOCS_REDIS, server.url)
    finally:
        server.stop()


@pytest.mark.parametrize("where, code", PYTHON, ids=[w for w, _ in PYTHON])
def test_python_block_runs(where: str, code: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # a block's checkpoint files land here
    with _redis(code, tmp_path, monkeypatch) as code:
        _run_block(where, code, monkeypatch)


def _run_block(where: str, code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    namespace = dict(NAMESPACE, __name__="__docs__")
    compiled = compile(code, where, "exec")
    used = [name for name in SERVED if f"rtsync.{name}(" in code]
    if not used or "Server(" in code or "MockLink(" in code:  # its own server, or none needed
        exec(compiled, namespace)
        return
    assert len(used) == 1, f"{where}: one vendor per block, please ({used})"
    with _local(used[0], monkeypatch) as got:
        exec(compiled, namespace)
    errors = [e.data for e in got if e.name == "rtsync.error"]
    assert not errors, f"{where}: the block's callbacks failed: {errors}"
    if ".run_forever()" in code:
        assert any(not e.name.startswith("rtsync.") for e in got), f"{where}: no event delivered"


@pytest.mark.parametrize("where, text", CONSOLE, ids=[w for w, _ in CONSOLE])
def test_console_commands_parse(where: str, text: str) -> None:
    """Every `rtsync ...` command shown is valid for today's parser (options and choices included)."""
    checked = 0
    for line in text.replace("\\\n", " ").splitlines():
        found = re.search(r"(?:^|[\s=/])rtsync(\s.*)$", line)  # `$ rtsync`, `ExecStart=/usr/bin/rtsync`, crontab
        if line.lstrip().startswith("#") or not found:
            continue
        command = "rtsync" + found.group(1)
        words = shlex.split(command)
        ends = [i for i, word in enumerate(words) if word in ("|", "&&", ";", "&", ">", ">>")]
        argv = words[1:ends[0]] if ends else words[1:]
        checked += 1
        if "--help" in argv or "--version" in argv:
            continue
        try:
            _parser().parse_args(argv)
        except SystemExit:
            pytest.fail(f"{where}: `{command}` is not a valid rtsync command line")
    if "rtsync " in text and not text.lstrip().startswith("#"):
        assert checked, f"{where}: no rtsync command found, but the block mentions one"


def test_there_are_blocks_to_check() -> None:
    assert len(PYTHON) >= 15 and len(CONSOLE) >= 5


@pytest.mark.parametrize("source", ["README.rst", "docs/cli.rst"])
def test_the_documented_exit_codes_are_the_commands(source: str, capsys: pytest.CaptureFixture) -> None:
    from rtsync.cli import main

    text = (ROOT / source).read_text(encoding="utf-8")
    table = text[text.index("code   meaning"):]
    table = table.split("\n\n")[0]  # to the table's end
    documented = {int(code) for code in re.findall(r"^(\d+) +\S", table, re.M)}
    assert main(["--help"]) == 0
    helped = {int(code) for code in re.findall(r"^  (\d+) +\S", capsys.readouterr().out, re.M)}
    assert documented == helped == {0, 1, 2, 3, 4, 5, 130}
