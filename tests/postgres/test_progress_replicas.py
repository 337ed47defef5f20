"""Automatic progression across replicas on one PostgreSQL database (contract §9, issue 16): every build's
stages move exactly once whichever replicas track it, a replica that stops mid-build leaves its builds to
the others, and a gate closed on one replica holds the builds of every replica."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from sqlalchemy import func, select

from neira.core import Core
from neira.storage import tables
from tests.conftest import make_settings

STAGES = ["draft", "canary", "experimental", "stable"]


async def until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> float:
    """Seconds until `check()` holds; fails the test after `within`."""
    start = time.monotonic()
    while not await check():
        assert time.monotonic() - start < within, f"not in time: {what}"
        await asyncio.sleep(0.05)  # polling the database, not hiding a race
    return time.monotonic() - start


def replica(tmp_path: Path, name: str, pg_url: str, **overrides: object) -> Core:
    """A replica on the test's database. All share one data dir (`name` is only the reader's label): a replica
    with a data dir of its own finds the catalog files of templates registered elsewhere missing at start and
    its immune check quarantines their records meanwhile, which is not what these tests are about."""
    del name
    return Core(make_settings(tmp_path / "data", database_url=pg_url, **overrides))


async def states(core: Core) -> Counter[str]:
    o = tables.organs.c
    async with core.db.read() as conn:
        return Counter({s: n for s, n in await conn.execute(select(o.state, func.count()).group_by(o.state))})


async def stage_events(core: Core) -> dict[str, list[str]]:
    """organ id → the states of its `organ.stage` event rows, in seq order."""
    e = tables.events.c
    out: dict[str, list[str]] = {}
    async with core.db.read() as conn:
        for subject, data in await conn.execute(select(e.subject, e.data).where(e.type == "organ.stage").order_by(e.seq)):
            out.setdefault(subject.partition(":")[2], []).append(data["state"])
    return out


async def build(core: Core, n: int) -> list[str]:
    answers = await asyncio.gather(*(core.organs.build({"organ_template": "organ.echo.v1"}, "admin") for _ in range(n)))
    return [body["organ_id"] for _, body in answers]


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as s:
        yield s


async def run(stack: AsyncExitStack, core: Core) -> Core:
    await core.start()
    stack.push_async_callback(core.stop)
    return core


async def test_builds_tracked_by_three_replicas_move_each_stage_once(tmp_path: Path, pg_url: str, stack: AsyncExitStack,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    delays = (400, 300, 300)
    a = await run(stack, replica(tmp_path, "a", pg_url, stage_delays_ms=delays))
    started = await build(a, 30)
    # B and C start while A's builds are in flight: each resumes every one of them, so all three replicas'
    # timers race for the same 30 builds; then each starts 10 of its own.
    with caplog.at_level(logging.INFO, logger="neira.organs"):
        b = await run(stack, replica(tmp_path, "b", pg_url, stage_delays_ms=delays))
        c = await run(stack, replica(tmp_path, "c", pg_url, stage_delays_ms=delays))
    assert [r.getMessage() for r in caplog.records if "resumed" in r.getMessage()] == [
        "organ builder resumed 30 builds in flight"] * 2
    started += await build(b, 10) + await build(c, 10)

    async def all_stable() -> bool:
        return (await states(a))["stable"] == 50

    await until(all_stable, 30, "50 builds stable")
    seen = await stage_events(a)
    assert set(seen) == set(started)
    assert {organ: moves for organ, moves in seen.items() if moves != STAGES} == {}  # each stage once, in order
    h = tables.record_history.c
    async with a.db.read() as conn:  # the organs' cell records were carried up with them, each step once
        history = [tuple(r) for r in await conn.execute(select(h.record_id, h.from_state, h.to_state, h.actor).order_by(h.seq))]
    steps = Counter(step[:3] for step in history if step[3] == "organs_builder")
    assert steps and {step: n for step, n in steps.items() if n != 1} == {}, history


async def test_a_replica_gone_mid_build_leaves_its_builds_to_another(tmp_path: Path, pg_url: str, stack: AsyncExitStack) -> None:
    sweep = {"sweep_interval_ms": 200, "sweep_grace_ms": 300}
    b = await run(stack, replica(tmp_path, "b", pg_url, stage_delays_ms=(300, 300, 300), **sweep))
    a = replica(tmp_path, "a", pg_url, stage_delays_ms=(300, 300, 300), **sweep)
    await a.start()
    try:
        ids = await build(a, 20)
        assert not b.organs.progress._flights  # B started before them: only A's timers carry them
    finally:
        await a.stop()  # mid-build: nothing finishes them on A
    assert (await states(b))["draft"] == 20

    async def all_stable() -> bool:
        return (await states(b))["stable"] == 20

    took = await until(all_stable, 20, "B finishes A's builds")
    assert took >= 0.3  # not before their deadlines and the grace
    seen = await stage_events(b)
    assert {organ: seen[organ] for organ in ids if seen[organ] != STAGES} == {}
    assert not b.organs.progress._flights  # finished here, forgotten here


async def test_the_gate_closed_on_one_replica_holds_the_builds_of_another(tmp_path: Path, pg_url: str, stack: AsyncExitStack) -> None:
    a = await run(stack, replica(tmp_path, "a", pg_url, stage_delays_ms=(600_000,) * 3))
    b = await run(stack, replica(tmp_path, "b", pg_url, stage_delays_ms=(700, 200, 200)))
    ids = await build(b, 5)
    await a.policy.set_capability("admin", "organs_builder", "disabled", "maintenance")

    async def held_on_b() -> bool:
        return b.organs.progress.held_since is not None

    await until(held_on_b, 1.0, "B holds its builds")
    async with a.db.read() as conn:
        from neira.organs import store

        assert await store.read_hold(conn) == a.organs.progress.held_since == b.organs.progress.held_since
    status = await b.organs.status(ids[0])
    assert (status["waiting_for"], status["held_by"]) == ("gate", "organs_builder")
    await asyncio.sleep(1.0)  # past every draft deadline: a build that moved now would not be held
    assert (await states(b))["draft"] == 5
    await a.policy.set_capability("admin", "organs_builder", "stable", "done")

    async def all_stable() -> bool:
        return (await states(b))["stable"] == 5

    await until(all_stable, 10, "B's builds finish once released")
    assert b.organs.progress.held_since is None
    seen = await stage_events(b)
    assert {organ: seen[organ] for organ in ids if seen[organ] != STAGES} == {}


async def test_two_replicas_measure_a_record_under_analysis_once(tmp_path: Path, pg_url: str, stack: AsyncExitStack) -> None:
    from tests.evidence.conftest import GOOD, cell, record_of
    from tests.evidence.doubles import evidence_registry

    # a long interval: after the fill the loops wake only when a record or organ moves, and nothing does
    slow = {"run_workers": 1, "analysis_interval_ms": 60_000}
    a = await run(stack, Core(make_settings(tmp_path / "data", database_url=pg_url, **slow), evidence_registry()))
    b = await run(stack, Core(make_settings(tmp_path / "data", database_url=pg_url, **slow), evidence_registry()))
    record = await record_of(a, cell("picky", GOOD))  # hitl: it stays in canary once approved there
    await b.factory.approve(record, "admin")  # both loops wake: B's at its commit, A's from the notification
    r = tables.analysis_runs.c

    async def runs() -> int:
        async with a.db.read() as conn:
            return (await conn.execute(select(func.count()).where(r.subject == f"cell:{record}"))).scalar() or 0

    async def filled() -> bool:
        return await runs() >= 20

    await until(filled, 30, "the record's 20 runs")
    claims = tables.analysis_claims.c
    async with a.db.read() as conn:
        holders = list(await conn.execute(select(claims.replica).where(claims.subject == f"cell:{record}")))
    assert [h.replica for h in holders] in ([a.db.replica], [b.db.replica])
    await asyncio.sleep(1.0)  # long enough for a second loop's fill (~0.1 s) to show, had it measured too
    # min_runs once, not once per replica (a second measurer fills its own 20: 40 without the claims); a
    # wake-up of the measuring loop (any record or organ row change) may add one round of 4
    assert await runs() in (20, 24)
    verdicts = [e for e in await a.events.list(0, 1000) if e.type == "analysis.verdict"]
    assert [(e.subject, e.data["verdict"]) for e in verdicts] == [(f"cell:{record}", "pass")]


async def test_graduation_on_evidence_promotes_once_across_replicas(tmp_path: Path, pg_url: str, stack: AsyncExitStack,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    from tests.evidence.conftest import GOOD, cell, record_of
    from tests.evidence.doubles import evidence_registry
    from tests.evidence.test_graduation import FAST, organ

    on = {"run_workers": 1, "analysis_interval_ms": 50, "stage_delays_ms": (200, 200, 200)}
    a = await run(stack, Core(make_settings(tmp_path / "data", database_url=pg_url, **on), evidence_registry()))
    await record_of(a, cell("picky", GOOD, "analysis.g_picky.v1", analysis=FAST))
    template = organ("picky", ["analysis.g_picky.v1"], hitl=False)
    answers = await asyncio.gather(*(a.organs.build({"organ_template": template}, "admin") for _ in range(6)))
    ids = [body["organ_id"] for _, body in answers]
    # B resumes the same builds: both replicas' timers and analysis loops may promote each of them
    with caplog.at_level(logging.INFO, logger="neira.organs"):
        await run(stack, Core(make_settings(tmp_path / "data", database_url=pg_url, **on), evidence_registry()))
    assert "organ builder resumed 6 builds in flight" in [r.getMessage() for r in caplog.records]

    async def all_stable() -> bool:
        return (await states(a))["stable"] == 6

    await until(all_stable, 60, "six organs graduate")
    seen = await stage_events(a)
    assert {organ_id: seen[organ_id] for organ_id in ids if seen[organ_id] != STAGES} == {}
    promotions = Counter(a.subject for a in await a.audit.list(0, 10_000) if a.action == "organ.promote")
    assert promotions == {f"organ:{organ_id}": 2 for organ_id in ids}  # canary → experimental → stable, once each


async def test_a_hold_made_on_one_replica_holds_the_build_another_times(tmp_path: Path, pg_url: str, stack: AsyncExitStack) -> None:
    a = await run(stack, replica(tmp_path, "a", pg_url, stage_delays_ms=(600_000,) * 3))
    b = await run(stack, replica(tmp_path, "b", pg_url, stage_delays_ms=(400, 400, 400)))
    held, free = await build(b, 2)
    await a.organs.hold(held, "admin", "look first")

    async def b_shows_it() -> bool:
        status = await b.organs.status(held)
        return status["hold"] is not None and status["waiting_for"] == "approval"

    await until(b_shows_it, 1.0, "B's status shows A's hold")

    async def free_moved() -> bool:
        return (await b.organs.status(free))["state"] != "draft"

    await until(free_moved, 10, "the other build moves on")  # its deadline passed; the held one shared it
    assert (await b.organs.status(held))["state"] == "draft"
    await b.organs.approve(held, "admin", "looked")  # on B: it ends A's hold (the row) and moves one stage
    async with b.db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(tables.holds))).scalar() == 0
    assert (await b.organs.status(held))["state"] == "canary"


async def test_replicas_starting_together_end_a_stored_hold_once(tmp_path: Path, pg_url: str, stack: AsyncExitStack) -> None:
    from neira.organs import store

    a = replica(tmp_path, "a", pg_url, stage_delays_ms=(60_000,) * 3)
    await a.start()
    try:
        (organ,) = await build(a, 1)
        await a.policy.set_capability("admin", "organs_builder", "disabled", "maintenance")
        async with a.db.read() as conn:
            since = await store.read_hold(conn)
            before = (await store.get_row(conn, organ)).deadline
    finally:
        await a.stop()
    assert since is not None
    await asyncio.sleep(1.0)  # held for a second while no replica runs
    opened = {"capabilities": {"organs_builder": "stable"}, "stage_delays_ms": (60_000,) * 3}
    t0 = time.time()
    b, c = replica(tmp_path, "b", pg_url, **opened), replica(tmp_path, "c", pg_url, **opened)
    await asyncio.gather(run(stack, b), run(stack, c))  # both find the gate open and the hold stored
    t1 = time.time()
    async with b.db.read() as conn:
        assert await store.read_hold(conn) is None
        after = (await store.get_row(conn, organ)).deadline
    assert t0 - since <= after - before <= t1 - since  # moved on by the time held, once (not twice)


async def test_an_organ_waiting_for_approval_is_announced_once_across_replicas(tmp_path: Path, pg_url: str, stack: AsyncExitStack,
                                                                             caplog: pytest.LogCaptureFixture) -> None:
    from tests.evidence.conftest import GOOD, cell, record_of
    from tests.evidence.doubles import evidence_registry
    from tests.evidence.test_graduation import FAST, organ

    # a canary stage longer than the fill: the verdict passes first, so at the stage's end both the timer
    # (due_in) and the next round (on_round) find the organ waiting for a human, perhaps on two replicas
    on = {"run_workers": 1, "analysis_interval_ms": 50, "stage_delays_ms": (200, 1500, 200)}
    a = await run(stack, Core(make_settings(tmp_path / "data", database_url=pg_url, **on), evidence_registry()))
    await record_of(a, cell("picky", GOOD, "analysis.g_picky.v1", analysis=FAST))
    template = organ("picky", ["analysis.g_picky.v1"], hitl=True)  # a good verdict, then a human's approve
    answers = await asyncio.gather(*(a.organs.build({"organ_template": template}, "admin") for _ in range(4)))
    ids = [body["organ_id"] for _, body in answers]
    with caplog.at_level(logging.INFO, logger="neira.organs"):
        b = await run(stack, Core(make_settings(tmp_path / "data", database_url=pg_url, **on), evidence_registry()))
    assert "organ builder resumed 4 builds in flight" in [r.getMessage() for r in caplog.records]

    async def announced() -> Counter[str]:
        return Counter(e.subject for e in await b.events.list(0, 10_000) if e.type == "organ.waiting")

    async def all_waiting() -> bool:
        return len(await announced()) == 4

    await until(all_waiting, 60, "four organs wait for approval")
    await asyncio.sleep(1.0)  # many more rounds and timer checks on both replicas: none may announce it again
    assert await announced() == {f"organ:{organ_id}": 1 for organ_id in ids}
    assert [(await a.organs.status(organ_id))["waiting_for"] for organ_id in ids] == ["approval"] * 4
