"""Several Cores on one PostgreSQL database in one test process: each has its own pool, listener, caches and
data dir, as a replica has (the real-process suite is tests/postgres/test_replicas.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from neira.core import Core
from tests.conftest import make_settings

SLOW = (600_000, 600_000, 600_000)  # stage delays: nothing advances by itself while a test looks
WITHIN_S = 1.0  # the contract's bound for a change on one replica to be seen on the others


@asynccontextmanager
async def cores(base: Path, url: str, names: str = "abc", **settings: Any) -> AsyncIterator[list[Core]]:
    """Started Cores named by `names` (data dirs `base/<name>`), stopped in reverse order."""
    made = [Core(make_settings(base / n, database_url=url, **{"stage_delays_ms": SLOW, **settings})) for n in names]
    started: list[Core] = []
    try:
        for c in made:
            await c.start()
            started.append(c)
        yield made
    finally:
        for c in reversed(started):
            await c.stop()


async def seen(check: Callable[[], Awaitable[bool]], within: float = WITHIN_S) -> float:
    """Seconds until `check()` holds; fails the test after `within`."""
    start = time.monotonic()
    while not await check():
        assert time.monotonic() - start < within, "not seen in time"
        await asyncio.sleep(0.01)  # polling the other replica's cache, not hiding a race
    return time.monotonic() - start
