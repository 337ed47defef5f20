"""Saved plans: concurrent saves share a transaction, each caller returns once its plan is committed, and a
batch that fails fails every plan in it (none is half-stored)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select

from neira.commands.plan_store import PlanStore, new_plan_id
from neira.errors import NotFound
from neira.storage import tables
from neira.storage.db import Database


@pytest.fixture
async def store(tmp_path: Path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'neira.db'}")
    await db.create()
    yield PlanStore(db)
    await db.close()


async def count(store: PlanStore) -> int:
    async with store.db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(tables.plans))).scalar()


async def test_concurrent_saves_are_all_committed_before_they_return(store: PlanStore):
    ids = [new_plan_id() for _ in range(50)]
    await asyncio.gather(*(store.save(i, f"s-{n % 3}", "b" * 64, {"n": n}) for n, i in enumerate(ids)))
    assert await count(store) == 50
    assert [(await store.load(i)).body for i in ids] == [{"n": n} for n in range(50)]
    assert (await store.last_of_session("s-1")).session_id == "s-1"


async def test_a_failing_batch_fails_each_of_its_plans_and_stores_none(store: PlanStore):
    await store.save("plan-taken", None, "b" * 64, {})
    results = await asyncio.gather(store.save("plan-new-1", None, "b" * 64, {}), store.save("plan-taken", None, "b" * 64, {}),
                                   return_exceptions=True)
    assert all(isinstance(r, Exception) for r in results)  # one transaction: the duplicate id sinks both
    with pytest.raises(NotFound):
        await store.load("plan-new-1")
    await store.save("plan-new-1", None, "b" * 64, {})  # said again, alone, it is kept
    assert await count(store) == 2
    await store.close()
