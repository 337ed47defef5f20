"""`make bench`: every benchmark, one after the other, each in its own process; results land in
docs/bench-results/*.json and are summarised in docs/benchmarks.md by hand (with the machine's load noted).

Usage: `python bench/run_all.py [--quick]` (quick: shorter runs, for a smoke test of the harness; its results
go to a temporary directory, never over docs/bench-results/).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PY = sys.executable


def steps(quick: bool, results: Path) -> list[list[str]]:
    return [
        [PY, "bench/parse.py", "--rounds", "20" if quick else "200", "--json", str(results / "parse.json")],
        [PY, "bench/asgi_cpu.py", *(["--n", "200", "--rounds", "2"] if quick else [])],
        [PY, "bench/organs_scale.py", "--n", "1000", *([] if quick else ["--n", "10000"]), "--repeat", "1" if quick else "3", "--save"],
        [PY, "bench/api_load.py", *(["--duration", "1", "--rounds", "1"] if quick else [])],
        [PY, "bench/ws_fanout.py", *(["--subscribers", "100", "--rounds", "5"] if quick else [])],
        [PY, "bench/restart.py", *(["--records", "10000", "--organs", "1000", "--runs", "1"] if quick else [])],
        [PY, "bench/runs.py", *(["--duration", "1", "--n", "200"] if quick else [])],
        [PY, "bench/pool_choice.py"],
        [PY, "bench/sandbox.py", *(["--n", "50"] if quick else [])],
        [PY, "bench/apply.py", *(["--n", "50"] if quick else [])],
        [PY, "bench/data_growth.py", *(["--n", "20", "--records", "200", "--organs", "200", "--templates", "30"] if quick else [])],
        [PY, "bench/analysis.py", *(["--organs", "100", "--seconds", "5"] if quick else [])],
        [PY, "bench/shadow.py", *(["--duration", "1", "--rounds", "1"] if quick else [])],
        [PY, "bench/replicas.py", *(["--builds", "30", "--commands", "10", "--deliveries", "5"] if quick else [])],
    ]


def postgres_missing() -> bool:
    """No PostgreSQL server binaries to start the replica benchmark's throwaway cluster from."""
    sys.path.insert(0, str(BENCH.parent))
    from tests.postgres.cluster import bin_dir

    return bin_dir() is None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("bench: the API benchmark needs wrk (Debian package `wrk`): apt-get install wrk", file=sys.stderr)
        return 2
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:  # a smoke run never overwrites the published results
        results = Path(tmp) if args.quick else BENCH.parent / "docs" / "bench-results"
        env = {**os.environ, "NEIRA_BENCH_RESULTS": str(results)}
        for cmd in steps(args.quick, results):
            print(f"\n=== {' '.join(cmd[1:])}", flush=True)
            if cmd[1] == "bench/replicas.py" and postgres_missing():
                print("skipped: no PostgreSQL server binaries (Debian: apt-get install postgresql)", flush=True)
                continue
            failed += subprocess.run(cmd, cwd=BENCH.parent, env=env).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
