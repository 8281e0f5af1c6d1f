"""Cron-style use: `poll_once()` in fresh processes with a FileCheckpoint receives every message exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List

import pytest

import rtsync
from rtsync.testing.dashly import DashlyServer

CHANNELS = ["conversation_reply.7", "conversation.7"]

RUN = """
import json, sys, rtsync
client = rtsync.DashlyClient("tok", {channels!r}, transport="shortpoll", url={url!r},
                             checkpoint=rtsync.FileCheckpoint({path!r}))
seen = []
client.on("conversation*", lambda e: seen.append([e.channel, e.data["n"]]))
events = client.poll_once()
print(json.dumps(seen))
"""


@pytest.fixture
def server() -> Iterator[DashlyServer]:
    with DashlyServer(tokens={"tok"}) as s:
        yield s


def run_once(server: DashlyServer, path: Path) -> List[list]:
    code = RUN.format(channels=CHANNELS, url=server.url, path=str(path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_cron_runs_receive_everything_exactly_once(server: DashlyServer, tmp_path: Path) -> None:
    path = tmp_path / "dashly.cursor"
    assert run_once(server, path) == []  # the first run only records the server's time
    assert path.exists()
    received: List[list] = []
    n = 0
    for batch in (3, 0, 5, 1, 4):
        for _ in range(batch):
            server.publish(CHANNELS[n % 2], {"n": n})
            n += 1
        received.extend(run_once(server, path))
    assert sorted(r[1] for r in received) == list(range(n))
    for ch in CHANNELS:  # per-channel order preserved
        mine = [r[1] for r in received if r[0] == ch]
        assert mine == sorted(mine)


def test_poll_once_in_process_returns_events_and_saves(server: DashlyServer, tmp_path: Path) -> None:
    cp = rtsync.FileCheckpoint(tmp_path / "c.json")
    c = rtsync.DashlyClient("tok", channels=CHANNELS, url=server.url, checkpoint=cp)
    assert c.poll_once() == []
    server.publish(CHANNELS[0], {"n": 1})
    events = c.poll_once()
    assert [e.data for e in events] == [{"n": 1}]
    saved = cp.load()
    assert saved and saved["cursor"]["tag"] == events[0].tag


def test_poll_once_with_a_bad_token_raises(server: DashlyServer, tmp_path: Path) -> None:
    c = rtsync.DashlyClient("nope", channels=CHANNELS, url=server.url, checkpoint=rtsync.FileCheckpoint(tmp_path / "x"))
    with pytest.raises(rtsync.AuthenticationError):
        c.poll_once()


def test_checkpoint_file_is_atomic_and_validated(tmp_path: Path) -> None:
    cp = rtsync.FileCheckpoint(tmp_path / "sub" / "state.json")
    assert cp.load() is None
    cp.save({"cursor": {"time": "Mon, 23 Nov 2026 03:19:06 GMT", "tag": 3}})
    assert cp.load() == {"cursor": {"time": "Mon, 23 Nov 2026 03:19:06 GMT", "tag": 3}}
    assert [p.name for p in cp.path.parent.iterdir()] == ["state.json"]  # no temp files left
    cp.path.write_text("{torn")
    with pytest.raises(rtsync.ConfigurationError, match="not valid JSON"):
        cp.load()
    cp.path.write_text('{"cursor": {"tag": 1}}')
    with pytest.raises(rtsync.ConfigurationError, match="not a Dashly cursor"):
        rtsync.DashlyClient("tok", channels=["c"], checkpoint=cp)
