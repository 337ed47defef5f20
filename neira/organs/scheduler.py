"""One timer task for every organ build: a heap of deadlines, each with the (organ id, generation) pairs due.

A task per organ would cost a coroutine frame and a timer handle each, and wake the loop once per organ;
here one task sleeps until the earliest deadline and hands every pair due at that moment to a single
callback, which advances them in one transaction. Builds started or moved in one batch share a deadline,
so they share one heap entry. Entries are never removed: a cancel, rebuild or manual move bumps the
organ's generation, so its old pairs no longer match and are dropped when they surface.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("neira.organs")

Due = list[tuple[str, int]]
RETRY_S = 0.5  # a failed batch (e.g. the database was briefly unavailable) is retried after this


class StageScheduler:
    """Sleeps until the earliest deadline, then calls `advance(due)` with every (organ id, generation) due."""

    def __init__(self, advance: Callable[[Due], Awaitable[None]], clock: Callable[[], float] = time.time) -> None:
        self._advance = advance
        self._clock = clock
        self._heap: list[tuple[float, int, Due]] = []
        self._order = itertools.count()  # ties on a deadline keep push order, and lists are never compared
        self._pending = 0
        self._task: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._held = False

    def __len__(self) -> int:
        """How many (organ, generation) pairs wait, stale ones included."""
        return self._pending

    def start(self) -> None:
        """Start the timer task (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="neira-organ-scheduler")

    async def close(self) -> None:
        """Stop the timer task; pending entries are dropped (their deadlines are in the database)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    def push(self, deadline: float, organ_id: str, generation: int) -> None:
        """Schedule one build's next stage."""
        self.push_many(deadline, [(organ_id, generation)])

    def push_many(self, deadline: float, due: Due) -> None:
        """Schedule the next stage of builds sharing a deadline; wakes the task when it is now the earliest."""
        if not due:
            return
        entry = (deadline, next(self._order), due)
        heapq.heappush(self._heap, entry)
        self._pending += len(due)
        if self._heap[0] is entry:
            self._wake()

    def hold(self) -> None:
        """Hand nothing to `advance` until `release` (entries keep coming in)."""
        self._held = True

    def release(self, since: float, shift: float) -> None:
        """End a hold that began at `since`, `shift` seconds ago: every deadline moves to
        `max(deadline, since) + shift`. That map keeps the order, so the heap stays a heap."""
        self._held = False
        self._heap = [(max(d, since) + shift, order, due) for d, order, due in self._heap]
        heapq.heapify(self._heap)  # a no-op on an order-keeping map, kept for safety
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _sleep(self, delay: float | None) -> None:
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        timer = loop.call_later(delay, self._wake) if delay is not None else None
        try:
            await self._waiter
        finally:
            if timer is not None:
                timer.cancel()
            self._waiter = None

    def _pop_due(self, now: float) -> Due:
        due: Due = []
        while self._heap and self._heap[0][0] <= now:
            due.extend(heapq.heappop(self._heap)[2])
        self._pending -= len(due)
        return due

    async def _run(self) -> None:
        while True:
            if self._held or not self._heap:
                await self._sleep(None)
                continue
            now = self._clock()
            if self._heap[0][0] > now:
                await self._sleep(self._heap[0][0] - now)
                continue
            due = self._pop_due(now)
            try:
                await self._advance(due)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("organ stage batch of %d failed; retrying in %.1fs", len(due), RETRY_S)
                self.push_many(self._clock() + RETRY_S, due)
