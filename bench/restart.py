"""Restart time: from `neira serve` starting to `/healthz` answering, with 100,000 cell records and 10,000 organs
(1,000 of them with builds in flight), next to the same start on an empty data dir, in one run.

The data is made by the server itself (one record, one organ) and then cloned in bulk with SQLite, so the rows
are exactly what neira writes. Usage: `python bench/restart.py [--records 100000] [--organs 10000] [--runs 5]`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import ROOT, save  # noqa: E402
from api_load import TOKEN, free_port  # noqa: E402

NEIRA = str(Path(sys.executable).parent / "neira")
CELL = {"id": "analysis.bench_seed.v1", "version": "1.0.0", "analysis_type": "bench", "links": [], "metadata": {"schema": "v1"}}


def timed_start(data_dir: Path) -> tuple[float, subprocess.Popen, str]:
    """Seconds from process start to the first 200 from /healthz."""
    port = free_port()
    env = {**os.environ, "NEIRA_ADMIN_TOKEN": TOKEN, "ORGANS_BUILDER_STAGE_DELAYS": "60000,60000,60000",
           "NEIRA_ANALYSIS_INTERVAL_MS": "0"}  # start-up is measured, not the canary analysis
    t0 = time.perf_counter()
    proc = subprocess.Popen([NEIRA, "serve", "--port", str(port), "--data-dir", str(data_dir)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=0.2).status_code == 200:
                return time.perf_counter() - t0, proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("server exited during start")
        time.sleep(0.005)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)


def seed(data_dir: Path, records: int, organs: int) -> None:
    """One real record and organ through the API, then clones of them straight into SQLite."""
    _, proc, url = timed_start(data_dir)
    try:
        h = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.post(f"{url}/factory/cells", json={"template": CELL}, headers=h).status_code == 201
        assert httpx.post(f"{url}/organs/build", json={"organ_template": "organ.echo.v1"}, headers=h).status_code == 201
    finally:
        stop(proc)
    db = sqlite3.connect(data_dir / "neira.db")
    db.row_factory = sqlite3.Row
    rec = dict(db.execute("SELECT * FROM cell_records ORDER BY rowid DESC LIMIT 1").fetchone())
    org = dict(db.execute("SELECT * FROM organs ORDER BY rowid DESC LIMIT 1").fetchone())
    now = time.time()
    counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
    first_cell, first_organ = counters["cell"] + 1, counters["organ"] + 1
    rows = []
    for n in range(first_cell, first_cell + records):
        r = dict(rec, id=f"cell-{n}", template_id=f"analysis.bench_{n}.v1")
        rows.append(r)
    _insert(db, "cell_records", rows)
    rows = []
    for n in range(first_organ, first_organ + organs):
        building = n % 10 == 0
        rows.append(dict(org, id=f"organ-{n}", state="canary" if building else "stable",
                         deadline=now + 3600 if building else None, auto=1 if building else org["auto"]))
    _insert(db, "organs", rows)
    db.execute("UPDATE counters SET value = ? WHERE name = 'cell'", (first_cell + records - 1,))
    db.execute("UPDATE counters SET value = ? WHERE name = 'organ'", (first_organ + organs - 1,))
    db.commit()
    db.close()


def _insert(db: sqlite3.Connection, table: str, rows: list[dict]) -> None:
    cols = list(rows[0])
    db.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                   [tuple(r[c] for c in cols) for r in rows])


def measure(data_dir: Path, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        seconds, proc, _ = timed_start(data_dir)
        times.append(seconds)
        stop(proc)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--organs", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        empty, full = Path(tmp) / "empty", Path(tmp) / "full"
        measure(empty, 1)  # first start registers the catalog; measure the restarts after it
        seed(full, args.records, args.organs)
        t_empty = measure(empty, args.runs)
        t_full = measure(full, args.runs)
        _, proc, url = timed_start(full)
        try:
            status = httpx.get(f"{url}/api/neira/introspection/status", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        finally:
            stop(proc)
    result = {
        "records": status["factory"]["records"], "organs": status["organs"]["total"],
        "organs_in_flight": status["organs"]["by_state"].get("canary", 0),
        "empty_start_s": statistics.median(t_empty), "full_start_s": statistics.median(t_full),
        "runs": args.runs, "all_empty_s": t_empty, "all_full_s": t_full,
    }
    result["ratio_full_to_empty"] = round(result["full_start_s"] / result["empty_start_s"], 2)
    print(json.dumps(result, indent=2))
    print("saved", save("restart", result))


if __name__ == "__main__":
    main()
