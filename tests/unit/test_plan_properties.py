"""Property: for generated organ specs over a generated catalog (cells with records in any state, cells the
catalog lacks), apply carries out exactly the planned changes — same actions, kinds and ids, in order — and
the organ it builds runs exactly the records the plan named or created. A plan the policy denies changes
nothing."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neira.commands.plan import make_plan
from neira.commands.resolve import Resolution
from neira.core import Core
from neira.errors import NeiraError
from neira.plan import Blocked, plan_view
from neira.structs import to_builtins
from tests.conftest import make_settings

# what happens to a catalog cell before the plan: no record, or one record moved along these events
HISTORIES = [None, [], ["approve"], ["approve", "approve", "approve"], ["approve", "rollback"], ["disable"]]
CELL = st.tuples(st.booleans(), st.sampled_from(range(len(HISTORIES))))  # (in the catalog?, history)


def test_apply_carries_out_exactly_the_planned_changes(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    core = Core(make_settings(tmp_path / "props", stage_delays_ms=(600_000, 600_000, 600_000)))
    loop.run_until_complete(core.start())
    rounds = itertools.count()

    async def scenario(cells: list[tuple[bool, int]], lang: str) -> None:
        n = next(rounds)
        ids = [f"analysis.prop{n}_{i}.v1" for i in range(len(cells))]
        for cell_id, (in_catalog, history) in zip(ids, cells, strict=True):
            if not in_catalog:
                continue
            await core.catalog.put_cell({"id": cell_id, "version": "1.0.0", "analysis_type": "probe", "links": [],
                                         "metadata": {"schema": "v1"}})
            if HISTORIES[history] is None:
                continue
            _, record = await core.factory.create({"template": cell_id}, "admin")
            for move in HISTORIES[history]:
                await getattr(core.factory, move)(record["id"], "admin")
        template = {"id": f"organ.prop{n}.v1", "version": "1.0.0", "roles": ["probe"], "cells": ids,
                    "pathways": [{"name": "main", "cells": ids}], "policies": {"stage": "draft", "hitl": True},
                    "metadata": {"schema": "v1"}}
        res = Resolution(intent="create_organ", lang=lang, spec={"kind": "organ_template", "template": template})
        plan = await make_plan(res, core)
        shown = plan_view(plan)
        planned = [(c.action, c.kind, c.id, c.record_id) for c in shown.changes]
        await core.commands.store.save(plan.id, f"s-{n}", plan.base, {"plan": to_builtins(plan), "actor": "admin"})
        organs_before = len(await core.organs.list())
        if not plan.allowed:  # a dead record of a cell's version: denied, and nothing is written
            with pytest.raises(NeiraError):
                await core.commands.apply(plan.id, "admin")
            assert len(await core.organs.list()) == organs_before
            assert any(isinstance(step, Blocked) for step in plan.steps)
            assert [d.rule for d in plan.decisions if d.action == "deny"] == ["cell.live_record"] * sum(
                isinstance(step, Blocked) for step in plan.steps)
            return
        result = await core.commands.apply(plan.id, "admin")
        applied = result.applied
        assert [(a.action, a.kind, a.id) for a in applied] == [p[:3] for p in planned]
        for a, p in zip(applied, planned, strict=True):
            if p[3] is not None:  # a reused record (or the live organ) is exactly the one the plan named
                assert (a.record_id or a.organ_id) == p[3]
        organ = applied[-1]
        status = await core.organs.status(organ.organ_id, query=False)
        assert [c["record_id"] for c in status["cells"]] == [a.record_id for a in applied if a.kind == "cell"]
        again = await core.commands.apply(plan.id, "admin")
        assert again.already_applied is True and again.applied == applied

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(CELL, min_size=1, max_size=6), st.sampled_from(["ru", "en"]))
    def check(cells: list[tuple[bool, int]], lang: str) -> None:
        loop.run_until_complete(scenario(cells, lang))

    try:
        check()
    finally:
        loop.run_until_complete(core.stop())
        loop.close()
