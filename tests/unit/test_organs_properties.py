"""Property: any sequence of manual moves, cancels and rebuilds leaves an organ exactly where a simple model
says, with one event per state change, one audit record per operation, and the gauges in step."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neira.core import Core
from neira.errors import InvalidTransition
from tests.conftest import make_settings

STATES = ["draft", "canary", "experimental", "stable", "failed"]
BUILDING = {"draft", "canary", "experimental"}
OPS = st.one_of(
    st.tuples(st.just("status"), st.sampled_from(STATES)),
    st.tuples(st.just("cancel"), st.none()),
    st.tuples(st.just("rebuild"), st.none()),
)


def test_manual_control_matches_the_model(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    # delays far beyond the test: nothing moves by itself, so the model is exact
    core = Core(make_settings(tmp_path / "props", stage_delays_ms=(600_000, 600_000, 600_000)))
    loop.run_until_complete(core.start())
    m = core.metrics

    async def scenario(ops: list[tuple[str, str | None]]) -> None:
        _, body = await core.organs.build({"organ_template": "organ.echo.v1"}, "admin")
        organ_id = body["organ_id"]
        state, attempts, changes, audited = "draft", 1, 1, 1
        failures = m.organ_build_failures._value.get()
        for op, arg in ops:
            if op == "status":
                assert arg is not None
                legal = arg == "failed" or (state != "failed" and STATES.index(arg) >= STATES.index(state))
                if not legal:  # backwards, or out of failed: the table refuses, nothing is written
                    with pytest.raises(InvalidTransition) as refused:
                        await core.organs.set_status(organ_id, arg, "property", "operator")
                    assert refused.value.body()["from"] == state and refused.value.body()["to"] == arg
                    status = await core.organs.status(organ_id, query=False)
                    assert status["state"] == state
                    continue
                await core.organs.set_status(organ_id, arg, "property", "operator")
                failures += state in BUILDING and arg == "failed"
                changes += arg != state
                state = arg
            elif op == "cancel":
                if state in BUILDING:
                    assert (await core.organs.cancel(organ_id, "admin"))["state"] == "failed"
                    failures += 1
                    changes += 1
                    state = "failed"
                else:
                    try:
                        await core.organs.cancel(organ_id, "admin")
                    except InvalidTransition:
                        audited -= 1  # refused: nothing written
                    else:
                        raise AssertionError("cancel of a finished build was accepted")
            else:
                await core.organs.rebuild(organ_id, "admin")
                attempts += 1
                changes += 1
                state = "draft"
            audited += 1
            status = await core.organs.status(organ_id, query=False)
            assert (status["state"], status["metrics"]["attempts"]) == (state, attempts)
            assert status["auto"] == (op == "rebuild")
        events = [e for e in await core.events.list(0, 100_000) if e.subject == f"organ:{organ_id}"]
        assert len(events) == changes and events[-1].data["state"] == state
        assert len([r for r in await core.audit.list(0, 100_000) if r.subject == f"organ:{organ_id}"]) == audited
        assert m.organ_build_failures._value.get() == failures
        building = sum(o["state"] in BUILDING for o in await core.organs.list())
        assert m.organs_building._value.get() == building

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(OPS, max_size=8))
    def check(ops: list[tuple[str, str | None]]) -> None:
        loop.run_until_complete(scenario(ops))

    try:
        check()
    finally:
        loop.run_until_complete(core.stop())
        loop.close()
