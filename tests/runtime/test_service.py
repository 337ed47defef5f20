"""RunService on a real core and real worker processes: traces, every error code, the pool's limits."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from neira.core import Core
from neira.errors import Busy, InvalidRequest, NotFound, NotRunnable
from neira.runtime.payloads import Text
from neira.structs import to_builtins
from tests.conftest import make_settings
from tests.runtime.conftest import TIMEOUT_MS, cell, record_of
from tests.runtime.doubles import SLOW_START_S, with_slow_start


async def organ(core: Core, *impls: str) -> str:
    """A built organ whose one pathway runs the implementations in order."""
    ids = []
    for name in impls:
        t = cell(name)
        ids.append(t["id"])
        await core.catalog.put_cell(t)
    template = {"id": f"organ.t{len(impls)}{impls[0]}.v1", "version": "1.0.0", "roles": ["test"], "cells": ids,
                "pathways": [{"name": "main", "cells": ids}], "policies": {"stage": "draft", "hitl": True}}
    _, body = await core.organs.build({"organ_template": template}, "admin")
    return body["organ_id"]


async def test_a_cell_runs_and_leaves_a_trace(rcore: Core) -> None:
    record = await record_of(rcore, cell("upper"))
    result = await rcore.runs.run_cell(record, {"input": "abc"})
    assert (result.ok, result.output, result.error) == (True, Text(text="ABC"), None)
    [entry] = result.trace
    assert (entry.cell, entry.record_id, entry.impl, entry.ok, entry.output_type) == ("analysis.t_upper.v1", record, "upper", True, "text")
    assert result.run_id.startswith("run-") and result.ms >= entry.ms >= 0


async def test_each_output_feeds_the_next_cell(rcore: Core) -> None:
    organ_id = await organ(rcore, "upper", "reverse", "echo")
    result = await rcore.runs.run_organ(organ_id, {"input": {"type": "text", "text": "abc"}})
    assert result.output == Text(text="CBA")
    assert [(e.impl, e.ok, e.output_type) for e in result.trace] == [("upper", True, "text"), ("reverse", True, "text"), ("echo", True, "text")]
    assert rcore.runs.figures(organ_id)["total"] == 1


@pytest.mark.parametrize(("impl", "code", "reason"), [
    ("boom", "cell_failed", "ValueError: no such thing in <path>"),
    ("not_a_payload", "cell_failed", "TypeError: implementation answered dict, not a payload"),
    ("crash", "cell_failed", "the worker process running the cell died"),
    ("unsendable", "cell_failed", "the cell answered a payload that cannot leave the worker (TypeError: Encoding "
     "objects of type object is unsupported)"),
    ("summarize", "input_invalid", "the text has no words to summarise"),
])
async def test_a_failing_cell_stops_the_run_and_is_named(rcore: Core, impl: str, code: str, reason: str) -> None:
    organ_id = await organ(rcore, "upper", impl, "echo")
    result = await rcore.runs.run_organ(organ_id, {"input": "123 ..."})
    assert result.ok is False and result.output is None
    assert result.error is not None
    assert (result.error.code, result.error.cell, result.error.reason) == (code, f"analysis.t_{impl}.v1", reason)
    assert [(e.impl, e.ok) for e in result.trace] == [("upper", True), (impl, False)]
    # the pool is whole again: the next run works
    assert (await rcore.runs.run_organ(await organ(rcore, "reverse"), {"input": "ab"})).output == Text(text="ba")


async def test_a_worker_that_dies_under_a_job_is_logged_with_its_exit_code(rcore: Core, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "neira.runtime")
    assert (await rcore.runs.run_organ(await organ(rcore, "crash"), {"input": "x"})).ok is False
    died = "a run worker died under a job (exit code 3,"
    async with asyncio.timeout(10):  # logged once its process is joined, off the loop: the answer did not wait
        while not any(r.getMessage().startswith(died) for r in caplog.records):
            await asyncio.sleep(0.01)
    assert [r.getMessage()[:len(died)] for r in caplog.records if "died" in r.getMessage()] == [died]


async def test_a_runaway_cell_hits_the_timeout_and_its_worker_is_replaced(rcore: Core) -> None:
    organ_id = await organ(rcore, "upper", "spin")
    assert (await rcore.runs.run_cell(await record_of(rcore, cell("upper")), {"input": "x"})).ok  # workers started
    start = time.monotonic()
    result = await rcore.runs.run_organ(organ_id, {"input": "x"})
    elapsed = time.monotonic() - start
    assert result.error is not None and (result.error.code, result.error.cell) == ("timeout", "analysis.t_spin.v1")
    assert [(e.impl, e.ok, e.output_type) for e in result.trace] == [("upper", True, "text"), ("spin", False, None)]
    assert TIMEOUT_MS / 1000 <= elapsed < TIMEOUT_MS / 1000 + 2
    after = await rcore.runs.run_organ(await organ(rcore, "reverse"), {"input": "ab"})
    assert after.ok, after.error


async def test_a_type_break_is_found_before_the_cell_runs(rcore: Core) -> None:
    organ_id = await organ(rcore, "text_to_phonemes", "reverse")
    result = await rcore.runs.run_organ(organ_id, {"input": "привет"})
    assert result.error is not None
    assert (result.error.code, result.error.cell) == ("type_mismatch", "analysis.t_reverse.v1")
    assert result.error.reason == "analysis.t_reverse.v1 (reverse) takes text, not phonemes"
    assert [(e.impl, e.ok) for e in result.trace] == [("text_to_phonemes", True), ("reverse", False)]


async def test_the_queue_is_bounded(rcore: Core) -> None:
    """Two workers and a queue of two: four runs are taken, the fifth is `busy`."""
    organ_id = await organ(rcore, "spin")
    runs = [asyncio.create_task(rcore.runs.run_organ(organ_id, {"input": "x"})) for _ in range(4)]
    while rcore.runs.pool.waiting + rcore.runs.pool.busy_workers < 4:
        await asyncio.sleep(0.01)  # waiting for the runs to be taken, not for a result
    with pytest.raises(Busy):
        await rcore.runs.run_organ(organ_id, {"input": "x"})
    results = await asyncio.gather(*runs)
    assert [r.error.code for r in results if r.error] == ["timeout"] * 4


@pytest.mark.parametrize(("body", "message"), [
    ({"input": {"type": "video"}}, "Invalid value 'video' - at `$.input.type`"),
    ({"input": {"type": "text", "text": ""}}, "text is empty"),
    ({"input": {"type": "image", "data_b64": "%%%"}}, "Invalid base64 encoded string - at `$.input.data_b64`"),
    ({"input": 5}, "Expected `str | object`, got `int` - at `$.input`"),
    ({}, "missing required field `input`"),
    ({"input": "x", "extra": 1}, "unknown field `extra`"),
    ("x", "body must be a JSON object"),
])
async def test_bad_requests_say_what_was_wrong(rcore: Core, body: object, message: str) -> None:
    organ_id = await organ(rcore, "reverse")
    with pytest.raises(InvalidRequest) as info:
        await rcore.runs.run_organ(organ_id, body)
    assert message in info.value.reason


async def test_what_cannot_run(rcore: Core) -> None:
    record = await record_of(rcore, cell("no_such_impl"))
    with pytest.raises(NotRunnable, match="no implementation 'no_such_impl'"):
        await rcore.runs.run_cell(record, {"input": "x"})
    upper = await record_of(rcore, cell("upper"))
    await rcore.factory.disable(upper, "admin")
    with pytest.raises(NotRunnable, match="is disabled"):
        await rcore.runs.run_cell(upper, {"input": "x"})
    bad_params = await record_of(rcore, cell("summarize", "analysis.t_sum_bad.v1", sentences=0))
    with pytest.raises(NotRunnable, match="params are invalid"):
        await rcore.runs.run_cell(bad_params, {"input": "x"})
    reverse = await record_of(rcore, cell("reverse"))
    await rcore.policy.set_capability("admin", "factory_adapter", "disabled")
    with pytest.raises(NotRunnable, match="factory_adapter gate is closed") as info:
        await rcore.runs.run_cell(reverse, {"input": "x"})
    assert info.value.extra["capability"] == "factory_adapter"
    with pytest.raises(NotFound):
        await rcore.runs.run_cell("cell-999", {"input": "x"})


async def test_a_failed_organ_cannot_run(rcore: Core) -> None:
    organ_id = await organ(rcore, "reverse")
    await rcore.organs.set_status(organ_id, "failed", None, "admin")
    with pytest.raises(NotRunnable, match="is failed"):
        await rcore.runs.run_organ(organ_id, {"input": "x"})


async def test_context_keeps_a_bounded_memory_per_organ(rcore: Core) -> None:
    await rcore.catalog.put_cell(cell("context", "memory.t_ctx.v1", limit=2))
    template = {"id": "organ.ctx.v1", "version": "1.0.0", "cells": ["memory.t_ctx.v1"],
                "pathways": [{"name": "main", "cells": ["memory.t_ctx.v1"]}]}
    _, body = await rcore.organs.build({"organ_template": template}, "admin")
    for word in ("one", "two", "three"):
        result = await rcore.runs.run_organ(body["organ_id"], {"input": word})
    assert result.output is not None
    kept = result.output.data  # type: ignore[union-attr]
    assert [e["text"] for e in kept["entries"]] == ["two", "three"] and kept["count"] == 2
    assert [e["text"] for e in await rcore.runs.memory.recall(f"organ:{body['organ_id']}")] == ["two", "three"]


async def test_short_text_work_runs_inline_and_long_text_on_a_worker(rcore: Core) -> None:
    organ_id = await organ(rcore, "reverse", "echo")
    assert (await rcore.runs.run_organ(organ_id, {"input": "abc"})).output == Text(text="cba")
    assert rcore.runs.pool._all == set()  # no worker was needed, so none was started
    long = "ab" * 3000
    assert (await rcore.runs.run_organ(organ_id, {"input": long})).output == Text(text=long[::-1])
    assert rcore.runs.pool._all  # the long text went to a worker (the pool's second may still be starting)


async def test_a_workers_warm_up_is_no_runs_deadline(tmp_path: Path) -> None:
    """A worker is handed a run only once its implementations are warm: an engine that takes longer to start
    than the run timeout still answers the first run (before, the warm-up ran inside that run's deadline)."""
    c = Core(make_settings(tmp_path / "slow", run_timeout_ms=TIMEOUT_MS, run_workers=1, run_queue=2), with_slow_start())
    await c.start()
    try:
        assert SLOW_START_S * 1000 > TIMEOUT_MS
        record = await record_of(c, cell("upper_slow_start"))
        started = time.perf_counter()
        result = to_builtins(await c.runs.run_cell(record, {"input": "hello"}))
        assert result["ok"], result.get("error")
        assert result["output"] == {"type": "text", "text": "HELLO"}
        assert time.perf_counter() - started >= SLOW_START_S  # it did wait for the warm-up, outside the deadline
    finally:
        await c.stop()
