"""Run every benchmark in benchmarks/bench_*.py in one process and print one table.

Usage: python benchmarks/run.py [--quick] [vendor ...]
"""

from __future__ import annotations

import argparse
import importlib
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from common import print_table  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke check)")
    parser.add_argument("vendors", nargs="*", help="only these (dashly, voxsig, ...)")
    args = parser.parse_args()
    here = pathlib.Path(__file__).resolve().parent
    rows = []
    for path in sorted(here.glob("bench_*.py")):
        name = path.stem[len("bench_"):]
        if args.vendors and name not in args.vendors:
            continue
        module = importlib.import_module(path.stem)
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows.extend(module.run(args.quick))
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
