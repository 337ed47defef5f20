"""The organ builder on a real core: staged progression, manual control, cancel, rebuild, dry-run,
validation, idempotency, metrics, restart, and 1,000 concurrent builds."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from neira.catalog import parse_cell
from neira.config import Settings
from neira.core import Core
from neira.errors import CapabilityDisabled, Conflict, InvalidRequest, InvalidTemplate, InvalidTransition, NotFound
from neira.storage import tables
from neira.structs import to_builtins
from tests.conftest import make_settings, started

VOICE = "organ.voice.v1"
STAGES = ["draft", "canary", "experimental", "stable"]


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll `check` until it holds (a condition, never a fixed sleep standing in for one)."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def state_of(core: Core, organ_id: str) -> str:
    return (await core.organs.status(organ_id, query=False))["state"]


async def until_state(core: Core, organ_id: str, state: str, timeout: float = 10.0) -> None:
    async def check() -> bool:
        return await state_of(core, organ_id) == state

    await wait_for(check, timeout)


async def build(core: Core, template: Any = VOICE, actor: str = "admin", key: str | None = None) -> str:
    status, body = await core.organs.build({"organ_template": template}, actor, key)
    assert status == 201 and body["state"] == "draft"
    return body["organ_id"]


async def stage_events(core: Core, organ_id: str) -> list[dict[str, Any]]:
    return [e.data for e in await core.events.list(0, 10_000) if e.subject == f"organ:{organ_id}"]


async def count(core: Core, table: Any) -> int:
    async with core.db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar()


@pytest.fixture
async def slow_core(tmp_path: Path) -> AsyncIterator[Core]:
    """Delays long enough that a test acts between stages (a manual move lands before the first timer)."""
    async with started(Core(make_settings(tmp_path / "slow", stage_delays_ms=(400, 400, 400)))) as c:
        yield c


async def test_progression_in_order_with_stage_delays(core: Core) -> None:
    organ_id = await build(core)
    await until_state(core, organ_id, "stable")
    status = await core.organs.status(organ_id)
    times = status["metrics"]["stage_times"]
    assert list(times) == STAGES
    delays = [d / 1000 for d in core.settings.stage_delays_ms]
    for (a, b), delay in zip(zip(STAGES, STAGES[1:]), delays, strict=True):
        assert times[b] - times[a] >= delay - 1e-3, (a, b)
    assert [e["state"] for e in await stage_events(core, organ_id)] == STAGES
    assert status["metrics"]["attempts"] == 1
    assert status["metrics"]["build_duration_ms"] >= sum(core.settings.stage_delays_ms) - 1
    assert [c["id"] for c in status["cells"]] == ["analysis.text_normalize.v1", "analysis.text_to_phonemes.v1", "analysis.speak_adapter.v1"]
    assert all(c["state"] == "stable" and c["record_id"].startswith("cell-") for c in status["cells"])  # its cells went with it


async def test_organ_ids_are_sequential_and_cells_are_reused(core: Core) -> None:
    first, second = await build(core), await build(core)
    assert (first, second) == ("organ-1", "organ-2")
    a, b = await core.organs.status(first), await core.organs.status(second)
    assert [c["record_id"] for c in a["cells"]] == [c["record_id"] for c in b["cells"]]


async def test_list(core: Core) -> None:
    ids = [await build(core) for _ in range(3)]
    listed = await core.organs.list()
    assert [o["id"] for o in listed] == ids
    assert all(o.keys() == {"id", "state", "template_id", "updated_at"} and o["template_id"] == VOICE for o in listed)


async def test_manual_status_stops_progression(slow_core: Core) -> None:
    core = slow_core
    organ_id = await build(core)
    assert to_builtins(await core.organs.set_status(organ_id, "canary", "hold here", "operator")) == {"id": organ_id, "state": "canary"}
    control = await build(core)  # finishes well after the first organ's own timers were due
    await until_state(core, control, "stable")
    status = await core.organs.status(organ_id)
    assert (status["state"], status["auto"], status["metrics"]["next_stage"]) == ("canary", False, None)
    assert [e["state"] for e in await stage_events(core, organ_id)] == ["draft", "canary"]
    trail = [r for r in await core.audit.list() if r.subject == f"organ:{organ_id}"]
    last = trail[-1]
    assert (last.action, last.actor, last.before["state"], last.after["state"], last.reason) == (
        "organ.status", "operator", "draft", "canary", "hold here")
    assert last.decision_ids


async def test_manual_status_rejects_unknown_state_and_id(core: Core) -> None:
    organ_id = await build(core)
    with pytest.raises(InvalidRequest):
        await core.organs.set_status(organ_id, "deprecated", None, "admin")
    with pytest.raises(NotFound):
        await core.organs.set_status("organ-999", "stable", None, "admin")


async def test_cancel_while_building_then_conflict(slow_core: Core) -> None:
    core = slow_core
    organ_id = await build(core)
    failures = core.metrics.organ_build_failures._value.get()
    assert to_builtins(await core.organs.cancel(organ_id, "admin")) == {"id": organ_id, "state": "failed"}
    assert core.metrics.organ_build_failures._value.get() == failures + 1
    with pytest.raises(InvalidTransition) as info:
        await core.organs.cancel(organ_id, "admin")
    assert info.value.extra == {"from": "failed", "to": "failed"}
    control = await build(core)
    await until_state(core, control, "stable")
    assert await state_of(core, organ_id) == "failed"
    with pytest.raises(NotFound):
        await core.organs.cancel("organ-999", "admin")


async def test_cancel_after_stable_is_a_conflict(core: Core) -> None:
    organ_id = await build(core)
    await until_state(core, organ_id, "stable")
    with pytest.raises(InvalidTransition):
        await core.organs.cancel(organ_id, "admin")


async def test_rebuild_gets_fresh_stages_and_a_stale_timer_never_touches_it(slow_core: Core) -> None:
    core = slow_core
    organ_id = await build(core)
    await core.organs.cancel(organ_id, "admin")
    # the first build's draft→canary timer is still in the heap, due ~400 ms after the build
    assert to_builtins(await core.organs.rebuild(organ_id, "operator")) == {"organ_id": organ_id, "state": "draft"}
    status = await core.organs.status(organ_id)
    assert (status["state"], status["metrics"]["attempts"], list(status["metrics"]["stage_times"])) == ("draft", 2, ["draft"])
    await until_state(core, organ_id, "stable", timeout=15)
    times = (await core.organs.status(organ_id))["metrics"]["stage_times"]
    assert list(times) == STAGES
    for a, b in zip(STAGES, STAGES[1:]):
        assert times[b] - times[a] >= 0.4 - 1e-3, (a, b)  # a stale timer would have moved it early
    assert [e["state"] for e in await stage_events(core, organ_id)] == ["draft", "failed", *STAGES]
    assert [r.action for r in await core.audit.list() if r.subject == f"organ:{organ_id}"] == ["organ.build", "organ.cancel", "organ.rebuild"]


async def test_rebuild_in_flight_restarts_the_clock(slow_core: Core) -> None:
    core = slow_core
    organ_id = await build(core)
    rebuilt_at = time.time()
    await core.organs.rebuild(organ_id, "admin")
    await until_state(core, organ_id, "canary", timeout=5)
    times = (await core.organs.status(organ_id))["metrics"]["stage_times"]
    assert times["canary"] - rebuilt_at >= 0.4 - 1e-3


async def test_dryrun_writes_nothing(core: Core) -> None:
    counted = (tables.organs, tables.cell_records, tables.events, tables.audit, tables.counters, tables.catalog)
    before = [await count(core, t) for t in counted]
    status, body = await core.organs.build({"organ_template": VOICE, "dryrun": True}, "admin")
    assert status == 200
    assert (body["organ_id"], body["dryrun"], body["ok"]) == (None, True, True)
    assert [c["action"] for c in body["plan"]["changes"]] == ["create", "create", "create", "create"]
    assert all(s["record_id"] is None for s in body["report"]["selector"])  # nothing was created
    assert body["plan"]["changes"][-1]["kind"] == "organ"
    assert body["plan"]["text"].startswith("+ cell analysis.text_normalize.v1")
    assert body["report"]["policy"][0]["rule"] == "capability.organs_builder"
    assert [await count(core, t) for t in counted] == before
    assert await build(core) == "organ-1"  # the dry-run consumed no id
    _, again = await core.organs.build({"organ_template": VOICE, "dryrun": True}, "admin")
    assert [c["action"] for c in again["plan"]["changes"]] == ["reuse", "reuse", "reuse", "create"]


async def test_dryrun_reports_a_closed_factory_gate_instead_of_refusing(core: Core) -> None:
    await core.policy.set_capability("admin", "factory_adapter", "disabled")
    status, body = await core.organs.build({"organ_template": VOICE, "dryrun": True}, "admin")
    assert (status, body["ok"], body["report"]["violations"][0]["capability"]) == (200, False, "factory_adapter")
    with pytest.raises(CapabilityDisabled):  # the real build is refused with the factory's gate
        await core.organs.build({"organ_template": VOICE}, "admin")
    assert await count(core, tables.organs) == 0


async def test_dryrun_of_an_invalid_template_reports_errors(core: Core) -> None:
    status, body = await core.organs.build({"organ_template": {"id": "organ.x.v1", "version": "1", "cells": []}, "dryrun": True}, "admin")
    assert status == 200 and body["ok"] is False and body["organ_id"] is None
    assert {e["path"] for e in body["report"]["errors"]} == {"$.version", "$.cells"}


async def test_inline_template_with_unknown_cell_creates_a_draft(slow_core: Core) -> None:
    core = slow_core  # read before the first stage: with 20 ms stages the cells may be canary already
    template = {"id": "organ.probe.v1", "version": "1.0.0", "cells": ["analysis.summarize.v1", "analysis.brand_new.v1"],
                "metadata": {"schema": "v1"}}
    organ_id = await build(core, template)
    status = await core.organs.status(organ_id)
    assert status["template_id"] == "organ.probe.v1"
    assert [(c["id"], c["state"]) for c in status["cells"]] == [("analysis.summarize.v1", "draft"), ("analysis.brand_new.v1", "draft")]


@pytest.mark.parametrize(
    ("template", "paths"),
    [
        ({"id": "organ.bad.v1", "version": "x", "cells": ["a.b", "a.b"], "pathways": [{"name": "p", "cells": ["zzz"]}]},
         {"$.version", "$.cells", "$.pathways[0].cells[0]"}),
        ({"id": "Organ", "version": "1.0.0", "cells": ["analysis.summarize.v1"]}, {"$.id"}),
        ({"id": "organ.bad.v1", "version": "1.0.0"}, {"$"}),
    ],
)
async def test_invalid_templates(core: Core, template: dict, paths: set[str]) -> None:
    with pytest.raises(InvalidTemplate) as info:
        await core.organs.build({"organ_template": template}, "admin")
    assert {e["path"] for e in info.value.errors} == paths
    assert await count(core, tables.organs) == 0


async def test_link_cycle_through_the_catalog_is_rejected(core: Core) -> None:
    base = {"version": "1.0.0", "analysis_type": "probe", "metadata": {"schema": "v1"}}
    await core.catalog.put_cell({**base, "id": "analysis.loop_a.v1", "links": ["analysis.loop_b.v1"]})
    await core.catalog.put_cell({**base, "id": "analysis.loop_b.v1", "links": ["analysis.loop_c.v1"]})
    with pytest.raises(InvalidTemplate):  # the catalog refuses to close the loop now ...
        await core.catalog.put_cell({**base, "id": "analysis.loop_c.v1", "links": ["analysis.loop_a.v1"]})
    async with core.db.transaction() as tx:  # ... but a catalog written before that check may hold one
        await core.catalog.register(tx, parse_cell({**base, "id": "analysis.loop_c.v1", "links": ["analysis.loop_a.v1"]}))
    template = {"id": "organ.loop.v1", "version": "1.0.0", "cells": ["analysis.summarize.v1", "analysis.loop_a.v1"]}
    with pytest.raises(InvalidTemplate) as info:
        await core.organs.build({"organ_template": template}, "admin")
    [error] = info.value.errors
    assert error["path"].startswith("$.cells") and "cycle" in error["message"]


async def test_unknown_template_id_and_bad_body(core: Core) -> None:
    with pytest.raises(NotFound):
        await core.organs.build({"organ_template": "organ.nothing.v1"}, "admin")
    for body in ({}, {"organ_template": 5}, {"organ_template": VOICE, "extra": 1}, {"organ_template": VOICE, "dryrun": "yes"}):
        with pytest.raises(InvalidRequest):
            await core.organs.build(body, "admin")


async def test_idempotency_key(core: Core) -> None:
    first = await core.organs.build({"organ_template": VOICE}, "admin", "key-1")
    assert await core.organs.build({"organ_template": VOICE}, "admin", "key-1") == first
    with pytest.raises(Conflict):
        await core.organs.build({"organ_template": "organ.echo.v1"}, "admin", "key-1")
    same = await asyncio.gather(*[core.organs.build({"organ_template": VOICE}, "admin", "key-2") for _ in range(5)])
    assert len({s[1]["organ_id"] for s in same}) == 1
    assert await count(core, tables.organs) == 2


async def test_closed_gate_refuses_every_operation(core: Core) -> None:
    organ_id = await build(core)
    await core.policy.set_capability("admin", "organs_builder", "disabled")
    calls = [
        core.organs.build({"organ_template": VOICE}, "admin"),
        core.organs.build({"organ_template": VOICE, "dryrun": True}, "admin"),
        core.organs.list(),
        core.organs.set_status(organ_id, "stable", None, "admin"),
        core.organs.cancel(organ_id, "admin"),
        core.organs.rebuild(organ_id, "admin"),
    ]
    for call in calls:
        with pytest.raises(CapabilityDisabled) as info:
            await call
        assert info.value.extra == {"capability": "organs_builder"}
    with pytest.raises(CapabilityDisabled):
        core.organs.stream(organ_id)


async def test_metrics(core: Core) -> None:
    m = core.metrics
    queries = m.organ_build_status_queries._value.get()
    organ_id = await build(core)
    assert m.organ_build_attempts._value.get() == 1 and m.organs_building._value.get() == 1
    await until_state(core, organ_id, "stable")  # polls with query=False: not a client query
    assert m.organ_build_status_queries._value.get() == queries
    await core.organs.status(organ_id)
    assert m.organ_build_status_queries._value.get() == queries + 1

    async def settled() -> bool:  # metrics follow the commit's post-commit hook
        return m.organs_building._value.get() == 0

    await wait_for(settled)
    assert m.organ_build_duration_ms._sum.get() >= sum(core.settings.stage_delays_ms)
    await core.organs.rebuild(organ_id, "admin")
    assert m.organ_build_attempts._value.get() == 2 and m.organs_building._value.get() == 1


async def test_build_started_is_logged(core: Core, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="neira.organs"):
        organ_id = await build(core)
    assert any(r.name == "neira.organs" and "organ build started" in r.getMessage() and organ_id in r.getMessage()
               for r in caplog.records)


async def test_thousand_concurrent_builds_reach_stable(core: Core) -> None:
    started = time.monotonic()
    results = await asyncio.gather(*[core.organs.build({"organ_template": VOICE}, "operator") for _ in range(1000)])
    ids = [body["organ_id"] for _, body in results]
    assert len(set(ids)) == 1000

    async def all_stable() -> bool:  # the gauge follows the commit's post-commit hook, a moment later
        states = {o["state"] for o in await core.organs.list()}
        return states == {"stable"} and core.metrics.organs_building._value.get() == 0

    await wait_for(all_stable, timeout=20)
    assert time.monotonic() - started < 20
    assert len([e for e in await core.events.list(0, 10_000) if e.type == "organ.stage"]) == 4000


async def _restart(settings: Settings, before: Core) -> Core:
    await before.stop()
    after = Core(settings)
    await after.start()
    return after


async def test_restart_keeps_states_and_resumes_in_flight_builds(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "restart", stage_delays_ms=(300, 300, 300))
    core = Core(settings)
    await core.start()
    stable = await build(core)
    await core.organs.set_status(stable, "stable", "done by hand", "admin")
    failed = await build(core)
    await core.organs.cancel(failed, "admin")
    paused = await build(core)
    await core.organs.set_status(paused, "experimental", None, "admin")
    flying = await build(core)
    core = await _restart(settings, core)
    try:
        assert await state_of(core, stable) == "stable"
        assert await state_of(core, failed) == "failed"
        assert await state_of(core, flying) in ("draft", "canary")
        await until_state(core, flying, "stable")
        assert await state_of(core, paused) == "experimental"
        assert await build(core) == "organ-5"  # ids are never reused
        assert core.metrics.organs_building._value.get() == 2  # paused + the new one
    finally:
        await core.stop()


async def test_portable_write_path_gives_the_same_rows(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SQLAlchemy Core path (other dialects) and the SQLite driver path store the same values."""
    from neira.storage import bulk

    fast = await build(core)
    await until_state(core, fast, "stable")
    monkeypatch.setattr(bulk, "DRIVER_FAST_PATH", set())
    portable = await build(core)
    await until_state(core, portable, "stable")
    a, b = await core.organs.status(fast), await core.organs.status(portable)
    assert (a["state"], a["auto"], a["cells"], list(a["metrics"]["stage_times"])) == (
        b["state"], b["auto"], b["cells"], list(b["metrics"]["stage_times"]))
    async with core.db.read() as conn:
        rows = {r.id: r for r in await conn.execute(select(tables.organs))}
    assert rows[fast].template == rows[portable].template
    audit = [r for r in await core.audit.list() if r.action == "organ.build"]
    assert [r.after for r in audit] == [audit[0].after] * 2


async def test_manual_moves_racing_the_scheduler_always_win(tmp_path: Path) -> None:
    """300 builds on 5 ms stages while each gets a manual move at a random moment: once a manual move is
    committed, no timer moves that organ again (stale heap entries are harmless)."""
    import random

    core = Core(make_settings(tmp_path / "race", stage_delays_ms=(5, 5, 5)))
    await core.start()
    try:
        ids = [body["organ_id"] for _, body in await asyncio.gather(
            *[core.organs.build({"organ_template": "organ.echo.v1"}, "admin") for _ in range(300)])]
        rng = random.Random(7)

        async def intervene(organ_id: str) -> str:
            await asyncio.sleep(rng.random() * 0.03)
            target = rng.choice(["stable", "failed"])  # legal from every stage of a build
            await core.organs.set_status(organ_id, target, "race", "admin")
            return target

        targets = await asyncio.gather(*[intervene(i) for i in ids])
        control = await build(core, "organ.echo.v1")
        await until_state(core, control, "stable")  # every stale timer of the others has long been due
        events = await core.events.list(0, 100_000)
        for organ_id, target in zip(ids, targets, strict=True):
            mine = [e.data for e in events if e.subject == f"organ:{organ_id}"]
            manual = max((i for i, d in enumerate(mine) if d.get("actor")), default=None)
            assert await state_of(core, organ_id) == target
            if manual is not None:  # the manual move changed the state: nothing automatic after it
                assert mine[manual + 1:] == [], (organ_id, mine)
            assert [d["state"] for d in mine if not d.get("actor")] == STAGES[: len([d for d in mine if not d.get("actor")])]
    finally:
        await core.stop()
