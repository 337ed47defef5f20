"""The worker pool's wire: a job's steps are sent to a worker once and named by a key afterwards, payloads and
answers of any size cross whole, and a worker that dies while idle fails only the next run."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal

import pytest

from neira.runtime.payloads import Audio, Text
from neira.runtime.pool import Pool
from neira.runtime.worker import KNOWN_STEPS, Job
from tests.runtime.doubles import ListParams, SuffixParams, joined, nap, suffix, upper


@pytest.fixture
async def pool():
    p = Pool(2, 8)
    yield p
    await p.close()


async def test_each_job_runs_its_own_steps_past_what_a_worker_keeps(pool: Pool) -> None:
    # more distinct step tuples than a worker keeps, and each of them again: every answer is its own params'
    n = KNOWN_STEPS + 20
    for rnd in range(2):
        for i in range(n):
            results, _ = await pool.run(Job(((suffix, SuffixParams(suffix=f"-{i}")), (upper, None)), Text(text="a")), 5)
            assert [r.output for r in results] == [Text(text=f"a-{i}"), Text(text=f"A-{i}")], (rnd, i)


async def test_params_that_cannot_be_hashed_run_all_the_same(pool: Pool) -> None:
    for parts in (["x"], ["y", "z"], ["x"]):
        results, _ = await pool.run(Job(((joined, ListParams(parts=parts)),), Text(text="a")), 5)
        assert results[0].output == Text(text="a" + "".join(parts))


async def test_large_payloads_cross_whole_both_ways(pool: Pool) -> None:
    text = "я" * 100_000  # 200 kB of UTF-8: more than one read of the pool's buffer, both ways
    results, _ = await pool.run(Job(((upper, None),), Text(text=text)), 5)
    assert results[0].output == Text(text="Я" * 100_000)
    from neira.runtime.builtin.text import echo
    from neira.runtime.registry import NoParams

    audio = Audio(data_b64=bytes(range(256)) * 20_000, duration_ms=1)  # 5 MB of bytes, exactly as sent
    results, _ = await pool.run(Job(((echo, NoParams()),), audio), 5)
    assert results[0].output == audio
    results, _ = await pool.run(Job(((upper, None),), Text(text="small after large")), 5)
    assert results[0].output == Text(text="SMALL AFTER LARGE")


async def test_a_worker_that_dies_idle_costs_no_run(pool: Pool) -> None:
    job = Job(((upper, None),), Text(text="a"))
    slow = Job(((nap, None),), Text(text="a"))
    await asyncio.gather(pool.run(slow, 5), pool.run(slow, 5))  # at once: both workers started and used
    workers = [p for p in multiprocessing.active_children() if p.name == "neira-run-worker"]
    assert len(workers) == 2
    for w in workers:  # the way the OOM killer or an operator ends a process
        os.kill(w.pid, signal.SIGKILL)
        w.join(5)
    for _ in range(4):  # at once: a dead idle worker is found on the send (the job never started) or before
        results, _ = await pool.run(job, 5)
        assert results[0].output == Text(text="A")
    alive = {p.pid for p in multiprocessing.active_children() if p.name == "neira-run-worker"}
    assert alive and not alive & {w.pid for w in workers}  # new workers ran them (the second may still start)
