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


async def test_a_plan_nobody_applied_is_dropped_after_the_ttl(tmp_path: Path):
    """Said a day ago and never applied: the first write after a restart drops it (404 at apply); a plan that was
    applied stays, and so does one said within the TTL."""
    from litestar.testing import AsyncTestClient

    from api.app import create_app
    from neira.core import Core
    from tests.conftest import auth, make_settings

    settings = make_settings(tmp_path / "data", plan_ttl_s=3600)
    say = {"text": "создай голосовой орган v1"}

    async def plan(c: AsyncTestClient) -> str:
        r = await c.post("/api/neira/commands", json=say, headers=auth())
        assert r.status_code == 200 and r.json()["plan"]["changes"], r.text
        return r.json()["plan"]["id"]

    async with AsyncTestClient(create_app(Core(settings))) as c:
        applied = await plan(c)
        assert (await c.post(f"/api/neira/commands/plans/{applied}/apply", headers=auth())).status_code == 200
        old, recent = await plan(c), await plan(c)  # against the new base: both would apply
    db = Database(settings.db_url)
    async with db.transaction() as tx:  # a day passes for two of them
        await tx.conn.execute(tables.plans.update().where(tables.plans.c.id.in_([applied, old]))
                              .values(created_at=tables.plans.c.created_at - 86400))
    await db.close()

    async with AsyncTestClient(create_app(Core(settings))) as c:
        await plan(c)  # the first write after the start prunes
        gone = await c.post(f"/api/neira/commands/plans/{old}/apply", headers=auth())
        assert gone.status_code == 404 and gone.json()["code"] == "not_found"
        assert "say the command again" in gone.json()["reason"]
        again = await c.post(f"/api/neira/commands/plans/{applied}/apply", headers=auth())
        assert again.status_code == 200 and again.json()["already_applied"] is True
        assert (await c.post(f"/api/neira/commands/plans/{recent}/apply", headers=auth())).status_code == 200
