"""Graduation (contract §7): organs and records leave canary/experimental on a verdict or a recorded human
decision; a failing verdict fails them; no data holds them; holds, approvals and forced approvals are audited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from neira.core import Core
from neira.errors import Held, InvalidRequest, InvalidTransition, PolicyDenied
from neira.lifecycle import ORGAN_STAGES
from neira.structs import to_builtins
from tests.conftest import auth
from tests.evidence.conftest import GOOD, HALF_BAD, cell, record_of

RANK = {s.value: i for i, s in enumerate(ORGAN_STAGES)}
FAST = {"min_runs": 4}  # four runs make a verdict: the tests wait for seconds, not minutes


def organ(name: str, cells: list[str], *, hitl: bool, version: str = "1.0.0", samples: list[dict[str, Any]] | None = None,
          **analysis: Any) -> dict[str, Any]:
    """An organ template over `cells` (one pathway), with its own samples if given."""
    metadata: dict[str, Any] = {"schema": "v1"}
    if samples is not None:
        metadata["samples"] = samples
    return {"id": f"organ.{name}.v{version.split('.')[0]}", "version": version, "roles": [], "cells": cells,
            "pathways": [{"name": "main", "cells": cells}], "metadata": metadata,
            "policies": {"stage": "draft", "hitl": hitl, "analysis": {**FAST, **analysis}}}


async def build(core: Core, template: dict[str, Any]) -> str:
    _, body = await core.organs.build({"organ_template": template}, "admin")
    return str(body["organ_id"])


async def organ_with(core: Core, impl: str, samples: list[dict[str, Any]], *, hitl: bool, name: str | None = None,
                     version: str = "1.0.0", **analysis: Any) -> str:
    """A cell on `impl` with `samples` (its draft record made first) and an organ over it, built."""
    cell_id = f"analysis.g_{name or impl}.v1"
    await record_of(core, {**cell(impl, samples, cell_id, analysis=FAST), "version": version})
    return await build(core, organ(name or impl, [cell_id], hitl=hitl, version=version, **analysis))


async def wait_for(core: Core, organ_id: str, ok: Callable[[dict[str, Any]], bool], timeout: float = 30,
                   watch: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Poll the organ's status until `ok` holds (each status also handed to `watch`)."""
    end = time.monotonic() + timeout
    while True:
        status = await core.organs.status(organ_id, query=False)
        if watch is not None:
            watch(status)
        if ok(status):
            return status
        assert time.monotonic() < end, f"organ {organ_id} stuck: {status['state']} waiting for {status['waiting_for']} ({status['analysis']})"
        await asyncio.sleep(0.02)


def never_ahead(status: dict[str, Any]) -> None:
    """An organ is never at a later stage than any of its cells (outside a manual move)."""
    if status["state"] in RANK:
        assert all(RANK.get(c["state"], 99) >= RANK[status["state"]] for c in status["cells"]), status
    assert status["override"] is False


async def audit_of(core: Core, subject: str) -> list[Any]:
    return [a for a in await core.audit.list(0, 10_000) if a.subject == subject]


async def test_a_good_organ_graduates_by_itself_when_hitl_is_false(ecore: Core) -> None:
    organ_id = await organ_with(ecore, "picky", GOOD, hitl=False)
    status = await wait_for(ecore, organ_id, lambda s: s["state"] == "stable", watch=never_ahead)
    assert all(c["state"] == "stable" for c in status["cells"])  # promoted with it, stage by stage
    promotions = [a for a in await audit_of(ecore, f"organ:{organ_id}") if a.action == "organ.promote"]
    assert [(a.before["state"], a.after["state"], a.actor) for a in promotions] == [
        ("canary", "experimental", "analysis"), ("experimental", "stable", "analysis")]
    for a in promotions:  # each names the verdict it rests on
        assert a.reason.startswith("verdict pass: ") and a.after["verdict"]["verdict"] == "pass"
        assert a.after["verdict"]["runs"] >= 4
    stages = [e for e in await ecore.events.list(0, 10_000) if e.type == "organ.stage" and e.subject == f"organ:{organ_id}"]
    assert [e.data["state"] for e in stages] == ["draft", "canary", "experimental", "stable"]
    assert [e.data.get("verdict", {}).get("verdict") for e in stages[2:]] == ["pass", "pass"]


async def test_a_good_organ_waits_for_approval_out_of_canary_when_hitl_is_true(ecore: Core) -> None:
    organ_id = await organ_with(ecore, "picky", GOOD, hitl=True)
    status = await wait_for(ecore, organ_id, lambda s: s["waiting_for"] == "approval")
    assert (status["state"], status["analysis"]["verdict"]) == ("canary", "pass")
    await asyncio.sleep(0.3)  # more rounds pass; nothing moves it without a human
    assert (await ecore.organs.status(organ_id, query=False))["state"] == "canary"
    waiting = [e for e in await ecore.events.list(0, 10_000) if e.type == "organ.waiting" and e.subject == f"organ:{organ_id}"]
    assert len(waiting) == 1 and waiting[0].data["analysis"]["verdict"] == "pass"
    assert to_builtins(await ecore.organs.approve(organ_id, "admin", "looks right")) == {"id": organ_id, "state": "experimental"}
    status = await wait_for(ecore, organ_id, lambda s: s["state"] == "stable", watch=never_ahead)  # by itself from there
    approved = [a for a in await audit_of(ecore, f"organ:{organ_id}") if a.action == "organ.approve"]
    assert len(approved) == 1 and approved[0].actor == "admin" and "verdict pass" in approved[0].reason


async def test_a_failing_organ_is_failed_with_the_metric_in_the_audit(ecore: Core) -> None:
    organ_id = await organ_with(ecore, "picky", HALF_BAD, hitl=False)
    status = await wait_for(ecore, organ_id, lambda s: s["state"] == "failed")
    assert status["cells"][0]["state"] == "canary"  # the cells stay where the organ took them; it never served
    failed = [a for a in await audit_of(ecore, f"organ:{organ_id}") if a.action == "organ.fail"]
    assert len(failed) == 1 and failed[0].actor == "analysis"
    assert "error_rate" in failed[0].reason and "> max_error_rate 0.01" in failed[0].reason
    assert failed[0].after["verdict"]["verdict"] == "fail"


async def test_a_slow_v2_fails_on_p99_against_its_stable_v1(ecore: Core) -> None:
    samples = [{"input": "ab", "expect": {"equals": "AB"}}, {"input": "cd", "expect": {"equals": "CD"}}]
    v1 = await organ_with(ecore, "picky", GOOD, hitl=False, name="speedy")
    await wait_for(ecore, v1, lambda s: s["state"] == "stable")
    await record_of(ecore, cell("slow", GOOD, "analysis.g_slowpoke.v1", analysis=FAST))
    v2 = await build(ecore, organ("speedy", ["analysis.g_slowpoke.v1"], hitl=False, version="2.0.0", samples=samples))
    status = await wait_for(ecore, v2, lambda s: s["state"] == "failed")
    failed = [a for a in await audit_of(ecore, f"organ:{v2}") if a.action == "organ.fail"]
    assert len(failed) == 1 and "p99_ratio" in failed[0].reason and "> max_p99_ratio 1.5" in failed[0].reason
    assert failed[0].after["verdict"]["baseline_id"] == v1
    assert status["state"] == "failed" and (await ecore.organs.status(v1, query=False))["state"] == "stable"


async def test_no_data_is_inconclusive_and_held_until_a_forced_approval_with_a_reason(ecore: Core) -> None:
    organ_id = await organ_with(ecore, "picky", [], hitl=False, name="silent", max_wait_ms=300)
    status = await wait_for(ecore, organ_id, lambda s: (s["analysis"] or {}).get("verdict") == "inconclusive")
    assert (status["state"], status["waiting_for"]) == ("canary", "analysis")
    await asyncio.sleep(0.3)
    assert (await ecore.organs.status(organ_id, query=False))["state"] == "canary"  # never promoted by itself
    with pytest.raises(Held) as held:
        await ecore.organs.approve(organ_id, "admin")
    assert held.value.extra["waiting_for"] == "analysis" and (held.value.extra["from"], held.value.extra["to"]) == ("canary", "experimental")
    with pytest.raises(InvalidRequest):
        await ecore.organs.approve(organ_id, "admin", None, force=True)  # force needs a reason
    assert to_builtins(await ecore.organs.approve(organ_id, "admin", "no samples yet; traffic checked by hand", force=True)) == {
        "id": organ_id, "state": "experimental"}
    forced = [a for a in await audit_of(ecore, f"organ:{organ_id}") if a.action == "organ.force_approve"]
    assert len(forced) == 1 and forced[0].reason == "no samples yet; traffic checked by hand"
    assert forced[0].before["verdict"]["verdict"] == "inconclusive"


async def test_hold_then_approve(ecore: Core) -> None:
    organ_id = await organ_with(ecore, "picky", GOOD, hitl=False, name="held")
    held = await ecore.organs.hold(organ_id, "admin", "wait for me")  # draft, or canary on a loaded machine
    assert held["waiting_for"] == "approval" and held["state"] in ("draft", "canary")
    await asyncio.sleep(0.3)  # far past the draft's 20 ms
    status = await ecore.organs.status(organ_id, query=False)
    assert (status["state"], status["waiting_for"], status["hold"]["reason"]) == (held["state"], "approval", "wait for me")
    if held["state"] == "draft":  # out of draft at once; from canary the approve first waits for its verdict
        assert to_builtins(await ecore.organs.approve(organ_id, "admin")) == {"id": organ_id, "state": "canary"}
    else:
        await ecore.organs.approve(organ_id, "admin")
    status = await wait_for(ecore, organ_id, lambda s: s["state"] == "stable", watch=never_ahead)
    assert status["hold"] is None
    actions = [a.action for a in await audit_of(ecore, f"organ:{organ_id}")]
    assert actions.index("organ.hold") < actions.index("organ.release") < actions.index("organ.approve")
    with pytest.raises(InvalidTransition) as refused:
        await ecore.organs.hold(organ_id, "admin")
    assert (refused.value.extra["from"], refused.value.extra["to"]) == ("stable", "stable")


async def test_a_lone_record_graduates_by_itself_when_hitl_is_false(ecore: Core) -> None:
    _, made = await ecore.factory.create({"template": cell("picky", GOOD, "analysis.g_lone.v1", analysis=FAST), "hitl": False}, "admin")
    await ecore.factory.approve(made["id"], "admin")  # a draft is not measured: a human lets it into canary
    end = time.monotonic() + 30
    while (record := await ecore.factory.get(made["id"]))["state"] != "stable":
        assert time.monotonic() < end, record["state"]
        await asyncio.sleep(0.02)
    moves = [(h["from"], h["to"], h["actor"]) for h in record["history"]]
    assert moves[-2:] == [("canary", "experimental", "analysis"), ("experimental", "stable", "analysis")]
    assert record["history"][-1]["reason"].startswith("verdict pass: ")


async def test_a_hitl_record_is_approved_by_a_human_and_a_failing_verdict_needs_force(ecore: Core) -> None:
    record = await record_of(ecore, cell("picky", HALF_BAD, "analysis.g_human.v1", analysis=FAST))
    await ecore.factory.approve(record, "admin")
    end = time.monotonic() + 30
    while (await ecore.analysis.of("cell", record)).verdict != "fail":
        assert time.monotonic() < end
        await asyncio.sleep(0.02)
    assert (await ecore.factory.get(record))["state"] == "canary"  # a human decides each step of a hitl record
    with pytest.raises(PolicyDenied) as denied:
        await ecore.factory.approve(record, "admin")
    assert denied.value.extra["violations"][0]["metric"] == "error_rate"
    with pytest.raises(InvalidRequest):
        await ecore.factory.approve(record, "admin", None, force=True)
    assert (await ecore.factory.approve(record, "admin", "known flaky input", force=True))["state"] == "experimental"
    forced = [a for a in await audit_of(ecore, f"cell:{record}") if a.action == "cell.force_approve"]
    assert len(forced) == 1 and forced[0].reason == "known flaky input" and forced[0].before["verdict"]["verdict"] == "fail"


async def test_the_routes(eclient: AsyncTestClient) -> None:
    await eclient.post("/factory/cells", json={"template": cell("picky", GOOD, "analysis.g_route.v1", analysis=FAST)}, headers=auth())
    r = await eclient.post("/organs/build", json={"organ_template": organ("route", ["analysis.g_route.v1"], hitl=True)}, headers=auth())
    organ_id = r.json()["organ_id"]
    r = await eclient.post(f"/organs/{organ_id}/hold", json={"reason": "look first"}, headers=auth())
    assert (r.status_code, r.json()["held"], r.json()["waiting_for"]) == (200, True, "approval")
    assert (await eclient.post(f"/organs/{organ_id}/hold", headers=auth("viewer"))).status_code == 403
    status = (await eclient.get(f"/organs/{organ_id}/status", headers=auth())).json()
    assert (status["waiting_for"], status["hold"]["reason"], status["override"]) == ("approval", "look first", False)
    r = await eclient.post(f"/organs/{organ_id}/approve", json={"force": "yes"}, headers=auth())
    assert r.status_code == 400
    r = await eclient.post(f"/organs/{organ_id}/approve", headers=auth())  # draft → canary, the hold ends
    assert (r.status_code, r.json()["state"]) == (200, "canary")
    r = await eclient.post(f"/organs/{organ_id}/approve", headers=auth())  # the verdict is not in yet
    assert (r.status_code, r.json()["code"], r.json()["waiting_for"]) == (409, "held", "analysis")
    assert (r.json()["from"], r.json()["to"]) == ("canary", "experimental")
    end = time.monotonic() + 30
    while (status := (await eclient.get(f"/organs/{organ_id}/status", headers=auth())).json())["waiting_for"] != "approval":
        assert time.monotonic() < end, status
        await asyncio.sleep(0.05)
    assert status["analysis"]["verdict"] == "pass" and status["analysis"]["runs"] >= 4
    r = await eclient.post(f"/organs/{organ_id}/approve", json={"reason": "ok"}, headers=auth())
    assert (r.status_code, r.json()) == (200, {"id": organ_id, "state": "experimental"})
    lifecycle = (await eclient.get("/api/neira/lifecycle", headers=auth())).json()
    moves = {(t["from"], t["via"], t["to"]) for t in lifecycle["organs"]["transitions"]}
    assert {("canary", "hold", "canary"), ("canary", "fail", "failed")} <= moves
    r = await eclient.post("/organs/organ-999/hold", headers=auth())
    assert r.status_code == 404


async def test_forced_record_approval_over_http(eclient: AsyncTestClient) -> None:
    template = cell("picky", HALF_BAD, "analysis.g_http.v1", analysis=FAST)
    record = (await eclient.post("/factory/cells", json={"template": template}, headers=auth())).json()["id"]
    assert (await eclient.post(f"/factory/cells/{record}/approve", headers=auth())).status_code == 200
    end = time.monotonic() + 30
    while (await eclient.get(f"/factory/cells/{record}/analysis", headers=auth())).json()["verdict"] != "fail":
        assert time.monotonic() < end
        await asyncio.sleep(0.05)
    r = await eclient.post(f"/factory/cells/{record}/approve", headers=auth())
    assert (r.status_code, r.json()["code"]) == (403, "policy_denied")
    assert r.json()["violations"][0]["metric"] == "error_rate" and "error_rate" in r.json()["reason"]
    r = await eclient.post(f"/factory/cells/{record}/approve", json={"force": True}, headers=auth())
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request")
    r = await eclient.post(f"/factory/cells/{record}/approve", json={"force": True, "reason": "seen it"}, headers=auth())
    assert (r.status_code, r.json()["state"]) == (200, "experimental")
    audit = (await eclient.get("/api/neira/audit", headers=auth())).json()
    forced = [a for a in audit if a["action"] == "cell.force_approve" and a["subject"] == f"cell:{record}"]
    assert len(forced) == 1 and forced[0]["reason"] == "seen it"
    history = (await eclient.get(f"/factory/cells/{record}", headers=auth())).json()["history"]
    assert history[-1]["reason"].startswith("seen it (forced over verdict fail: ")
