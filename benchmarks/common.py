"""Shared pieces of the benchmarks: result rows, the table, and the raw websocket-client baselines.

Every `benchmarks/bench_<vendor>.py` exposes `run(quick: bool) -> list[Row]`;
`python benchmarks/run.py` runs them all in one process and prints one table
whose ratios compare rtsync with a baseline measured in the same run.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional, Sequence

import websocket


@dataclass
class Row:
    suite: str  # e.g. "dashly websocket"
    case: str  # e.g. "rtsync on() callback"
    value: float
    unit: str  # "events/s", "ms", "calls/s"
    baseline: Optional[str] = None  # the case this row is compared with
    baseline_value: Optional[float] = None
    higher_is_better: bool = True

    @property
    def ratio(self) -> Optional[float]:
        if not self.baseline_value:
            return None
        if self.higher_is_better:
            return self.value / self.baseline_value
        return self.baseline_value / self.value if self.value else None


def print_table(rows: Sequence[Row], out=None) -> None:
    import sys

    out = out or sys.stdout
    header = f"{'suite':<28} {'case':<44} {'value':>12} {'unit':<9} {'vs':<30} {'ratio':>7}"
    out.write(header + "\n" + "-" * len(header) + "\n")
    for r in rows:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
        value = f"{r.value:>12,.3f}" if r.value < 100 else f"{r.value:>12,.0f}"
        out.write(f"{r.suite:<28} {r.case:<44} {value} {r.unit:<9} {(r.baseline or ''):<30} {ratio:>7}\n")
    out.write("ratio > 1.00x means rtsync is better than the baseline measured in the same run\n")


def raw_loop_rate(
    url: str,
    count: int,
    *,
    skip_utf8_validation: bool = False,
    subprotocols: Optional[List[str]] = None,
    header: Optional[dict] = None,
    origin: Optional[str] = None,
    after_open: Optional[Callable[[websocket.WebSocket], None]] = None,
    is_event: Callable[[object], bool] = lambda msg: True,
    start: Optional[Callable[[], None]] = None,
    decode: Callable[[str], object] = json.loads,
) -> float:
    """Events/s of a plain websocket-client loop (`recv()` + `decode`, `json.loads` by default)
    reading `count` events.

    `start()` tells the server to begin sending (after the socket is open);
    `is_event` filters protocol chatter (pings, confirmations) out of the count.
    """
    ws = websocket.WebSocket(skip_utf8_validation=skip_utf8_validation)
    kwargs = {"subprotocols": subprotocols, "header": header or {}}
    if origin:
        kwargs["origin"] = origin
    ws.connect(url, **kwargs)
    try:
        if after_open:
            after_open(ws)
        if start:
            threading.Thread(target=start, daemon=True).start()
        got = 0
        first = None
        while got < count:
            msg = decode(ws.recv())
            if is_event(msg):
                if first is None:
                    first = time.perf_counter()
                got += 1
        elapsed = time.perf_counter() - (first or time.perf_counter())
        return (count - 1) / elapsed if elapsed > 0 else float("inf")
    finally:
        ws.close()


def percentiles(samples: Iterable[float]) -> tuple:
    """(p50, p99) of `samples`, in the samples' unit."""
    data = sorted(samples)
    if not data:
        return (float("nan"), float("nan"))
    p99 = data[min(len(data) - 1, int(len(data) * 0.99))]
    return (statistics.median(data), p99)


class Server:
    """A vendor's local server in a child process (`benchmarks/serve.py`), so it does not share our GIL."""

    def __init__(self, vendor: str) -> None:
        import pathlib
        import subprocess
        import sys

        here = pathlib.Path(__file__).resolve().parent
        self.proc = subprocess.Popen([sys.executable, str(here / "serve.py"), vendor],
                                     stdout=subprocess.PIPE, text=True)
        self.http_url = self.proc.stdout.readline().strip()
        self.ws_url = self.http_url.replace("http://", "ws://")

    def blast(self, text: str, count: int) -> None:
        """Have the server write `count` pre-encoded frames of `text` (`{n}` numbered) to every WebSocket."""
        self._blast({"text": text, "count": count})

    def blast_texts(self, texts: List[str]) -> None:
        """Have the server write these frames, as they are, to every WebSocket."""
        self._blast({"texts": texts})

    def _blast(self, body: dict) -> None:
        import requests

        requests.post(f"{self.http_url}/_rtsync/blast", json=body, timeout=120)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def client_rate(client, pattern: str, count: int, start: Callable[[], None]) -> float:
    """Events/s of `count` events through `client.on(pattern)`, timed from the first to the last."""
    seen = [0]
    first = [0.0]
    done = threading.Event()

    def on_event(event) -> None:
        if seen[0] == 0:
            first[0] = time.perf_counter()
        seen[0] += 1
        if seen[0] == count:
            done.set()

    client.on(pattern, on_event)
    ready = threading.Event()
    client.on("rtsync.connected", lambda e: ready.set())
    with client:
        if not ready.wait(30):
            raise RuntimeError("client never connected")
        start()
        if not done.wait(300):
            raise RuntimeError(f"only {seen[0]} of {count} events arrived")
        elapsed = time.perf_counter() - first[0]
    return (count - 1) / elapsed


def best_of(runs: int, fn: Callable[[], float]) -> float:
    return max(fn() for _ in range(runs))


def throughput_rows(suite: str, raw: float, raw_skip: float, ours: float) -> List[Row]:
    """The four rows every throughput benchmark reports: both raw loops, and rtsync against each."""
    base, skip = "raw recv()+json.loads", "raw, skip_utf8_validation=True"
    return [
        Row(suite, base, raw, "events/s"),
        Row(suite, skip, raw_skip, "events/s"),
        Row(suite, "rtsync on() callback", ours, "events/s", base, raw),
        Row(suite, "rtsync on() callback", ours, "events/s", skip, raw_skip),
    ]
