"""The stage scheduler: one task, a heap, every entry due at a moment handed over in one batch."""

from __future__ import annotations

import asyncio
import time

from neira.storage.batch import GroupCommit
from neira.organs.scheduler import StageScheduler


async def test_due_entries_come_in_deadline_order_and_batches() -> None:
    batches: list[list[tuple[str, int]]] = []
    done = asyncio.Event()

    async def advance(due: list[tuple[str, int]]) -> None:
        batches.append(due)
        if sum(map(len, batches)) == 5:
            done.set()

    s = StageScheduler(advance)
    s.start()
    now = time.time()
    for i, delay in enumerate([0.06, 0.02, 0.02, 0.02, 0.04]):
        s.push(now + delay, f"organ-{i}", 1)
    await asyncio.wait_for(done.wait(), 5)
    await s.close()
    assert [o for batch in batches for o, _ in batch] == ["organ-1", "organ-2", "organ-3", "organ-4", "organ-0"]
    assert batches[0] == [("organ-1", 1), ("organ-2", 1), ("organ-3", 1)]  # same deadline, one batch


async def test_an_earlier_push_wakes_the_sleeper() -> None:
    seen: list[str] = []
    done = asyncio.Event()

    async def advance(due: list[tuple[str, int]]) -> None:
        seen.extend(o for o, _ in due)
        done.set()

    s = StageScheduler(advance)
    s.start()
    s.push(time.time() + 60, "late", 1)
    await asyncio.sleep(0)  # let the task go to sleep until the late deadline
    s.push(time.time() + 0.01, "early", 1)
    await asyncio.wait_for(done.wait(), 5)
    await s.close()
    assert seen == ["early"]


async def test_a_failing_batch_is_retried(monkeypatch) -> None:
    from neira.organs import scheduler

    monkeypatch.setattr(scheduler, "RETRY_S", 0.01)
    calls: list[list[tuple[str, int]]] = []
    done = asyncio.Event()

    async def advance(due: list[tuple[str, int]]) -> None:
        calls.append(due)
        if len(calls) == 1:
            raise RuntimeError("database briefly unavailable")
        done.set()

    s = StageScheduler(advance)
    s.start()
    s.push(time.time(), "organ-1", 7)
    await asyncio.wait_for(done.wait(), 5)
    await s.close()
    assert calls == [[("organ-1", 7)], [("organ-1", 7)]]


async def test_group_commit_batches_concurrent_submissions() -> None:
    sizes: list[int] = []

    async def run(batch) -> None:
        sizes.append(len(batch))
        await asyncio.sleep(0.01)
        for item, fut in batch:
            fut.set_result(item * 2)

    gc: GroupCommit[int] = GroupCommit(run, max_batch=40)
    results = await asyncio.gather(*[gc.submit(i) for i in range(100)])
    assert results == [i * 2 for i in range(100)]
    assert sizes == [40, 40, 20]
