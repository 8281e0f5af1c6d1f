"""Shared pieces of the benchmarks: suites and arms, the rotated-rounds runner, the table, and the baselines.

A suite is a set of arms (rtsync and its baselines) measured on the same
server; each arm runs in its own process (`arm.py`), the order of the arms
rotates from round to round, and every ratio is computed within a round and
then the median taken, so a loaded machine hits both sides of a ratio alike.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

HERE = pathlib.Path(__file__).resolve().parent


@dataclass
class Compare:
    """One ratio row: `arm` against `baseline` on `metric` (ratio > 1 means `arm` is better)."""

    arm: str
    baseline: str
    metric: str
    higher_is_better: bool = True
    target: Optional[float] = None  # the ratio the issue asks for, shown beside the result


@dataclass
class Suite:
    name: str
    module: str  # bench_<x> module holding the arms
    arms: List[str]
    params: Dict[str, Any]
    compares: List[Compare]
    server: Optional[str] = None  # a serve.py server shared by the arms (its URL is passed as `url`)
    rounds: int = 3
    units: Dict[str, str] = field(default_factory=dict)  # metric -> unit
    timeout: float = 180.0


@dataclass
class Row:
    suite: str
    case: str
    value: float
    unit: str
    baseline: str = ""
    ratio: Optional[float] = None
    target: Optional[float] = None


def run_suite(suite: Suite, quick: bool) -> List[Row]:
    """Run the suite's arms in rotated rounds, each in a fresh process; return value and ratio rows."""
    server = ServerProcess(suite.server) if suite.server else None
    params = dict(suite.params, quick=quick)
    if server is not None:
        params["url"] = server.http_url
    results: Dict[str, List[Dict[str, float]]] = {arm: [] for arm in suite.arms}
    rounds = 1 if quick else suite.rounds
    try:
        for r in range(rounds):
            order = suite.arms[r % len(suite.arms):] + suite.arms[:r % len(suite.arms)]
            per_round: Dict[str, Dict[str, float]] = {}
            for arm in order:
                per_round[arm] = run_arm(suite.module, arm, params, suite.timeout)
            for arm in suite.arms:
                results[arm].append(per_round[arm])
    finally:
        if server is not None:
            server.close()
    rows: List[Row] = []
    for arm in suite.arms:
        metrics = sorted({m for res in results[arm] for m in res})
        for metric in metrics:
            values = [res[metric] for res in results[arm] if metric in res]
            rows.append(Row(suite.name, f"{arm}: {metric}", statistics.median(values), suite.units.get(metric, "")))
    for cmp in suite.compares:
        ratios = []
        for mine, base in zip(results[cmp.arm], results[cmp.baseline]):
            if cmp.metric in mine and cmp.metric in base and mine[cmp.metric] and base[cmp.metric]:
                a, b = mine[cmp.metric], base[cmp.metric]
                ratios.append(a / b if cmp.higher_is_better else b / a)
        if ratios:
            value = statistics.median(r for r in (res.get(cmp.metric) for res in results[cmp.arm]) if r is not None)
            rows.append(Row(suite.name, f"{cmp.arm}: {cmp.metric}", value, suite.units.get(cmp.metric, ""),
                            cmp.baseline, statistics.median(ratios), cmp.target))
    return rows


def run_arm(module: str, arm: str, params: Dict[str, Any], timeout: float) -> Dict[str, float]:
    """One arm in its own process: `arm.py` prints its metrics as one JSON line last."""
    cmd = [sys.executable, str(HERE / "arm.py"), module, arm, json.dumps(params)]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  {module}.{arm}: timed out after {timeout:g} s", file=sys.stderr, flush=True)
        return {}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip().splitlines()[-3:]
        print(f"  {module}.{arm}: failed ({proc.returncode}): {' | '.join(tail)}", file=sys.stderr, flush=True)
        return {}
    result = json.loads(lines[-1])
    print(f"  {module}.{arm}: {result}", file=sys.stderr, flush=True)
    return {k: float(v) for k, v in result.items() if v is not None}


def print_table(rows: Sequence[Row], out: Any = None) -> None:
    out = out or sys.stdout
    header = f"{'suite':<30} {'case':<46} {'value':>12} {'unit':<9} {'vs':<34} {'ratio':>7} {'target':>7}"
    out.write(header + "\n" + "-" * len(header) + "\n")
    for r in rows:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
        target = f">={r.target:.2f}" if r.target is not None else ""
        value = f"{r.value:>12,.3f}" if abs(r.value) < 100 else f"{r.value:>12,.0f}"
        out.write(f"{r.suite:<30} {r.case:<46} {value} {r.unit:<9} {r.baseline:<34} {ratio:>7} {target:>7}\n")
    out.write("ratio: median over rounds of the within-round ratio; > 1.00x means the arm beats the baseline\n")


class ServerProcess:
    """A vendor's local server in a child process (`serve.py`), so it does not share the arms' GIL."""

    def __init__(self, vendor: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(HERE / "serve.py"), vendor],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.http_url = self.proc.stdout.readline().strip()
        if not self.http_url:
            raise RuntimeError(f"the {vendor} server did not start")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# -- helpers used inside arms ------------------------------------------------

def post(url: str, **kwargs: Any) -> Any:
    import requests

    response = requests.post(url, timeout=120, **kwargs)
    response.raise_for_status()
    return response


def blast(http_url: str, text: str, count: int) -> None:
    """Have a generic local server write `count` pre-encoded frames of `text` (`{n}` numbered) to every socket."""
    post(f"{http_url}/_rtsync/blast", json={"text": text, "count": count})


def cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Counter:
    """Counts events from any thread; `first` is when the first arrived, `done` set at `target`."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.done = threading.Event()

    def hit(self) -> None:
        if self.count == 0:
            self.first = time.perf_counter()
        self.count += 1
        if self.count == self.target:
            self.last = time.perf_counter()
            self.done.set()

    def rate(self, timeout: float = 120.0) -> float:
        if not self.done.wait(timeout):
            raise RuntimeError(f"only {self.count} of {self.target} events arrived")
        return (self.target - 1) / (self.last - self.first)


def client_rate(client: Any, pattern: str, n: int, send: Callable[[], None]) -> Dict[str, float]:
    """Events/s of an rtsync client's `on(pattern)` callback: connect, `send()` n events, count them."""
    counter = Counter(n)
    client.on(pattern, lambda e: counter.hit())
    with client:
        if not client.wait_connected(30):
            raise RuntimeError("not connected")
        send()
        return {"events/s": counter.rate()}


def raw_loop(ws: Any, counter: Counter, decode: Callable[[Any], Any], is_event: Callable[[Any], bool]) -> None:
    """The plain websocket-client loop: `recv()` + decode until `counter` is full."""
    while not counter.done.is_set():
        msg = decode(ws.recv())
        if is_event(msg):
            counter.hit()


def limit_reader(sock: socket.socket, counter: Counter, is_event: Callable[[Any], bool]) -> None:
    """The limit: `recv_into` one big buffer, cut unmasked server frames by hand, `orjson.loads` each text.

    No UTF-8 pass of its own (orjson validates), no fragments, control frames skipped: the least
    work a Python reader of this stream can do.
    """
    import orjson

    loads = orjson.loads
    buf = bytearray(8 * 1024 * 1024)
    view = memoryview(buf)
    have = 0
    while not counter.done.is_set():
        got = sock.recv_into(view[have:])
        if not got:
            return
        have += got
        pos = 0
        while have - pos >= 2:
            b0, n = buf[pos], buf[pos + 1] & 0x7F
            head = 2
            if n == 126:
                if have - pos < 4:
                    break
                n, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif n == 127:
                if have - pos < 10:
                    break
                n, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            end = pos + head + n
            if end > have:
                break
            if b0 == 0x81 and is_event(loads(view[pos + head:end])):
                counter.hit()
            pos = end
        if pos:
            view[:have - pos] = view[pos:have]
            have -= pos


def env_info() -> str:
    load = os.getloadavg()
    return f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f}"


def pad_to(size: int, make: Callable[[str], str]) -> str:
    """`make(padding)` grown so that the text is about `size` bytes."""
    base = make("")
    return make("x" * max(0, size - len(base)))
