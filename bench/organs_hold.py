"""A closed `organs_builder` gate over N builds in flight: what closing and opening it cost, and that every build
still takes every stage once after.

    .venv/bin/python bench/organs_hold.py --n 10000 [--delays 1000,300,300]

Runs the real core (SQLite file in a temp dir). Starts N builds, closes the gate while they are in draft,
holds it for a second (nothing may move), opens it, and reports: the time of each flip (one transaction: the
hold row; on opening, one UPDATE of every deadline and the timer heap remapped), the event loop's longest
stall around the flips, and the time from opening until the last organ is stable.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neira.config import Settings  # noqa: E402
from neira.core import Core  # noqa: E402
from neira.storage import tables  # noqa: E402


async def stalls(stop: asyncio.Event, out: list[float]) -> None:
    """Record how late a 5 ms ticker wakes while the flips run."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(0.005)
        out.append(loop.time() - t - 0.005)


async def stage_count(core: Core, state: str | None = None) -> int:
    e = tables.events.c
    query = select(func.count()).select_from(tables.events).where(e.type == "organ.stage")
    async with core.db.read() as conn:
        return (await conn.execute(query)).scalar() or 0


async def run(n: int, delays: tuple[int, int, int]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        core = Core(Settings(data_dir=tmp, admin_token="bench-admin-token-16", stage_delays_ms=delays))
        await core.start()
        try:
            await asyncio.gather(*[core.organs.build({"organ_template": "organ.echo.v1"}, "admin") for _ in range(n)])
            lags: list[float] = []
            stop = asyncio.Event()
            ticker = asyncio.create_task(stalls(stop, lags))
            t0 = time.perf_counter()
            await core.policy.set_capability("admin", "organs_builder", "disabled")
            close_s = time.perf_counter() - t0
            before = await stage_count(core)
            await asyncio.sleep(max(delays) / 1000 + 1)
            moved = await stage_count(core) - before
            t0 = time.perf_counter()
            await core.policy.set_capability("admin", "organs_builder", "experimental")
            open_s = time.perf_counter() - t0
            stop.set()
            await ticker
            opened = time.perf_counter()
            while await stage_count(core) < 4 * n:
                await asyncio.sleep(0.05)
            return {"n": n, "close_ms": close_s * 1000, "open_ms": open_s * 1000, "moved_while_closed": moved,
                    "max_loop_stall_ms": max(lags, default=0) * 1000, "open_to_all_stable_s": time.perf_counter() - opened,
                    "stage_events": await stage_count(core)}
        finally:
            await core.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--delays", default="1000,300,300")
    args = parser.parse_args()
    delays = tuple(int(x) for x in args.delays.split(","))
    print(asyncio.run(run(args.n, delays)))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
