"""Canary analysis: verdicts from sample runs kept as rows, with reasons naming metric, threshold and value."""

from __future__ import annotations

import asyncio
import time

from litestar.testing import AsyncTestClient

from neira.core import Core
from neira.verdict import Analysis
from tests.conftest import auth
from tests.evidence.conftest import GOOD, HALF_BAD, cell, record_of


async def settled(core: Core, kind: str, id: str, timeout: float = 30) -> Analysis:
    """The analysis once it is no longer running."""
    end = time.monotonic() + timeout
    while True:
        result = await core.analysis.of(kind, id)
        if result.verdict != "running" or time.monotonic() > end:
            return result
        await asyncio.sleep(0.05)


async def test_good_samples_pass(ecore: Core) -> None:
    record = await record_of(ecore, cell("picky", GOOD))
    await ecore.factory.approve(record, "admin")
    result = await settled(ecore, "cell", record)
    assert (result.verdict, result.errors, result.error_rate, result.baseline, result.stage) == ("pass", 0, 0.0, None, "canary")
    assert result.runs >= 20 and result.p99_ms >= result.p50_ms > 0 and result.divergence == 0.0
    assert result.reasons[0] == "error_rate 0.000 ≤ max_error_rate 0.01"
    assert (result.thresholds.min_runs, result.thresholds.max_error_rate, result.thresholds.max_p99_ratio) == (20, 0.01, 1.5)
    events = [e for e in await ecore.events.list(0, 1000) if e.type == "analysis.verdict"]
    assert [(e.subject, e.data["verdict"]) for e in events] == [(f"cell:{record}", "pass")]


async def test_a_failing_double_fails_naming_the_error_rate(ecore: Core) -> None:
    record = await record_of(ecore, cell("picky", HALF_BAD))
    await ecore.factory.approve(record, "admin")
    result = await settled(ecore, "cell", record)
    assert result.verdict == "fail" and result.errors >= 1
    assert result.reasons[0].startswith(f"error_rate {result.error_rate:.3f} > max_error_rate 0.01 (")
    assert result.divergence > 0  # a sample that ran but did not meet its expect


async def test_no_data_after_max_wait_is_inconclusive(ecore: Core) -> None:
    record = await record_of(ecore, cell("picky", [], analysis={"max_wait_ms": 200}))
    await ecore.factory.approve(record, "admin")
    assert (await ecore.analysis.of("cell", record)).verdict == "running"
    await asyncio.sleep(0.3)
    result = await ecore.analysis.of("cell", record)
    assert (result.verdict, result.runs) == ("inconclusive", 0)
    assert result.reasons[0] == "runs 0 < min_runs 20 after max_wait_ms 200"


async def test_a_draft_is_not_measured_and_not_passed(ecore: Core) -> None:
    record = await record_of(ecore, cell("picky", GOOD))
    result = await ecore.analysis.of("cell", record)
    assert (result.verdict, result.runs, result.reasons) == (
        "inconclusive", 0, [f"not measured: cell {record} is draft; analysis runs in canary and experimental"])


async def stable_and_slow(core: Core, family: str) -> tuple[str, str]:
    """A stable v1 record of `family` (promoted on passing verdicts) and a slow v2 just approved into canary."""
    stable = await record_of(core, cell("picky", GOOD, family))
    await core.factory.approve(stable, "admin")
    for _ in range(2):  # out of canary and experimental only on a passing verdict (graduation)
        assert (await settled(core, "cell", stable)).verdict == "pass"
        await core.factory.approve(stable, "admin")
    assert (await core.factory.get(stable))["state"] == "stable"
    slow = await record_of(core, {**cell("slow", GOOD, family), "version": "2.0.0"})
    await core.factory.approve(slow, "admin")
    return stable, slow


async def test_a_slow_version_fails_on_p99_against_the_stable_baseline(ecore: Core) -> None:
    stable, slow = await stable_and_slow(ecore, "analysis.e_family.v1")
    result = await settled(ecore, "cell", slow)
    assert result.verdict == "fail" and result.baseline is not None and result.baseline.id == stable
    assert result.reasons[0].startswith("p99_ratio ") and "> max_p99_ratio 1.5" in result.reasons[0]


async def test_thresholds_come_from_the_template(ecore: Core) -> None:
    record = await record_of(ecore, cell("picky", HALF_BAD, analysis={"min_runs": 4, "max_error_rate": 0.5}))
    await ecore.factory.approve(record, "admin")
    result = await settled(ecore, "cell", record)
    assert (result.verdict, result.thresholds.min_runs, result.thresholds.max_error_rate) == ("pass", 4, 0.5)


async def test_the_routes(eclient: AsyncTestClient) -> None:
    record = (await eclient.post("/factory/cells", json={"template": cell("picky", GOOD)}, headers=auth())).json()["id"]
    r = await eclient.get(f"/factory/cells/{record}/analysis", headers=auth("viewer"))
    assert r.status_code == 200
    assert set(r.json()) >= {"verdict", "runs", "errors", "error_rate", "p50_ms", "p99_ms", "baseline", "divergence",
                             "thresholds", "reasons"}
    assert r.json()["thresholds"] == {"min_runs": 20, "max_error_rate": 0.01, "max_p99_ratio": 1.5, "max_wait_ms": 30000}
    assert (await eclient.get("/factory/cells/cell-77/analysis", headers=auth())).status_code == 404
    assert (await eclient.get("/organs/organ-77/analysis", headers=auth())).status_code == 404
    built = (await eclient.post("/organs/build", json={"organ_template": "organ.reverse.v1"}, headers=auth())).json()
    r = await eclient.get(f"/organs/{built['organ_id']}/analysis", headers=auth())
    assert r.status_code == 200 and r.json()["verdict"] in ("running", "pass", "inconclusive")
