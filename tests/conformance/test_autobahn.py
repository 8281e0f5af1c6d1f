"""WebSocket conformance: the Autobahn|Testsuite client cases 1.* to 10.* against rtsync's link.

`wstest -m fuzzingserver` (Python 2.7, installed by .ci/setup.d/autobahn.sh into
/opt/rtsync-autobahn/venv27, or wherever RTSYNC_WSTEST points) plays the server; an in-process
driver opens one rtsync.wire.WebSocketLink per case and echoes every message back until the server
closes. The test fails when any case is FAILED or closes uncleanly (behaviorClose other than OK or
INFORMATIONAL). Skips locally without wstest and fails under CI=true.

Run it alone with `python3 -m pytest -q tests/conformance`; the reports (HTML too) are left in the
test's tmp_path (`reports/index.html`).
"""

from __future__ import annotations

import collections
import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from rtsync.errors import RtsyncError
from rtsync.sansio import Handshake
from rtsync.wire import Closed, WebSocketLink
from tests.conftest import need

AGENT = "rtsync"
CASES = [f"{n}.*" for n in range(1, 11)]
DEFAULT_WSTEST = "/opt/rtsync-autobahn/venv27/bin/wstest"
MAX_MESSAGE = 64 * 1024 * 1024  # 9.* sends messages of up to 16 MiB
CASE_LIMIT = 120.0  # seconds one case may take before the driver gives up on it
RUN_LIMIT = 780.0  # seconds for every case together (the pytest timeout is 900)
CLEAN_CLOSE = ("OK", "INFORMATIONAL")


def _wstest() -> Optional[str]:
    path = os.environ.get("RTSYNC_WSTEST") or DEFAULT_WSTEST
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"wstest exited with {proc.returncode} before listening:\n{_tail(log)}", pytrace=False)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"wstest did not listen on port {port} within {timeout:.0f} s:\n{_tail(log)}", pytrace=False)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _session(url: str, echo: bool, limit: float = CASE_LIMIT) -> List[str]:
    """Open a link to `url`; echo every message (when `echo`) until the server's close or a failure.

    Returns the text messages received (getCaseCount answers with one).
    """
    texts: List[str] = []
    link = WebSocketLink(Handshake(url=url), timeout=10.0, max_message_size=MAX_MESSAGE, verify=True)
    deadline = time.monotonic() + limit
    try:
        link.connect()
        while time.monotonic() < deadline:
            for frame in link.recv(5.0):
                if isinstance(frame, str):
                    texts.append(frame)
                    if echo:
                        link.send_text(frame)
                elif isinstance(frame, bytes):
                    if echo:
                        link.send_binary(frame)
                elif isinstance(frame, Closed):
                    return texts
                # anything else (control-frame notices, skipped-oversize reports) is ignored
    except RtsyncError:
        pass  # the link failed (or refused the server's frames): the case is over for us
    finally:
        link.close()
    return texts


def _case_count(base: str) -> int:
    texts = _session(f"{base}/getCaseCount", echo=False, limit=30.0)
    assert texts, "wstest's /getCaseCount sent no count"
    return int(json.loads(texts[0]))


def _load_results(outdir: Path) -> Dict[str, dict]:
    index = outdir / "index.json"
    if not index.exists():
        return {}
    return json.loads(index.read_text()).get(AGENT, {})


def _case_key(case_id: str) -> tuple:
    return tuple(int(part) for part in case_id.split("."))


def _detail(outdir: Path, case_id: str, result: dict) -> str:
    """One line for an offending case: its verdicts, description and what Autobahn says went wrong."""
    line = f"{case_id}: behavior={result.get('behavior')} behaviorClose={result.get('behaviorClose')}"
    line += f" remoteCloseCode={result.get('remoteCloseCode')}"
    try:
        report = json.loads((outdir / result["reportfile"]).read_text())
    except (KeyError, OSError, ValueError):
        return line
    for key in ("description", "result", "resultClose"):
        text = " ".join(str(report.get(key) or "").split())
        if text:
            line += f"\n    {key}: {text[:300]}"
    return line


@pytest.mark.timeout(900)
def test_autobahn_client_cases_1_to_10(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    wstest = _wstest()
    need(wstest is not None, f"Autobahn wstest not found (RTSYNC_WSTEST or {DEFAULT_WSTEST}); "
         "install it with .ci/setup.d/autobahn.sh")

    port = _free_port()
    base = f"ws://127.0.0.1:{port}"
    outdir = tmp_path / "reports"
    spec = {
        "url": base,
        "outdir": str(outdir),
        "cases": CASES,
        "exclude-cases": ["12.*", "13.*"],
        "exclude-agent-cases": {},
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec, indent=2))
    log = tmp_path / "wstest.log"

    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(wstest), "-m", "fuzzingserver", "-s", "spec.json"],
            cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(port, proc, log)
        count = _case_count(base)
        assert count > 0, "wstest has no cases to run"
        unrun: List[int] = []
        for n in range(1, count + 1):
            left = RUN_LIMIT - (time.monotonic() - started)
            if left <= 0:
                unrun = list(range(n, count + 1))
                break
            _session(f"{base}/runCase?case={n}&agent={AGENT}", echo=True, limit=min(CASE_LIMIT, left))
        results: Dict[str, dict] = {}
        for _ in range(3):  # the server records a case when its TCP connection ends: allow a moment
            _session(f"{base}/updateReports?agent={AGENT}", echo=False, limit=60.0)
            results = _load_results(outdir)
            if len(results) >= count - len(unrun):
                break
            time.sleep(1.0)
    finally:
        proc.kill()
        proc.wait(10)
    elapsed = time.monotonic() - started

    behaviors = collections.Counter(r.get("behavior") for r in results.values())
    closes = collections.Counter(r.get("behaviorClose") for r in results.values())
    unclean = sum(n for verdict, n in closes.items() if verdict not in CLEAN_CLOSE)
    summary = (
        f"Autobahn client cases 1-10: {len(results)}/{count} run in {elapsed:.0f} s; behavior "
        + ", ".join(f"{k}={v}" for k, v in sorted(behaviors.items()))
        + "; behaviorClose " + ", ".join(f"{k}={v}" for k, v in sorted(closes.items()))
        + f"; unclean closes={unclean}"
    )
    with capsys.disabled():
        print(f"\n{summary}")

    offenders = sorted(
        (case_id for case_id, r in results.items()
         if r.get("behavior") == "FAILED" or r.get("behaviorClose") not in CLEAN_CLOSE),
        key=_case_key,
    )
    problems = [_detail(outdir, case_id, results[case_id]) for case_id in offenders]
    if unrun:
        problems.append(f"cases {unrun[0]}..{unrun[-1]} not run: the run exceeded {RUN_LIMIT:.0f} s")
    if len(results) < count - len(unrun):
        problems.append(f"only {len(results)} of {count - len(unrun)} cases are in index.json:\n{_tail(log)}")
    if problems:
        pytest.fail(f"{summary}\n" + "\n".join(problems) + f"\n(reports in {outdir})", pytrace=False)
