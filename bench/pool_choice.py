"""Threads or processes for the run pool: the cost of one trivial run on each, and what a runaway CPU-bound
implementation does to the event loop on each (how late a 1 ms timer fires while it spins); and the same two
questions for the voice organ's eSpeak NG steps (text → phonemes → speech), whose work is native calls that
release the GIL: µs per run over calling them directly, and the timer's lateness while two callers keep
them busy on each.
Usage: `python bench/pool_choice.py`."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
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
VOICE_RUNS = 400


def voice_job() -> Job:
    """The voice organ's pool segment (phonemes, speech) on the normalised «Привет, мир», as its pathway binds it."""
    import json

    from neira.catalog import parse_cell
    from neira.runtime import builtin_registry
    from neira.runtime.backends import AdapterBackend

    organ = json.loads((ROOT / "examples" / "organs" / "organ.voice.v1.json").read_text())
    backend = AdapterBackend(builtin_registry())
    steps = [backend.bind(parse_cell(json.loads((ROOT / "examples" / "cells" / f"{c}.json").read_text())), None)
             for c in organ["pathways"][0]["cells"]]
    normal = run_steps(Job(((steps[0].impl.fn, steps[0].params),), Text(text="Привет, мир")))[0].output
    assert normal is not None
    return Job(tuple((s.impl.fn, s.params) for s in steps[1:]), normal)


async def voice(pool: Pool, threads: ThreadPoolExecutor) -> dict[str, object]:
    """The eSpeak steps on a thread and on a worker: per run over direct (interleaved, each after a direct
    call), and the loop's timer lateness while two callers run them back to back on each."""
    loop = asyncio.get_running_loop()
    job = voice_job()
    run_steps(job)
    calls = {"thread": lambda: loop.run_in_executor(threads, run_steps, job), "process": lambda: pool.run(job, 5)}
    for call in calls.values():
        await call()
    times: dict[str, list[float]] = {"direct": [], "thread": [], "process": []}
    for i in range(VOICE_RUNS):
        for name in (("thread", "process") if i % 2 else ("process", "thread")):
            t = time.perf_counter()
            run_steps(job)
            times["direct"].append((time.perf_counter() - t) * 1e6)
            t = time.perf_counter()
            await calls[name]()
            times[name].append((time.perf_counter() - t) * 1e6)
    direct = summary(times["direct"])["p50"]
    out: dict[str, object] = {"voice_direct_us": round(direct, 1)}
    for name in ("thread", "process"):
        out[f"voice_{name}_over_direct_us"] = round(summary(times[name])["p50"] - direct, 1)
    for name, call in calls.items():
        stop = asyncio.Event()
        busy = [asyncio.ensure_future(keep_busy(call, stop)) for _ in range(2)]
        out[f"voice_{name}_busy_loop_ms"] = await timer_lateness(2.0)
        stop.set()
        out[f"voice_{name}_busy_runs_per_s"] = round(sum(await asyncio.gather(*busy)) / 2.0)
    return out


async def keep_busy(call: Callable[[], Awaitable[object]], stop: asyncio.Event) -> int:
    """Runs `call` back to back until `stop`; how many it ran."""
    n = 0
    while not stop.is_set():
        await call()
        n += 1
    return n


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
    out.update(await voice(pool, threads))
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
