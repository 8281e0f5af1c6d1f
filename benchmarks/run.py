"""Run every benchmark suite (benchmarks/bench_*.py) and print one table of values and within-round ratios.

Usage: python benchmarks/run.py [--quick] [--list] [filter ...]

Each arm runs in its own process; the arms of a suite are run in rotated
order, round after round, and each ratio is the median of the ratios taken
within a round. A filter keeps the suites whose name contains it.
"""

from __future__ import annotations

import argparse
import importlib
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from common import env_info, print_table, run_suite  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round of smaller runs (a smoke check)")
    parser.add_argument("--list", action="store_true", help="list the suites and exit")
    parser.add_argument("filters", nargs="*", help="only suites whose name contains one of these")
    args = parser.parse_args()
    here = pathlib.Path(__file__).resolve().parent
    suites = []
    for path in sorted(here.glob("bench_*.py")):
        suites.extend(importlib.import_module(path.stem).suites())
    suites = [s for s in suites if not args.filters or any(f in s.name for f in args.filters)]
    if args.list:
        for suite in suites:
            print(f"{suite.name}: {', '.join(suite.arms)}")
        return 0
    rows = []
    started = time.monotonic()
    for suite in suites:
        print(f"running {suite.name} ...", file=sys.stderr, flush=True)
        rows.extend(run_suite(suite, args.quick))
    print(f"# {env_info()}; {time.monotonic() - started:.0f} s")
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
