"""Run one benchmark arm in this process and print its metrics as one JSON line (used by run.py).

Usage: python benchmarks/arm.py <module> <arm> '<json params>'
"""

from __future__ import annotations

import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))


def main() -> None:
    module, arm, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    fn = getattr(__import__(module), "ARMS")[arm]
    result = fn(**params)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
