"""Saved plans are write-behind: visible at once, written together shortly after (or at an apply or a stop),
and a plan whose id is taken is dropped without sinking the others."""

from __future__ import annotations

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


async def test_saves_are_visible_at_once_and_written_together(store: PlanStore):
    ids = [new_plan_id() for _ in range(50)]
    for n, i in enumerate(ids):
        await store.save(i, f"s-{n % 3}", "b" * 64, {"n": n})
    assert [(await store.load(i)).body for i in ids] == [{"n": n} for n in range(50)]  # before any write
    assert (await store.last_of_session("s-1")).body == {"n": 49}
    await store.flush()
    assert await count(store) == 50
    assert [(await store.load(i)).body for i in ids] == [{"n": n} for n in range(50)]  # now from storage
    assert (await store.last_of_session("s-1")).body == {"n": 49}


async def test_close_writes_what_is_pending(store: PlanStore):
    await store.save("plan-aaaaaaaaaaaa", None, "b" * 64, {})
    await store.close()
    assert await count(store) == 1


async def test_a_taken_id_is_dropped_and_the_others_kept(store: PlanStore):
    await store.save("plan-taken", None, "b" * 64, {"first": True})
    await store.flush()
    await store.save("plan-new-1", None, "b" * 64, {})
    await store.save("plan-taken", None, "b" * 64, {"second": True})
    await store.flush()
    assert await count(store) == 2
    assert (await store.load("plan-taken")).body == {"first": True}
    assert (await store.load("plan-new-1")).body == {}
    with pytest.raises(NotFound):
        await store.load("plan-missing")
