"""A replica of a Dashly listener under a RedisLease and a fenced RedisCheckpoint (run by the failover tests).

Usage: replica.py REDIS_URL DASHLY_URL CHANNEL OUT_FILE TTL. Each delivered message appends
"<pid> <n>" to OUT_FILE; each checkpoint write appends "<pid> save <token> <written>" to
OUT_FILE.saves. With KILL_AT="n1,n2", the first replica to receive message n blocks inside its
callback (the test then kill -9s it) after writing its pid to OUT_FILE.kill-<n>.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

import rtsync
from rtsync.policy import Backoff


def main() -> None:
    redis_url, dashly_url, channel, out, ttl = sys.argv[1:6]
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s {os.getpid()} %(name)s %(levelname)s %(message)s")
    kill_at = {int(n) for n in os.environ.get("KILL_AT", "").split(",") if n}
    pid = os.getpid()
    lease = rtsync.RedisLease(redis_url, "listener", ttl=float(ttl))

    class Recorded(rtsync.RedisCheckpoint):
        def save(self, state: dict) -> bool:  # type: ignore[override]
            written = super().save(state)
            _append(out + ".saves", f"{pid} save {lease.token} {written}\n")
            return written

    checkpoint = Recorded(redis_url, "listener", lease=lease)
    client = rtsync.DashlyClient("test-token", channels=[channel], url=dashly_url, checkpoint=checkpoint,
                                 checkpoint_interval=0, lease=lease, backoff=Backoff(base=0.2, cap=0.5),
                                 ping_interval=1.0, ping_timeout=2.0)

    @client.on(channel)
    def record(event: rtsync.Event) -> None:
        n = int(event.data["n"])
        if n in kill_at:
            marker = f"{out}.kill-{n}"
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.write(fd, str(pid).encode())
                os.close(fd)
                threading.Event().wait()  # killed here, before this message counts as delivered
        _append(out, f"{pid} {n}\n")

    client.on("rtsync.error", lambda e: print(f"{pid} error {e.data['error']}", file=sys.stderr, flush=True))
    client.run_forever()


def _append(path: str, line: str) -> None:
    fd = os.open(path, os.O_CREAT | os.O_APPEND | os.O_WRONLY)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


if __name__ == "__main__":
    main()
