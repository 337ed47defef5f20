"""Organ builder at scale: N concurrent builds on one core, from the first request to the last `stable`.

    .venv/bin/python bench/organs_scale.py --n 1000 --n 10000 [--delays 50,50,50] [--loop uvloop|asyncio]

Runs the real core (SQLite file in a temp dir, the example catalog, the builder's one scheduler task) and
reports, per N: the time until every build() returned, the wall time until every organ is stable against
the sum of the stage delays, the event loop's lag (a 5 ms ticker's overshoot), and the RSS added per organ
(peak while in flight, and after the builds finished), and the process CPU time over the same span
(the figure to trust when other work shares the core). Pin it to one core with `taskset -c 0`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neira.config import Settings  # noqa: E402
from neira.core import Core  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK_S = 0.005


def rss() -> int:
    """Resident set size now, bytes."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


class LagMonitor:
    """A ticker that sleeps TICK_S and records how late it wakes: the event loop's responsiveness."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.peak_rss = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(TICK_S)
            self.lags.append(loop.time() - t - TICK_S)
            self.peak_rss = max(self.peak_rss, rss())

    def __enter__(self) -> "LagMonitor":
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()

    def summary(self) -> dict[str, float]:
        lags = sorted(self.lags) or [0.0]
        return {
            "lag_p50_ms": statistics.median(lags) * 1000,
            "lag_p99_ms": lags[min(len(lags) - 1, int(len(lags) * 0.99))] * 1000,
            "lag_max_ms": lags[-1] * 1000,
        }


async def run(n: int, delays: tuple[int, int, int], freeze: bool) -> dict[str, float]:
    data = Path(tempfile.mkdtemp(prefix="neira-bench-"))
    # canary analysis off: this measures the builder's timers, where the delays alone decide (docs/evidence.md,
    # "Graduation"); with it on, the examples' hitl organs would wait in canary for a human
    core = Core(Settings(data_dir=str(data), admin_token="bench", stage_delays_ms=delays, analysis_interval_ms=0))
    await core.start()
    try:
        await core.organs.build({"organ_template": "organ.voice.v1"}, "admin")  # warm-up: cells exist, caches filled
        while core.metrics.organs_building._value.get():
            await asyncio.sleep(0.01)
        gc.collect()
        if freeze:  # as `neira serve` does after start-up (api/app.py)
            gc.freeze()
        base_rss = rss()
        body = {"organ_template": "organ.voice.v1"}
        with LagMonitor() as monitor:
            t0, cpu0 = time.perf_counter(), time.process_time()
            tasks = [asyncio.ensure_future(core.organs.build(body, "operator")) for _ in range(n)]
            await asyncio.wait(tasks)
            t_created = time.perf_counter() - t0
            ids = {t.result()[1]["organ_id"] for t in tasks}
            del tasks  # the client's tasks are not the builder's memory
            while core.metrics.organs_building._value.get():
                await asyncio.sleep(0.002)
            t_stable = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
        assert len(ids) == n
        gc.collect()
        after_rss = rss()
        async with core.db.read() as conn:
            from sqlalchemy import func, select

            from neira.storage import tables
            stable = (await conn.execute(select(func.count()).where(tables.organs.c.state == "stable"))).scalar()
        assert stable == n + 1, stable
        total_delay = sum(delays) / 1000
        return {
            "n": n,
            "created_s": t_created,
            "stable_s": t_stable,
        "cpu_s": cpu,
            "delays_s": total_delay,
            "over_delays_s": t_stable - total_delay,
            "ratio": t_stable / total_delay,
            **monitor.summary(),
            "peak_rss_per_organ_kib": (monitor.peak_rss - base_rss) / n / 1024,
            "rss_after_per_organ_kib": (after_rss - base_rss) / n / 1024,
            "db_mib": (data / "neira.db").stat().st_size / 2**20,
        }
    finally:
        await core.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, action="append", help="concurrent builds (repeatable); default 1000 and 10000")
    ap.add_argument("--delays", default="50,50,50", help="stage delays in ms (ORGANS_BUILDER_STAGE_DELAYS)")
    ap.add_argument("--no-gc-freeze", dest="gc_freeze", action="store_false",
                    help="skip gc.freeze() after start-up (neira serve freezes: api/app.py)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per N; the fastest is reported first")
    ap.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop", help="event loop (neira serve uses uvloop)")
    ap.add_argument("--save", action="store_true", help="also write docs/bench-results/organs_scale.json")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)  # one run in this process, JSON out
    args = ap.parse_args()
    delays = tuple(int(x) for x in args.delays.split(","))
    if args.loop == "uvloop":
        import uvloop

        uvloop.install()
    if args.child:
        print(json.dumps(asyncio.run(run(args.child, delays, args.gc_freeze))))  # type: ignore[arg-type]
        return
    print(f"# {platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPUs visible, affinity {sorted(os.sched_getaffinity(0))}, loop {args.loop}, delays {args.delays} ms, "
          f"gc.freeze {'on' if args.gc_freeze else 'off'}")
    results = []
    for n in args.n or [1000, 10000]:
        runs = sorted((child(n, sys.argv[1:]) for _ in range(args.repeat)), key=lambda r: r["stable_s"])
        for r in runs:
            print(report(r), flush=True)
        results.append({"n": n, "runs": runs})
    if args.save:
        from bench._util import save

        path = save("organs_scale", {"command": " ".join(["bench/organs_scale.py", *sys.argv[1:]]), "loop": args.loop,
                                     "delays_ms": list(delays), "gc_freeze": args.gc_freeze,
                                     "affinity": sorted(os.sched_getaffinity(0)), "results": results})
        print(f"# saved {path}")


def child(n: int, argv: list[str]) -> dict[str, float]:
    """One run in a fresh process (and CPU affinity inherited), so RSS is not memory a previous run freed."""
    out = subprocess.run([sys.executable, __file__, *argv, "--child", str(n)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(r: dict[str, float]) -> str:
    """One line of figures."""
    return (
        f"n={r['n']:>6}  created {r['created_s']:.2f}s  all stable {r['stable_s']:.2f}s "
        f"(delays {r['delays_s']:.2f}s, +{r['over_delays_s']:.2f}s, x{r['ratio']:.1f}; CPU {r['cpu_s']:.2f}s)  "
        f"loop lag p50 {r['lag_p50_ms']:.1f} / p99 {r['lag_p99_ms']:.1f} / max {r['lag_max_ms']:.1f} ms  "
        f"RSS/organ peak {r['peak_rss_per_organ_kib']:.2f} KiB, after {r['rss_after_per_organ_kib']:.2f} KiB  "
        f"db {r['db_mib']:.1f} MiB"
    )

if __name__ == "__main__":
    main()
