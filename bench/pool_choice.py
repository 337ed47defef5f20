"""Threads or processes for the run pool: the cost of one trivial run on each, and what a runaway CPU-bound
implementation does to the event loop on each (how late a 1 ms timer fires while it spins).
Usage: `python bench/pool_choice.py`."""

from __future__ import annotations

import asyncio
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import ROOT, save, summary  # noqa: E402

sys.path.insert(0, str(ROOT))
from neira.runtime.builtin.text import reverse  # noqa: E402
from neira.runtime.payloads import Text  # noqa: E402
from neira.runtime.pool import Deadline, Pool  # noqa: E402
from neira.runtime.registry import NoParams  # noqa: E402
from neira.runtime.worker import Job, run_steps  # noqa: E402
from tests.runtime.doubles import spin  # noqa: E402

N = 3000


async def timer_lateness(seconds: float) -> dict[str, float]:
    """How late (ms) a 1 ms sleep wakes up, sampled for `seconds`."""
    late = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.perf_counter()
        await asyncio.sleep(0.001)
        late.append((time.perf_counter() - t) * 1000 - 1)
    return {k: round(v, 3) for k, v in summary(late).items()}


async def main() -> None:
    job = Job(((reverse, NoParams()),), Text(text="hello world"))
    loop = asyncio.get_running_loop()
    threads = ThreadPoolExecutor(2)
    pool = Pool(2, 64)
    await pool.run(job, 5)  # start the workers
    out: dict[str, object] = {}
    for name, call in (("thread", lambda: loop.run_in_executor(threads, run_steps, job)), ("process", lambda: pool.run(job, 5))):
        times = []
        for _ in range(N):
            t = time.perf_counter()
            await call()
            times.append((time.perf_counter() - t) * 1e6)
        out[f"{name}_trivial_run_us"] = {k: round(v, 1) for k, v in summary(times).items()}
    out["loop_idle_ms"] = await timer_lateness(1.0)
    spinning = Job(((spin, NoParams()),), Text(text="x"))
    # a 1 s deadline; the loop is sampled while the runaway spins and for 2 s after its deadline
    killed = asyncio.ensure_future(pool.run(spinning, 1.0))
    out["process_runaway_spinning_ms"] = await timer_lateness(0.9)
    try:
        await killed
    except Deadline:
        out["process_runaway"] = "killed at its deadline, worker replaced"
    out["process_runaway_after_deadline_ms"] = await timer_lateness(2.0)
    runaway = loop.run_in_executor(threads, run_steps, spinning)
    try:
        await asyncio.wait_for(asyncio.shield(runaway), 1.0)
    except TimeoutError:
        out["thread_runaway"] = "still running after its deadline: a thread cannot be stopped"
    out["thread_runaway_after_deadline_ms"] = await timer_lateness(2.0)
    print(out)
    print(save("pool_choice", out))
    await pool.close()
    runaway.cancel()
    threads.shutdown(wait=False, cancel_futures=True)
    import os
    os._exit(0)  # the runaway thread would keep the process alive for its 60 s


if __name__ == "__main__":
    asyncio.run(main())
