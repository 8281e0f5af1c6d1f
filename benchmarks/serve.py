"""Serve one vendor's local test server in its own process (for the benchmarks); prints its base URL."""

from __future__ import annotations

import argparse
import importlib
import logging
import threading
from typing import Any

SERVERS = {
    "dashly": ("rtsync.testing.dashly", "DashlyServer", {"tokens": ["bench-token"], "ping_interval": 10}),
    "voxsig": ("rtsync.testing.voxsig", "VoxsigServer", {}),
    "doshii": ("rtsync.testing.doshii", "DoshiiServer", {"client_ids": ["bench-client-id"]}),
    "dialpad": ("rtsync.testing.dialpad", "DialpadServer", {"api_keys": ["bench-key"]}),
    "quickmeet": ("rtsync.testing.quickmeet", "QuickMeetServer", {}),
}


def _dashly_with_bench_blast(cls: Any) -> Any:
    """DashlyServer plus `POST /_bench/blast?id=&n=` whose request body is the message body (a query
    string cannot carry 64 KB): stored and written to WebSocket subscribers at once."""
    from aiohttp import web

    class BenchDashly(cls):  # type: ignore[misc,valid-type]
        def routes(self, app: web.Application) -> None:
            super().routes(app)
            app.router.add_post("/_bench/blast", self._bench_blast)

        async def _bench_blast(self, request: web.Request) -> web.StreamResponse:
            body = await request.text()
            channel, count = request.query["id"], int(request.query["n"])
            store = getattr(self, "_channels", None)  # the store; older servers blasted themselves
            if store is not None:
                store.blast(channel, count, body)
            else:
                self._blast_now(channel, count, body)
            return web.Response(text="ok")

    return BenchDashly


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("vendor", choices=sorted(SERVERS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    module, name, kwargs = SERVERS[args.vendor]
    cls = getattr(importlib.import_module(module), name)
    if args.vendor == "dashly":
        cls = _dashly_with_bench_blast(cls)
    server = cls(**kwargs).start()
    print(f"http://{server.host}:{server.port}", flush=True)  # the base; each suite adds its path
    threading.Event().wait()


if __name__ == "__main__":
    main()
