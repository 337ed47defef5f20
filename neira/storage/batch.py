"""Group commit: concurrent requests that arrive while a transaction runs share the next one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Batch = list[tuple[T, "asyncio.Future[Any]"]]


class GroupCommit(Generic[T]):
    """`await submit(item)` queues an item; one drain task hands the queue to `run(batch)` in slices of at
    most `max_batch`. `run` resolves every future of its batch (a result or an exception per item)."""

    def __init__(self, run: Callable[[Batch[T]], Awaitable[None]], max_batch: int = 1000, name: str = "neira-group-commit") -> None:
        self._run = run
        self._max = max_batch
        self._name = name
        self._pending: Batch[T] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> Any:
        """Queue `item` and wait for its result."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending.append((item, fut))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain(), name=self._name)
        return await fut

    async def close(self) -> None:
        """Let the items already queued commit (a graceful stop loses nothing it has accepted)."""
        if self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self._max], self._pending[self._max :]
            try:
                await self._run(batch)
            except BaseException as exc:  # never leave a caller hanging
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc if isinstance(exc, Exception) else RuntimeError("batch cancelled"))
                if not isinstance(exc, Exception):
                    raise
            else:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_result(None)

