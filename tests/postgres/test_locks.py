"""Read-modify-write across replicas on one PostgreSQL database (contract §9): three Cores (three replicas'
worth of caches, pools and listeners) race on the same things, and the outcome is what one server would
give — one record per `Idempotency-Key`, a plan applied once, only legal moves each audited once, no gate
flip lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from neira.core import Core
from neira.errors import NeiraError
from tests.postgres.cores import cores

TEMPLATE = {"id": "analysis.race.v1", "version": "1.0.0", "analysis_type": "reverse", "links": [],
            "metadata": {"schema": "v1", "adapter": {"impl": "reverse"}}}


@pytest.fixture
async def three(tmp_path: Path, pg_url: str) -> AsyncIterator[list[Core]]:
    async with cores(tmp_path, pg_url) as made:
        yield made


async def outcome(call: Any) -> Any:
    """A call's answer, or the contract code of its refusal."""
    try:
        return await call
    except NeiraError as e:
        return e.code


async def test_one_idempotency_key_across_replicas_makes_one_record(three: list[Core]) -> None:
    answers = await asyncio.gather(*[c.factory.create({"template": TEMPLATE}, "admin", "race-key-1")
                                     for c in three for _ in range(3)])
    assert {status for status, _ in answers} == {201}  # the first answer, replayed to every other caller
    assert len({body["id"] for _, body in answers}) == 1
    async with three[0].db.read() as conn:
        records = await three[0].factory.records.of_template(conn, TEMPLATE["id"])
    assert len(records) == 1
    creates = [r for r in await three[1].audit.list() if r.action == "cell.create"]
    assert len(creates) == 1


async def test_a_plan_made_on_one_replica_is_applied_once_by_the_others(three: list[Core]) -> None:
    a, b, c = three
    said = await a.commands.handle("build racex-pipeline qqracea -> qqraceb", "s-race", "admin")
    assert said["understood"] and said["policy"]["allowed"], said["reply"]
    plan_id = said["plan"]["id"]  # answered by A: B and C can read it at once
    first, second = await asyncio.gather(b.commands.apply(plan_id, "admin"), c.commands.apply(plan_id, "admin"))
    assert sorted([first.already_applied, second.already_applied]) == [False, True]
    assert first.applied == second.applied
    applies = [r for r in await a.audit.list() if r.action == "command.apply"]
    assert len(applies) == 1


async def test_concurrent_approves_across_replicas_make_only_legal_moves_each_audited_once(three: list[Core]) -> None:
    _, built = await three[0].organs.build({"organ_template": "organ.echo.v1"}, "admin")
    organ = built["organ_id"]
    got = await asyncio.gather(*[outcome(three[i % 3].organs.approve(organ, "admin")) for i in range(50)])
    moved = [g["state"] for g in got if not isinstance(g, str)]
    assert sorted(moved) == ["canary", "experimental", "stable"]  # each stage reached once
    assert {g for g in got if isinstance(g, str)} == {"invalid_transition"}  # the rest refused
    stages = [e for e in await three[2].events.list(0, 1_000) if e.subject == f"organ:{organ}" and e.type == "organ.stage"]
    assert [e.data["state"] for e in stages] == ["draft", "canary", "experimental", "stable"]
    approves = [(r.before["state"], r.after["state"]) for r in await three[1].audit.list()
                if r.subject == f"organ:{organ}" and r.action == "organ.approve"]
    assert approves == [("draft", "canary"), ("canary", "experimental"), ("experimental", "stable")], approves


async def test_gate_flips_on_every_replica_are_none_of_them_lost(three: list[Core]) -> None:
    a, b, c = three
    for value in ["stable", "experimental", "disabled", "stable"]:  # two gates flipped at once, on two replicas
        await asyncio.gather(a.policy.set_capability("admin", "factory_adapter", value, "race"),
                             b.policy.set_capability("admin", "organs_builder", value, "race"))
    await c.policy.load(*c.policy._start)  # what is stored, as a replica starting now reads it
    assert (c.policy.capabilities["factory_adapter"].value, c.policy.capabilities["organs_builder"].value) == ("stable", "stable")
    flips = [(r.subject, r.before, r.after) for r in await c.audit.list() if r.action == "capability.set"]
    for gate in ("factory_adapter", "organs_builder"):
        assert [(x, y) for s, x, y in flips if s == gate] == [
            ("experimental", "stable"), ("stable", "experimental"), ("experimental", "disabled"), ("disabled", "stable")]


async def test_two_plans_on_the_same_facts_applied_on_two_replicas_at_once_apply_one(three: list[Core]) -> None:
    a, b, c = three
    text = "build twinx-pipeline qqtwina -> qqtwinb"
    plans = [(await core.commands.handle(text, f"s-twin-{i}", "admin"))["plan"]["id"] for i, core in enumerate((a, b))]
    got = await asyncio.gather(*[outcome(core.commands.apply(p, "admin")) for core, p in zip((b, c), plans, strict=True)])
    assert sorted(g if isinstance(g, str) else "applied" for g in got) == ["applied", "plan_stale"], got
    async with a.db.read() as conn:
        assert len(await a.factory.records.of_template(conn, "qqtwina")) <= 1
    applies = [r for r in await a.audit.list() if r.action == "command.apply"]
    assert len(applies) == 1


async def test_the_first_ids_of_a_fresh_database_asked_everywhere_at_once_are_all_different(three: list[Core]) -> None:
    async def take(core: Core) -> list[int]:
        async with core.db.transaction() as tx:
            return await tx.next_counters("race-counter", 5)

    got = await asyncio.gather(*[take(c) for c in three for _ in range(4)])
    ids = [i for chunk in got for i in chunk]
    assert sorted(ids) == list(range(1, 61))
