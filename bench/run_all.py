"""`make bench`: every benchmark, one after the other, each in its own process; results land in
docs/bench-results/*.json and are summarised in docs/benchmarks.md by hand (with the machine's load noted).

Usage: `python bench/run_all.py [--quick]` (quick: shorter runs, for a smoke test of the harness).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PY = sys.executable


def steps(quick: bool) -> list[list[str]]:
    return [
        [PY, "bench/parse.py", "--rounds", "20" if quick else "200", "--json", "docs/bench-results/parse.json"],
        [PY, "bench/asgi_cpu.py", *(["--n", "200", "--rounds", "2"] if quick else [])],
        [PY, "bench/organs_scale.py", "--n", "1000", *([] if quick else ["--n", "10000"]), "--repeat", "1" if quick else "3", "--save"],
        [PY, "bench/api_load.py", *(["--duration", "1", "--rounds", "1"] if quick else [])],
        [PY, "bench/ws_fanout.py", *(["--subscribers", "100", "--rounds", "5"] if quick else [])],
        [PY, "bench/restart.py", *(["--records", "10000", "--organs", "1000", "--runs", "1"] if quick else [])],
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("bench: the API benchmark needs wrk (Debian package `wrk`): apt-get install wrk", file=sys.stderr)
        return 2
    failed = 0
    for cmd in steps(args.quick):
        print(f"\n=== {' '.join(cmd[1:])}", flush=True)
        failed += subprocess.run(cmd, cwd=BENCH.parent).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
