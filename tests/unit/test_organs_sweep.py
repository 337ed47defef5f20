"""The sweep (neira/organs/progress.py) on SQLite, one process: it takes over builds whose stage is overdue, and
never moves a stage twice, even when it races this process's own timers for every build."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from neira.core import Core
from tests.conftest import make_settings, started
from tests.unit.test_organs import STAGES, build, stage_events, wait_for


async def test_a_sweep_racing_the_timers_moves_each_stage_once(tmp_path: Path) -> None:
    # grace 0: every row past its deadline is the sweep's to take, exactly when the timers fire for it
    settings = make_settings(tmp_path / "d", stage_delays_ms=(30, 30, 30), sweep_interval_ms=5, sweep_grace_ms=0)
    async with started(Core(settings)) as core:
        organs = await asyncio.gather(*(build(core) for _ in range(40)))

        async def all_stable() -> bool:
            return [(await core.organs.status(o, query=False))["state"] for o in organs] == ["stable"] * len(organs)

        await wait_for(all_stable, 30)
        moves = {o: [e["state"] for e in await stage_events(core, o)] for o in organs}
        assert {o: m for o, m in moves.items() if m != STAGES} == {}
        assert core.metrics.organs_building._value.get() == 0


async def test_the_sweep_finishes_a_build_whose_timer_is_gone(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "d", stage_delays_ms=(50, 50, 50), sweep_interval_ms=50, sweep_grace_ms=100)
    async with started(Core(settings)) as core:
        organ = await build(core)
        core.organs.progress._flights.clear()  # as if this process had never timed it (a replica that died)
        t0 = time.monotonic()

        async def stable() -> bool:
            return (await core.organs.status(organ, query=False))["state"] == "stable"

        await wait_for(stable, 10)
        assert time.monotonic() - t0 >= 0.1  # not before its deadline and the grace
        assert [e["state"] for e in await stage_events(core, organ)] == STAGES
