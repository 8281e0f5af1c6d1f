"""Serve one vendor's local test server in its own process (for the benchmarks); prints its base URL."""

from __future__ import annotations

import argparse
import importlib
import logging
import threading

SERVERS = {
    "dashly": ("rtsync.testing.dashly", "DashlyServer", {"tokens": ["bench-token"], "ping_interval": 10}),
    "voxsig": ("rtsync.testing.voxsig", "VoxsigServer", {}),
    "doshii": ("rtsync.testing.doshii", "DoshiiServer", {"client_ids": ["bench-client-id"]}),
    "dialpad": ("rtsync.testing.dialpad", "DialpadServer", {"api_keys": ["bench-key"]}),
    "quickmeet": ("rtsync.testing.quickmeet", "QuickMeetServer", {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("vendor", choices=sorted(SERVERS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    module, name, kwargs = SERVERS[args.vendor]
    server = getattr(importlib.import_module(module), name)(**kwargs).start()
    print(server.http_url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
