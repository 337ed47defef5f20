"""Canary analysis at scale (contract §7, issue 12's benchmark), on the real core (SQLite file in a temp dir).

    .venv/bin/python bench/analysis.py [--organs 1000] [--seconds 20]

1. **Time to a verdict with the defaults**: one reverse organ built with the default analysis settings
   (interval 1000 ms, min_runs 20); the time from its first measured run (the first `analysis_runs` row) to its
   first `analysis.verdict` event, and from the start of its build.
2. **Many organs under analysis at once, one core**: N reverse organs held in canary (a long canary stage),
   one run worker, the analysis loop running for `--seconds`. Reports measurements per second and CPU per
   measurement (this process's CPU plus the worker's, divided by the rows stored), and the same per organ run
   of the loop's rounds. The peer in the same run is the cost of the run alone: N direct `probe_organ` calls.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._util import save  # noqa: E402
from neira.config import Settings  # noqa: E402
from neira.core import Core  # noqa: E402
from neira.storage import tables  # noqa: E402

A, E = tables.analysis_runs, tables.events
TOKEN = "bench-admin-token-16"
# Reaches canary at once and stays there for the whole benchmark.
HELD_IN_CANARY = (0, 3_600_000, 3_600_000)


def cpu_s() -> float:
    """CPU seconds of this process and its waited-for children (the run workers, once stopped)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def worker_cpu_s() -> float:
    """CPU seconds of the live run workers, read from /proc (they are not waited for until the pool stops)."""
    total = 0.0
    tick = 100.0
    for child in multiprocessing.active_children():
        pid = child.pid
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


async def time_to_verdict() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        core = Core(Settings(data_dir=tmp, admin_token=TOKEN, run_workers=1, stage_delays_ms=HELD_IN_CANARY))
        await core.start()
        try:
            t0 = time.time()
            _, built = await core.organs.build({"organ_template": "organ.reverse.v1"}, "admin")
            subject = f"organ:{built['organ_id']}"
            deadline = time.monotonic() + 60
            while True:
                async with core.db.read() as conn:
                    verdict = (await conn.execute(select(E.c.at, E.c.data).where(
                        E.c.type == "analysis.verdict", E.c.subject == subject).order_by(E.c.seq).limit(1))).first()
                    first = (await conn.execute(select(func.min(A.c.at)).where(A.c.subject == subject))).scalar()
                if verdict is not None or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.01)
            assert verdict is not None, "no verdict within 60 s"
            at = float(verdict.at if isinstance(verdict.at, (int, float)) else verdict.at.timestamp())
            return {"first_run_to_verdict_ms": round((at - first) * 1000, 1),
                    "build_to_verdict_ms": round((at - t0) * 1000, 1)}
        finally:
            await core.stop()


async def many(n: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        # The loop is started by hand below, after every organ is in canary.
        core = Core(Settings(data_dir=tmp, admin_token=TOKEN, run_workers=1, stage_delays_ms=HELD_IN_CANARY,
                             analysis_interval_ms=0, run_queue=4 * n))
        await core.start()
        try:
            organs = []
            for _ in range(n):
                _, built = await core.organs.build({"organ_template": "organ.reverse.v1"}, "admin")
                organs.append(built["organ_id"])
            while (await core.organs.status(organs[-1]))["state"] != "canary":
                await asyncio.sleep(0.01)
            # The peer: the runs alone, one per organ, as the analysis makes them.
            c0, w0, t0 = cpu_s(), worker_cpu_s(), time.perf_counter()
            for organ in organs:
                await core.runs.probe_organ(organ, "hello world")
            probe_cpu = (cpu_s() - c0) + (worker_cpu_s() - w0)
            probe_wall = time.perf_counter() - t0
            # The analysis: its own loop at the default interval, for `seconds`.
            core.analysis.interval_s = 1.0
            async with core.db.read() as conn:
                rows0 = (await conn.execute(select(func.count()).select_from(A))).scalar() or 0
            c0, w0, t0 = cpu_s(), worker_cpu_s(), time.perf_counter()
            core.analysis.start()
            await asyncio.sleep(seconds)
            await core.analysis.close()
            wall = time.perf_counter() - t0
            used = (cpu_s() - c0) + (worker_cpu_s() - w0)
            async with core.db.read() as conn:
                rows = ((await conn.execute(select(func.count()).select_from(A).where(A.c.stage != "baseline"))).scalar() or 0) - rows0
                measured = (await conn.execute(select(func.count(func.distinct(A.c.subject))))).scalar() or 0
            return {"organs": n, "seconds": round(wall, 1), "measurements": rows, "organs_measured": measured,
                    "measurements_per_s": round(rows / wall, 1), "cpu_per_measurement_us": round(used / max(rows, 1) * 1e6, 1),
                    "probe_cpu_per_run_us": round(probe_cpu / n * 1e6, 1), "probe_wall_per_run_us": round(probe_wall / n * 1e6, 1),
                    "cpu_share_of_one_core": round(used / wall, 3)}
        finally:
            await core.stop()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--organs", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args()
    verdict = await time_to_verdict()
    print("time to a verdict (defaults):", verdict, flush=True)
    scale = await many(args.organs, args.seconds)
    print("under analysis at once:", scale, flush=True)
    print(save("analysis", {"time_to_verdict": verdict, "many": scale}))


if __name__ == "__main__":
    asyncio.run(main())
