"""A closed `organs_builder` gate holds every build in flight: no stage moves until it opens, the status says
why, each build keeps the delay it had left, and every stage happens exactly once after; across restarts too."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from neira.core import Core
from neira.organs.scheduler import StageScheduler
from tests.conftest import make_settings, started
from tests.unit.test_organs import STAGES, build, stage_events, until_state

DELAY_MS = 300


async def stages(core: Core, organ_id: str) -> list[str]:
    return [e["state"] for e in await stage_events(core, organ_id)]


@pytest.fixture
async def slow_core(tmp_path: Path):
    async with started(Core(make_settings(tmp_path / "hold", stage_delays_ms=(DELAY_MS, DELAY_MS, DELAY_MS)))) as c:
        yield c


async def test_closed_gate_holds_builds_until_it_opens(slow_core: Core) -> None:
    core = slow_core
    organs = [await build(core) for _ in range(5)]
    await until_state(core, organs[0], "canary")
    await core.policy.set_capability("admin", "organs_builder", "disabled")
    held = {o: (await core.organs.status(o, query=False))["state"] for o in organs}
    status = await core.organs.status(organs[0], query=False)
    assert (status["waiting_for"], status["held_by"], status["metrics"]["next_stage_at"]) == ("gate", "organs_builder", None)
    assert 0 <= status["metrics"]["held_left_ms"] <= DELAY_MS
    await asyncio.sleep(4 * DELAY_MS / 1000)  # longer than every delay left: nothing may move meanwhile
    assert {o: (await core.organs.status(o, query=False))["state"] for o in organs} == held
    for o in organs:
        assert await stages(core, o) == STAGES[: STAGES.index(held[o]) + 1]
    opened = time.time()
    await core.policy.set_capability("admin", "organs_builder", "experimental")
    assert (await core.organs.status(organs[0], query=False))["waiting_for"] == "delay"
    for o in organs:
        await until_state(core, o, "stable")
        assert await stages(core, o) == STAGES  # every stage exactly once
    # the stages left after the hold took their own delays, not less: at least two full ones remained
    assert time.time() - opened >= 2 * DELAY_MS / 1000 - 0.05


async def test_a_build_keeps_the_delay_it_had_left(slow_core: Core) -> None:
    core = slow_core
    organ_id = await build(core)
    row = await core.organs.rows.get(organ_id)
    await core.policy.set_capability("admin", "organs_builder", "disabled")
    left = (await core.organs.status(organ_id, query=False))["metrics"]["held_left_ms"] / 1000
    await asyncio.sleep(0.5)
    await core.policy.set_capability("admin", "organs_builder", "stable")
    shifted = (await core.organs.status(organ_id, query=False))["metrics"]["next_stage_at"]
    assert shifted == pytest.approx(time.time() + left, abs=0.1) and shifted > row.deadline + 0.4


async def test_flips_between_open_states_do_not_hold(slow_core: Core) -> None:
    core = slow_core
    organ_id = await build(core)
    await core.policy.set_capability("admin", "organs_builder", "stable")
    assert core.organs.progress.held_since is None
    await until_state(core, organ_id, "stable")
    assert await stages(core, organ_id) == STAGES


async def test_a_server_started_closed_holds_until_opened_at_run_time(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "restart", stage_delays_ms=(200, 200, 200))
    first = Core(settings)
    await first.start()
    organ_id = await build(first)
    await first.stop()
    closed = Core(make_settings(tmp_path / "restart", stage_delays_ms=(200, 200, 200),
                                capabilities={"organs_builder": "disabled"}))
    await closed.start()
    try:
        await asyncio.sleep(0.8)  # its deadline passed long ago: a free scheduler would move it at once
        assert await stages(closed, organ_id) == ["draft"]
        assert (await closed.organs.status(organ_id, query=False))["waiting_for"] == "gate"
        await closed.policy.set_capability("admin", "organs_builder", "experimental")
        await until_state(closed, organ_id, "stable")
        assert await stages(closed, organ_id) == STAGES
    finally:
        await closed.stop()


async def test_a_hold_stored_by_an_earlier_run_ends_at_a_start_with_the_gate_open(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "reopen", stage_delays_ms=(200, 200, 200))
    first = Core(settings)
    await first.start()
    organ_id = await build(first)
    await first.policy.set_capability("admin", "organs_builder", "disabled")
    held_at = await stages(first, organ_id)  # draft, or one stage on if the first delay ran out before the flip
    await first.stop()
    again = Core(settings)  # the stored flip keeps it closed: still held
    await again.start()
    await asyncio.sleep(0.5)
    assert await stages(again, organ_id) == held_at and again.organs.progress.held_since is not None
    await again.stop()
    opened = Core(make_settings(tmp_path / "reopen", stage_delays_ms=(200, 200, 200),
                                capabilities={"organs_builder": "experimental"}))
    await opened.start()
    try:
        assert opened.organs.progress.held_since is None
        await until_state(opened, organ_id, "stable")
        assert await stages(opened, organ_id) == STAGES
    finally:
        await opened.stop()


async def test_scheduler_release_keeps_the_order_and_shifts() -> None:
    seen: list[tuple[str, int]] = []

    async def advance(due: list[tuple[str, int]]) -> None:
        seen.extend(due)

    now = time.time()
    s = StageScheduler(advance)
    s.hold()
    s.start()
    s.push(now - 1, "late", 1)  # already due when the hold began: due as soon as it ends
    s.push(now + 0.2, "later", 1)
    await asyncio.sleep(0.3)
    assert seen == []
    s.release(now, 0.3)
    await asyncio.sleep(0.05)
    assert seen == [("late", 1)]
    await asyncio.sleep(0.6)
    assert seen == [("late", 1), ("later", 1)]
    await s.close()
