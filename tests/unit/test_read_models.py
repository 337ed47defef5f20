"""The in-memory read models behind the dry-run: the catalog index and the record cache follow every
committed write, ignore rolled-back ones, never keep a load that raced a commit, and stay bounded."""

from __future__ import annotations

import asyncio
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from neira.structs import to_builtins
from neira.catalog import CELL, ORGAN, CatalogIndex
from neira.cell_records import RecordCache
from neira.errors import InvalidTransition
from neira.selector import candidate
from neira.storage import tables
from neira.storage.feed import Changed
from tests.unit.test_factory import T, Services, make_services, promote, tpl

OTHER = "analysis.other.v1"
ORGAN_T = {"id": "organ.x.v1", "version": "1.0.0", "cells": [T], "metadata": {"schema": "v1"}}


@pytest.fixture
async def s(tmp_path: Path):
    services = await make_services(tmp_path, heal_delay_s=3600)
    yield services
    await services.factory.close()
    await services.db.close()


async def stored_records(s: Services, template_ids: list[str]) -> dict[str, list[Any]]:
    """What storage says: template id → its records as selector candidates, sorted by id."""
    R = tables.cell_records
    out: dict[str, list[Any]] = {}
    async with s.db.read() as conn:
        for row in await conn.execute(select(R).where(R.c.template_id.in_(template_ids))):
            out.setdefault(row.template_id, []).append(candidate(row))
    return {k: sorted(v, key=lambda c: c.id) for k, v in out.items()}


async def cached_records(s: Services, template_ids: list[str]) -> dict[str, list[Any]]:
    found = await s.factory.records.cache.of_templates(template_ids)
    return {k: sorted(v, key=lambda c: c.id) for k, v in found.items()}


async def stored_index(s: Services) -> CatalogIndex:
    c = tables.catalog.c
    async with s.db.read() as conn:
        return CatalogIndex.of(list(await conn.execute(select(c.family, c.id, c.version, c.body, c.digest))))


async def assert_in_step(s: Services, template_ids: list[str]) -> None:
    assert await cached_records(s, template_ids) == await stored_records(s, template_ids)
    index, stored = await s.catalog.index(), await stored_index(s)
    assert (index.versions, index.latest) == (stored.versions, stored.latest)
    assert list(index.latest[CELL]) == sorted(index.latest[CELL])


async def test_the_record_cache_follows_every_move(s: Services):
    await s.factory.dryrun({"tpl": tpl()}, "admin")  # warm: the template is cached with no records
    assert await cached_records(s, [T]) == {}
    old = await promote(s, "1.0.0")
    await assert_in_step(s, [T])
    new = await promote(s, "1.1.0")  # deprecates the old one
    await assert_in_step(s, [T])
    await s.factory.rollback(new, "admin")  # restores the old one
    await assert_in_step(s, [T])
    await s.factory.auto_heal(old, "admin")
    await assert_in_step(s, [T])
    assert await s.factory.finish_heal(old) == "stable"
    await assert_in_step(s, [T])
    await s.factory.disable(old, "admin")
    await assert_in_step(s, [T])
    dry = to_builtins(await s.factory.dryrun({"tpl": tpl("1.2.0")}, "admin"))
    assert dry["report"]["selector"] == {"action": "create", "record_id": None, "state": None,
                                         "reason": f"no live record of {T} (existing: disabled, rolled_back)"}


async def test_a_change_without_its_value_makes_every_read_model_reload(s: Services):
    """What a listener on another process's commits delivers (table, key, no value): the caches drop what
    they hold for it and read storage again, so a write they never saw shows up."""
    old = await promote(s, "1.0.0")
    await assert_in_step(s, [T])
    async with s.db.transaction() as tx:  # a write by "someone else": no feed entries of ours
        await tx.conn.execute(tables.cell_records.update().where(tables.cell_records.c.id == old).values(state="disabled"))
        await tx.conn.execute(tables.catalog.update().where(tables.catalog.c.id == T).values(
            body={**tpl(), "description": "edited elsewhere"}))
    assert await cached_records(s, [T]) != await stored_records(s, [T])  # stale: nobody told the caches
    s.db.feed.publish([Changed(table="cell_records", key=old), Changed(table="catalog", key=f"cell:{T}@1.0.0")])
    await assert_in_step(s, [T])
    assert (await s.catalog.get_cell(T))["description"] == "edited elsewhere"


async def test_ensure_cells_reaches_both_read_models(s: Services):
    await s.factory.dryrun({"tpl": tpl(links=[OTHER])}, "admin")  # warm both, OTHER unknown to both
    async with s.db.transaction() as tx:
        await s.factory.ensure_cells(tx, [OTHER], "admin", "organ.x.v1")
    await assert_in_step(s, [T, OTHER])
    dry = to_builtins(await s.factory.dryrun({"tpl": tpl(links=[OTHER])}, "admin"))
    assert dry["report"]["links"] == [{"id": OTHER, "status": "present", "version": "0.1.0",
                                       "record": {"id": "cell-1", "state": "draft", "version": "0.1.0"}}]


async def test_rolled_back_writes_reach_neither_read_model(s: Services):
    await s.catalog.put_cell(tpl())
    await s.factory.dryrun({"tpl": tpl()}, "admin")
    before_index = await s.catalog.index()
    before = (dict(before_index.versions), before_index.latest[CELL])
    with pytest.raises(RuntimeError):
        async with s.db.transaction() as tx:
            await s.factory.ensure_cells(tx, [T, OTHER], "admin", "organ.x.v1")
            raise RuntimeError("the organ build failed later")
    index = await s.catalog.index()
    assert (index.versions, index.latest[CELL]) == before
    assert await cached_records(s, [T, OTHER]) == {}
    await assert_in_step(s, [T, OTHER])


def reading_while(s: Services, cache: RecordCache, write: Any) -> None:
    """Make the cache's next storage reads run `write` (a commit) while the read is under way."""
    real_read = s.db.read

    @asynccontextmanager
    async def read():
        async with real_read() as conn:
            await write()
            yield conn

    cache.db = type("DB", (), {"read": staticmethod(read)})()


async def test_a_load_that_raced_a_commit_is_not_kept(s: Services):
    cache = s.factory.records.cache
    await s.factory.create({"tpl": tpl()}, "admin")
    await cache.of_templates([])  # the set of templates with records is loaded
    reading_while(s, cache, lambda: s.factory.approve("cell-1", "admin"))
    found = await cache.of_templates([T])
    cache.db = s.db
    assert T not in cache._by_template  # used for that one answer, not kept
    assert [c.state for c in found[T]] in (["draft"], ["canary"])  # either side of the commit, never torn
    assert [c.state for c in (await cache.of_templates([T]))[T]] == ["canary"]
    assert await cached_records(s, [T]) == await stored_records(s, [T])


async def test_a_load_of_the_template_set_that_raced_a_commit_is_not_kept(s: Services):
    cache = s.factory.records.cache
    reading_while(s, cache, lambda: s.factory.create({"tpl": tpl()}, "admin"))
    await cache.of_templates([T])
    cache.db = s.db
    assert cache._with_records is None
    assert [c.id for c in (await cache.of_templates([T]))[T]] == ["cell-1"]
    assert cache._with_records == {T}


async def test_templates_without_records_read_nothing(s: Services):
    cache = s.factory.records.cache
    await s.factory.create({"tpl": tpl()}, "admin")
    await cache.of_templates([])

    async def fail() -> None:
        raise AssertionError("no storage read expected")

    reading_while(s, cache, fail)
    assert await cache.of_templates([f"analysis.never{i}.v1" for i in range(100)]) == {}
    assert len(cache._by_template) == 0  # the bound is not spent on templates nobody created
    cache.db = s.db


async def test_the_record_cache_is_bounded(s: Services):
    cache = RecordCache(s.db, limit=2)
    s.factory.records.cache = cache
    ids = [f"analysis.t{i}.v1" for i in range(4)]
    for tid in ids:
        await s.factory.create({"tpl": tpl(id=tid)}, "admin")
        await cache.of_templates([tid])
        assert len(cache._by_template) <= 2
    assert list(cache._by_template) == ids[2:]  # the most recently used stay
    await s.factory.approve("cell-1", "admin")  # not cached: storage only
    assert await cached_records(s, ids) == await stored_records(s, ids)


async def test_catalog_reads_come_from_memory_and_hand_out_copies(s: Services):
    await s.catalog.put_cell(tpl())
    await s.catalog.put_organ_template(ORGAN_T)
    await s.catalog.put_cell(tpl("1.1.0"))
    await assert_in_step(s, [T])
    got = await s.catalog.get_cell(T)
    assert got == tpl("1.1.0")
    got["links"].append("analysis.mutated.v1")
    assert await s.catalog.get_cell(T) == tpl("1.1.0")
    assert await s.catalog.digests(CELL, T) == {v: d for (v, (_, d)) in (await stored_index(s)).versions[(CELL, T)].items()}
    assert (await s.catalog.latest_view(ORGAN))["organ.x.v1"]["cells"] == [T]
    view = await s.catalog.latest_view(CELL)
    await s.catalog.put_cell(tpl(id=OTHER))
    assert OTHER not in view  # a reader's map is never changed under it; the next read sees the new one
    assert OTHER in await s.catalog.latest_view(CELL)
    t, digest = await s.catalog.cell_template(T, "1.0.0")
    assert (t.version, digest) == ("1.0.0", (await s.catalog.digests(CELL, T))["1.0.0"])


def without_ids(result: dict[str, Any]) -> dict[str, Any]:
    policy = result["report"]["policy"]
    decisions = [{k: v for k, v in d.items() if k != "decision_id"} for d in policy["decisions"]]
    return {**result, "report": {**result["report"], "policy": {**policy, "decisions": decisions, "violations": None}}}


# --- random sequences ------------------------------------------------------------------------------
STEPS = ("create", "approve", "disable", "rollback", "auto_rollback", "auto_heal", "finish_heal", "dryrun", "dryrun",
         "failed_tx")


async def _run(data: Path, steps: list[tuple[str, int]]) -> None:
    s = await make_services(data, heal_delay_s=3600)
    try:
        await s.factory.dryrun({"tpl": tpl()}, "admin")
        for action, n in steps:
            records = await s.factory.list()
            if action == "create" or not records:
                await s.factory.create({"tpl": tpl(f"1.{len(records)}.0")}, "admin")
            elif action == "dryrun":
                remembered = to_builtins(await s.factory.dryrun({"tpl": tpl(f"1.{n}.0")}, "admin"))
                s.factory._memo.clear()
                fresh = to_builtins(await s.factory.dryrun({"tpl": tpl(f"1.{n}.0")}, "admin"))
                assert without_ids(remembered) == without_ids(fresh)
            elif action == "failed_tx":
                with pytest.raises(RuntimeError):
                    async with s.db.transaction() as tx:
                        await s.factory.ensure_cells(tx, [f"analysis.f{n}.v1"], "admin", None)
                        raise RuntimeError("later step failed")
            elif action == "finish_heal":
                await s.factory.finish_heal(records[n % len(records)]["id"])
            else:
                try:
                    await getattr(s.factory, action)(records[n % len(records)]["id"], "admin", None)
                except InvalidTransition:
                    pass
            await assert_in_step(s, [T, *(f"analysis.f{i}.v1" for i in range(6))])
    finally:
        await s.factory.close()
        await s.db.close()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(STEPS), st.integers(0, 5)), max_size=12))
def test_any_sequence_keeps_the_read_models_in_step_with_storage(tmp_path: Path, steps: list[tuple[str, int]]):
    with tempfile.TemporaryDirectory(dir=tmp_path) as data:
        asyncio.run(_run(Path(data), steps))


async def test_remembered_dry_runs_follow_writes_and_gates_with_fresh_decisions(s: Services):
    first = to_builtins(await s.factory.dryrun({"tpl": tpl()}, "admin"))
    again = to_builtins(await s.factory.dryrun({"tpl": tpl()}, "admin"))
    ids = [r["report"]["policy"]["decisions"][0]["decision_id"] for r in (first, again)]
    assert ids[0] != ids[1]  # one decision per dry-run, remembered report or not
    assert {**again, "report": {**again["report"], "policy": None}} == {**first, "report": {**first["report"], "policy": None}}
    assert s.metric("neira_policy_decisions_total", rule="capability.factory_adapter", action="allow") == 2
    await s.factory.create({"tpl": tpl()}, "admin")  # a record write
    assert (to_builtins(await s.factory.dryrun({"tpl": tpl()}, "admin")))["plan"]["changes"][0]["action"] == "no-op"
    await s.catalog.put_cell(tpl("2.0.0"))  # a catalog write
    risks = (to_builtins(await s.factory.dryrun({"tpl": tpl()}, "admin")))["report"]["risks"]
    assert [r["code"] for r in risks] == ["older_version"]
    await s.policy.set_capability("admin", "factory_adapter", "disabled")  # a gate flip
    closed = to_builtins(await s.factory.dryrun({"tpl": tpl()}, "admin"))
    assert closed["ok"] is False and closed["report"]["policy"]["violations"][0]["capability"] == "factory_adapter"
    assert [r["code"] for r in closed["report"]["risks"]] == ["capability_disabled", "older_version"]


async def test_remembered_dry_runs_are_bounded(s: Services, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("neira.factory.PLAN_MEMO_SIZE", 3)
    for i in range(5):
        await s.factory.dryrun({"tpl": tpl(id=f"analysis.t{i}.v1")}, "admin")
    assert [k[0] for k in s.factory._memo] == ["analysis.t2.v1", "analysis.t3.v1", "analysis.t4.v1"]
