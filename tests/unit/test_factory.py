"""The factory: create, idempotency, every lifecycle move with its history/audit/events/metrics, heals,
rollbacks, the dry-run (which writes nothing) and ensure_cells for the organ builder."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from neira.audit import Audit
from neira.catalog import CELL, Catalog
from neira.cell_plan import parse_request
from neira.errors import CapabilityDisabled, Conflict, InvalidRequest, InvalidTemplate, InvalidTransition, NotFound
from neira.events import EventBus
from neira.structs import to_builtins
from neira.factory import Factory
from neira.plan import Blocked, Snapshot
from neira.planning import cell_step, generated_template
from neira.metrics import Metrics
from neira.policy import PolicyEngine
from neira.storage import tables
from neira.storage.db import Database

T = "analysis.summarize.v1"


def tpl(version: str = "1.0.0", id: str = T, **extra: Any) -> dict[str, Any]:
    return {"id": id, "version": version, "analysis_type": "summarize", "links": [], "metadata": {"schema": "v1"}} | extra


@dataclass
class Services:
    db: Database
    metrics: Metrics
    events: EventBus
    audit: Audit
    policy: PolicyEngine
    catalog: Catalog
    factory: Factory
    data: Path

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


async def make_services(data: Path, heal_delay_s: float = 0.01) -> Services:
    metrics = Metrics()
    db = Database(f"sqlite+aiosqlite:///{data / 'neira.db'}")
    await db.create()
    events, audit = EventBus(db, metrics), Audit(db, metrics)
    policy = PolicyEngine(db, events, audit, metrics)
    await policy.load({}, False)
    catalog = Catalog(db, data / "cells", metrics)
    factory = Factory(db, catalog, policy, events, audit, metrics, heal_delay_s=heal_delay_s)
    await factory.start()
    return Services(db, metrics, events, audit, policy, catalog, factory, data)


@pytest.fixture
async def s(tmp_path: Path):
    services = await make_services(tmp_path)
    yield services
    await services.factory.close()
    await services.db.close()


async def put_cells(s: Services, *bodies: dict[str, Any]) -> None:
    for body in bodies:
        await s.catalog.put_cell(body)


async def state_of(s: Services, id: str) -> str:
    return (await s.factory.get(id))["state"]


async def dump(s: Services) -> dict[str, Any]:
    """Every row of every table and every file under the data dir."""
    out: dict[str, Any] = {}
    async with s.db.read() as conn:
        for name, table in tables.metadata.tables.items():
            out[name] = [tuple(r) for r in await conn.execute(select(table))]
    out["files"] = sorted((str(p), p.read_bytes()) for p in s.data.rglob("*") if p.is_file() and "neira.db" not in p.name)
    return out


# --- requests --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "expected"), [
    ({"template": {"id": "x"}}, ({"id": "x"}, "adapter", True)),
    ({"tpl": {"id": "x"}, "backend": "wasm", "hitl": False}, ({"id": "x"}, "wasm", False)),
    ({"spec": "analysis.x.v1", "mode": "script"}, ("analysis.x.v1", "script", True)),
    ({"spec": {"template": {"id": "x"}, "backend": "script", "hitl": False}}, ({"id": "x"}, "script", False)),
    ({"spec": {"template": {"id": "x"}, "backend": "script"}, "backend": "script"}, ({"id": "x"}, "script", True)),
])
def test_parse_request(body, expected):
    r = parse_request(body)
    assert (r.template, r.backend, r.hitl) == expected


@pytest.mark.parametrize("body", [
    [], {}, {"template": {}, "tpl": {}}, {"template": {}, "extra": 1}, {"template": {}, "backend": "rust"},
    {"template": {}, "backend": 1}, {"template": {}, "hitl": "yes"}, {"template": 5}, {"template": None},
    {"template": {}, "backend": "adapter", "mode": "wasm"}, {"spec": {"template": {}, "backend": "wasm"}, "backend": "adapter"},
    {"spec": {"template": {}, "x": 1}},
])
def test_parse_request_rejects(body):
    with pytest.raises(InvalidRequest):
        parse_request(body)


# --- create ----------------------------------------------------------------------------------------
async def test_create_makes_a_draft_record_and_registers_the_template(s: Services):
    status, record = await s.factory.create({"tpl": tpl()}, "operator")
    assert status == 201
    assert to_builtins(record) == {
        "id": "cell-1", "state": "draft", "template_id": T, "version": "1.0.0", "backend": "adapter", "hitl": True,
        "kind": "analysis", "previous_state": None, "digest": record["digest"], "template": tpl(),
        "created_at": record["created_at"], "updated_at": record["created_at"],
    }
    assert await s.catalog.get_cell(T) == tpl()
    got = await s.factory.get("cell-1")
    assert to_builtins(got) == to_builtins(record) | {"history": [{"from": None, "to": "draft", "at": got["history"][0]["at"], "actor": "operator", "reason": None}]}
    assert s.metric("factory_cells_created_total", backend="adapter") == 1


async def test_the_same_template_again_returns_the_record_unchanged(s: Services):
    _, first = await s.factory.create({"tpl": tpl()}, "admin")
    await s.factory.approve("cell-1", "admin")
    status, again = await s.factory.create({"template": tpl(), "hitl": False}, "admin")
    assert status == 200
    assert again["id"] == "cell-1" and again["state"] == "canary" and again["hitl"] is True
    assert [r["id"] for r in await s.factory.list()] == ["cell-1"]
    assert s.metric("factory_cells_created_total", backend="adapter") == 1


async def test_other_content_under_the_same_version_is_a_conflict(s: Services):
    await s.factory.create({"tpl": tpl()}, "admin")
    before = await dump(s)
    with pytest.raises(Conflict):
        await s.factory.create({"tpl": tpl(description="other")}, "admin")
    assert await dump(s) == before
    assert s.metric("factory_exec_errors_total", operation="create") == 1


async def test_other_backend_or_version_makes_another_record_and_ids_are_never_reused(s: Services):
    await s.policy.load({"factory_script": "experimental"}, False)  # a start-time override opens it
    scripted = {"schema": "v1", "script": {"lang": "lua", "source": "function run(input) return input end"}}
    ids = [(await s.factory.create(body, "admin"))[1]["id"] for body in (
        {"tpl": tpl(metadata=scripted)}, {"tpl": tpl(metadata=scripted), "backend": "script"},
        {"tpl": tpl("1.1.0", metadata=scripted)})]
    assert ids == ["cell-1", "cell-2", "cell-3"]


async def test_create_from_a_catalog_reference(s: Services):
    await put_cells(s, tpl("1.0.0"), tpl("1.2.0"))
    assert (await s.factory.create({"spec": T}, "admin"))[1]["version"] == "1.2.0"
    assert (await s.factory.create({"spec": f"{T}@1.0.0"}, "admin"))[1]["version"] == "1.0.0"
    with pytest.raises(NotFound):
        await s.factory.create({"spec": "analysis.unknown.v1"}, "admin")


async def test_invalid_templates_are_400_and_write_nothing(s: Services):
    before = await dump(s)
    with pytest.raises(InvalidTemplate):
        await s.factory.create({"tpl": tpl(id="../../etc")}, "admin")
    with pytest.raises(InvalidTemplate):
        await s.factory.create({"tpl": {"id": T}}, "admin")
    assert await dump(s) == before


@pytest.mark.parametrize(("backend", "capability"), [("script", "factory_script"), ("wasm", "factory_wasm")])
async def test_a_closed_gate_refuses_create(s: Services, backend: str, capability: str):
    with pytest.raises(CapabilityDisabled) as err:
        await s.factory.create({"tpl": tpl(), "backend": backend}, "admin")
    assert err.value.body() == {"code": "capability_disabled", "reason": f"capability {capability} is locked", "capability": capability}
    await s.policy.set_capability("admin", "factory_adapter", "disabled")
    with pytest.raises(CapabilityDisabled):
        await s.factory.create({"tpl": tpl()}, "admin")
    assert await s.factory.list() == []


async def test_idempotency_key_replays_the_first_response(s: Services):
    first = await s.factory.create({"tpl": tpl()}, "admin", "key-1")
    await s.factory.approve("cell-1", "admin")
    assert await s.factory.create({"tpl": tpl()}, "admin", "key-1") == first  # the stored response, status 201
    with pytest.raises(Conflict):
        await s.factory.create({"tpl": tpl("2.0.0")}, "admin", "key-1")
    assert (await s.factory.create({"tpl": tpl()}, "admin", "key-2"))[0] == 200
    with pytest.raises(InvalidRequest):
        await s.factory.create({"tpl": tpl()}, "admin", "k" * 201)


# --- lifecycle -------------------------------------------------------------------------------------
async def test_approve_walks_the_stages_then_refuses(s: Services):
    await s.factory.create({"tpl": tpl()}, "admin")
    states = [(await s.factory.approve("cell-1", "operator", f"step {i}"))["state"] for i in range(3)]
    assert states == ["canary", "experimental", "stable"]
    with pytest.raises(InvalidTransition) as err:
        await s.factory.approve("cell-1", "admin")
    assert err.value.body() == {"code": "invalid_transition", "reason": "cannot approve a stable record: it is already stable (stable → stable is not in the table)", "from": "stable", "to": "stable"}
    assert s.metric("factory_approvals_total", to="stable") == 1
    assert s.metric("training_iterations_total") == 0  # approvals are not training: the orchestrator counts those
    assert s.metric("training_converged_total") == 0
    assert s.metric("factory_cells_active") == 1


@pytest.mark.parametrize("terminal", ["disable", "rollback", "auto_rollback"])
async def test_approve_on_a_terminal_state_is_409(s: Services, terminal: str):
    await s.factory.create({"tpl": tpl()}, "admin")
    await s.factory.approve("cell-1", "admin")  # canary: it served, so it can be rolled back
    await getattr(s.factory, terminal)("cell-1", "admin")
    with pytest.raises(InvalidTransition):
        await s.factory.approve("cell-1", "admin")


async def test_a_draft_is_disabled_not_rolled_back(s: Services):
    await s.factory.create({"tpl": tpl()}, "admin")
    with pytest.raises(InvalidTransition) as refused:
        await s.factory.rollback("cell-1", "admin")
    assert (refused.value.extra["from"], refused.value.extra["to"]) == ("draft", "rolled_back")
    assert (await s.factory.disable("cell-1", "admin"))["state"] == "disabled"


async def test_approve_needs_the_backend_gate(s: Services):
    await s.factory.create({"tpl": tpl()}, "admin")
    await s.policy.set_capability("admin", "factory_adapter", "disabled")
    with pytest.raises(CapabilityDisabled):
        await s.factory.approve("cell-1", "admin")
    assert await state_of(s, "cell-1") == "draft"


async def promote(s: Services, version: str) -> str:
    _, record = await s.factory.create({"tpl": tpl(version)}, "admin")
    for _ in range(3):
        await s.factory.approve(record["id"], "admin")
    return record["id"]


async def test_a_new_stable_deprecates_the_old_and_rollback_restores_it(s: Services):
    old = await promote(s, "1.0.0")
    new = await promote(s, "1.1.0")
    assert [await state_of(s, i) for i in (old, new)] == ["deprecated", "stable"]
    assert to_builtins(await s.factory.rollback(new, "admin", "bad release")) == {"id": new, "state": "rolled_back", "restored": old}
    assert [await state_of(s, i) for i in (old, new)] == ["stable", "rolled_back"]
    history = (await s.factory.get(old))["history"]
    assert [(h["from"], h["to"], h["reason"]) for h in history][-2:] == [
        ("stable", "deprecated", f"{new} (1.1.0) became stable"), ("deprecated", "stable", f"{new} was rolled back")]
    assert s.metric("factory_rollbacks_total", kind="manual") == 1
    assert s.metric("factory_cells_active") == 1


async def test_rollback_restores_the_most_recently_deprecated(s: Services):
    a, b, c = [await promote(s, v) for v in ("1.0.0", "1.1.0", "1.2.0")]
    assert (await s.factory.rollback(c, "admin"))["restored"] == b
    assert [await state_of(s, i) for i in (a, b, c)] == ["deprecated", "stable", "rolled_back"]


async def test_rollback_of_a_canary_keeps_the_stable_one(s: Services):
    stable = await promote(s, "1.0.0")
    _, canary = await s.factory.create({"tpl": tpl("1.1.0")}, "admin")
    await s.factory.approve(canary["id"], "admin")
    assert to_builtins(await s.factory.rollback(canary["id"], "admin")) == {"id": canary["id"], "state": "rolled_back", "restored": stable}
    assert await state_of(s, stable) == "stable"


async def test_rollback_without_a_previous_version(s: Services):
    await s.factory.create({"tpl": tpl()}, "admin")
    await s.factory.approve("cell-1", "admin")
    assert to_builtins(await s.factory.rollback("cell-1", "admin")) == {"id": "cell-1", "state": "rolled_back", "restored": None}
    with pytest.raises(InvalidTransition):
        await s.factory.rollback("cell-1", "admin")


async def test_auto_rollback_emits_its_event(s: Services):
    old = await promote(s, "1.0.0")
    new = await promote(s, "2.0.0")
    assert to_builtins(await s.factory.auto_rollback(new, "system", "error budget spent")) == {"id": new, "state": "rolled_back", "restored": old}
    events = [e for e in await s.events.list() if e.type == "factory.auto_rollback"]
    assert [(e.subject, e.data) for e in events] == [(f"cell:{new}", {
        "id": new, "from": "stable", "state": "rolled_back", "restored": old, "reason": "error budget spent"})]
    assert s.metric("factory_rollbacks_total", kind="auto") == 1


async def test_disable_from_every_live_state(s: Services):
    for i, approvals in enumerate(range(4)):
        _, record = await s.factory.create({"tpl": tpl(f"1.{i}.0")}, "admin")
        for _ in range(approvals):
            await s.factory.approve(record["id"], "admin")
        assert (await s.factory.disable(record["id"], "admin"))["state"] == "disabled"
    with pytest.raises(InvalidTransition):
        await s.factory.disable("cell-1", "admin")
    assert s.metric("factory_cells_active") == 0


async def test_every_move_is_in_history_audit_and_events(s: Services):
    await s.factory.create({"tpl": tpl()}, "operator")
    await s.factory.approve("cell-1", "admin", "looks good")
    await s.factory.disable("cell-1", "operator", "noisy")
    history = [(h["from"], h["to"], h["actor"], h["reason"]) for h in (await s.factory.get("cell-1"))["history"]]
    assert history == [(None, "draft", "operator", None), ("draft", "canary", "admin", "looks good"), ("canary", "disabled", "operator", "noisy")]
    audit = [(a.actor, a.action, a.subject, a.before, a.after, a.reason) for a in await s.audit.list()]
    assert audit == [
        ("operator", "cell.create", "cell:cell-1", None, "draft", None),
        ("admin", "cell.approve", "cell:cell-1", "draft", "canary", "looks good"),
        ("operator", "cell.disable", "cell:cell-1", "canary", "disabled", "noisy"),
    ]
    assert all(a.decision_ids for a in await s.audit.list())
    approve_audit = (await s.audit.list())[1]
    assert len(approve_audit.decision_ids) == 2  # the backend gate and the lifecycle table
    transitions = [(e.subject, e.data["from"], e.data["to"]) for e in await s.events.list() if e.type == "cell.transition"]
    assert transitions == [("cell:cell-1", None, "draft"), ("cell:cell-1", "draft", "canary"), ("cell:cell-1", "canary", "disabled")]


async def test_auto_heal_returns_to_the_previous_state(s: Services):
    await s.factory.create({"tpl": tpl()}, "admin")
    await s.factory.approve("cell-1", "admin")
    assert to_builtins(await s.factory.auto_heal("cell-1", "system", "probe failed")) == {"id": "cell-1", "state": "healing"}
    assert s.metric("factory_cells_active") == 0
    await s.factory.drain()
    assert await state_of(s, "cell-1") == "canary"
    assert s.metric("factory_cells_active") == 1
    heal_events = [e.data for e in await s.events.list() if e.type == "factory.auto_heal"]
    assert heal_events == [
        {"id": "cell-1", "phase": "started", "from": "canary", "state": "healing", "reason": "probe failed"},
        {"id": "cell-1", "phase": "finished", "state": "canary", "problems": []},
    ]
    assert await s.factory.finish_heal("cell-1") is None  # nothing left to finish


async def test_auto_heal_fails_when_links_are_missing(s: Services):
    await put_cells(s, tpl(id="analysis.dep.v1"))
    await s.factory.create({"tpl": tpl(links=["analysis.dep.v1", "analysis.gone.v1"])}, "admin")
    await s.factory.auto_heal("cell-1", "admin")
    await s.factory.drain()
    got = await s.factory.get("cell-1")
    assert got["state"] == "failed"
    assert to_builtins(got["history"][-1]) | {"at": 0} == {
        "from": "healing", "to": "failed", "at": 0, "actor": "system", "reason": "link analysis.gone.v1 is missing from the catalog"}
    assert s.metric("factory_exec_errors_total", operation="auto_heal") == 1


async def test_auto_heal_fails_when_the_template_no_longer_validates(s: Services):
    await s.factory.create({"tpl": tpl()}, "admin")
    async with s.db.transaction() as tx:  # a record written by an older version of the rules
        await tx.conn.execute(tables.cell_records.update().values(template=tpl(confidence_threshold=7)))
    await s.factory.auto_heal("cell-1", "admin")
    assert await s.factory.finish_heal("cell-1") == "failed"
    await s.factory.drain()
    assert await state_of(s, "cell-1") == "failed"


async def test_a_heal_ending_after_another_version_became_stable_keeps_one_stable(tmp_path: Path):
    s = await make_services(tmp_path, heal_delay_s=3600)
    try:
        old = await promote(s, "1.0.0")
        await s.factory.auto_heal(old, "system")
        new = await promote(s, "1.1.0")
        assert await s.factory.finish_heal(old) == "deprecated"
        assert [(h["from"], h["to"]) for h in (await s.factory.get(old))["history"]][-2:] == [("healing", "stable"), ("stable", "deprecated")]
        assert [await state_of(s, i) for i in (old, new)] == ["deprecated", "stable"]
        assert s.metric("factory_cells_active") == 1
    finally:
        await s.factory.close()
        await s.db.close()


async def test_heals_left_behind_are_finished_on_start(tmp_path: Path):
    first = await make_services(tmp_path, heal_delay_s=60)
    await first.factory.create({"tpl": tpl()}, "admin")
    await first.factory.auto_heal("cell-1", "admin")
    await first.factory.close()  # the process "dies" before the heal finishes
    await first.db.close()
    second = await make_services(tmp_path, heal_delay_s=0)
    try:
        await second.factory.drain()
        assert await state_of(second, "cell-1") == "draft"
    finally:
        await second.factory.close()
        await second.db.close()


async def test_reads(s: Services):
    await s.factory.create({"tpl": tpl()}, "admin")
    await s.factory.create({"tpl": tpl("1.1.0")}, "admin")
    await s.factory.approve("cell-2", "admin")
    assert [r["id"] for r in await s.factory.list()] == ["cell-1", "cell-2"]
    assert [r["id"] for r in await s.factory.list("canary")] == ["cell-2"]
    assert await s.factory.list("stable") == []
    with pytest.raises(InvalidRequest):
        await s.factory.list("bogus")
    with pytest.raises(NotFound):
        await s.factory.get("cell-99")
    for bad in ("..", "../cell-1", "cell-1/../x"):
        with pytest.raises(InvalidRequest):
            await s.factory.get(bad)
        with pytest.raises(InvalidRequest):
            await s.factory.approve(bad, "admin")
    with pytest.raises(NotFound):
        await s.factory.approve("cell-99", "admin")


# --- dry-run ---------------------------------------------------------------------------------------
async def test_dryrun_writes_nothing(s: Services):
    await put_cells(s, tpl(id="analysis.dep.v1"))
    await s.factory.create({"tpl": tpl()}, "admin")
    before = await dump(s)
    for body in ({"tpl": tpl("2.0.0", links=["analysis.dep.v1", "analysis.nope.v1"])}, {"tpl": tpl()},
                 {"spec": tpl(), "backend": "script"}, {"template": tpl(id="analysis.new.v1"), "hitl": False}):
        await s.factory.dryrun(body, "admin")
    assert await dump(s) == before
    assert s.metric("factory_dryrun_requests_total", ok="true") == 2  # the identical one, and no_hitl is a warning
    assert s.metric("factory_dryrun_requests_total", ok="false") == 2


async def test_dryrun_report_for_a_new_cell(s: Services):
    await put_cells(s, tpl(id="analysis.text_normalize.v1"))
    await s.factory.create({"tpl": tpl(id="analysis.text_normalize.v1")}, "admin")
    result = to_builtins(await s.factory.dryrun({"tpl": tpl("0.1.0", links=["analysis.text_normalize.v1"])}, "admin"))
    decision = result["report"]["policy"]["decisions"][0]
    assert to_builtins(result) == {
        "ok": True,
        "report": {
            "kind": "analysis", "analysis_type": "summarize", "backend": "adapter", "hitl": True,
            "deps": [{"id": "analysis.text_normalize.v1", "depth": 1, "via": T, "status": "present", "version": "1.0.0",
                      "record": {"id": "cell-1", "state": "draft", "version": "1.0.0"}}],
            "links": [{"id": "analysis.text_normalize.v1", "status": "present", "version": "1.0.0",
                       "record": {"id": "cell-1", "state": "draft", "version": "1.0.0"}}],
            "risks": [],
            "compat": {"schema": "v1", "catalog": "new", "latest_version": None, "order": "first", "kind": "new", "record": None},
            "selector": {"action": "create", "reason": f"no record of {T} yet", "record_id": None, "state": None},
            "policy": {"allowed": True, "violations": [], "decisions": [{
                "decision_id": decision["decision_id"], "rule": "capability.factory_adapter", "action": "allow",
                "reason": "factory_adapter is experimental", "capability": "factory_adapter"}]},
        },
        "plan": {
            "id": None, "base": None,
            "changes": [{"action": "create", "kind": "cell", "id": T, "after": "0.1.0",
                         "reason": f"new draft record of {T} 0.1.0"}],
            "summary": "1 to create, 0 to update, 0 to delete, 0 unchanged",
            "text": f"+ cell {T} — new draft record of {T} 0.1.0\nPlan: 1 to create, 0 to update, 0 to delete, 0 unchanged.",
            "risks": [],
        },
    }
    assert decision["decision_id"].startswith("dec-")


async def test_dryrun_shows_a_closed_gate_as_a_violation(s: Services):
    result = to_builtins(await s.factory.dryrun({"tpl": tpl(), "backend": "wasm"}, "admin"))
    assert result["ok"] is False
    policy = result["report"]["policy"]
    assert policy["allowed"] is False
    assert [(v["rule"], v["action"], v["capability"]) for v in policy["violations"]] == [("capability.factory_wasm", "deny", "factory_wasm")]
    assert [r["code"] for r in result["report"]["risks"]] == ["capability_disabled", "no_code"]


async def test_dryrun_finds_missing_links_cycles_and_conflicts(s: Services):
    await put_cells(s, tpl(id="analysis.a.v1", links=["analysis.b.v1"]), tpl(id="analysis.b.v1", links=[T]),
                    tpl("2.0.0", memory_type="ctx", analysis_type=None))
    body = tpl("1.0.0", links=["analysis.a.v1", "analysis.missing.v1"])
    result = to_builtins(await s.factory.dryrun({"tpl": body, "hitl": False}, "admin"))
    risks = result["report"]["risks"]
    assert [(r["code"], r["severity"]) for r in risks] == [
        ("missing_link", "error"), ("link_cycle", "error"), ("older_version", "warning"), ("kind_changed", "warning"), ("no_hitl", "warning")]
    assert risks[1]["cycle"] in ([T, "analysis.a.v1", "analysis.b.v1", T], ["analysis.a.v1", "analysis.b.v1", T, "analysis.a.v1"])
    assert [(d["id"], d["depth"], d["status"]) for d in result["report"]["deps"]] == [
        ("analysis.a.v1", 1, "present"), ("analysis.missing.v1", 1, "missing"), ("analysis.b.v1", 2, "present")]
    assert result["ok"] is False
    await put_cells(s, tpl("1.0.0"))
    conflicting = to_builtins(await s.factory.dryrun({"tpl": tpl("1.0.0", description="x")}, "admin"))
    assert conflicting["report"]["compat"]["catalog"] == "conflict"
    assert "catalog_conflict" in [r["code"] for r in conflicting["report"]["risks"]]


async def test_create_and_catalog_put_refuse_a_link_cycle_the_dryrun_rejects(s: Services):
    await s.catalog.put_cell(tpl(id="analysis.a.v1", links=["analysis.b.v1"]))  # a missing link is accepted
    cyclic = tpl(id="analysis.b.v1", links=["analysis.a.v1"])
    assert (to_builtins(await s.factory.dryrun({"tpl": cyclic}, "admin")))["ok"] is False
    message = "links form a cycle: analysis.b.v1 → analysis.a.v1 → analysis.b.v1"
    for attempt in (lambda: s.factory.create({"tpl": cyclic}, "admin"), lambda: s.catalog.put_cell(cyclic)):
        with pytest.raises(InvalidTemplate) as err:
            await attempt()
        assert err.value.body() == {"code": "invalid_template", "reason": message,
                                    "errors": [{"path": "$.links", "message": message}]}
    assert await s.factory.list() == []
    with pytest.raises(NotFound):
        await s.catalog.get_cell("analysis.b.v1")
    await s.catalog.put_cell(tpl(id="analysis.b.v1", links=["analysis.c.v1"]))
    with pytest.raises(InvalidTemplate):  # a longer loop through the catalog
        await s.catalog.put_cell(tpl(id="analysis.c.v1", links=["analysis.a.v1"]))
    assert (await s.factory.create({"tpl": tpl(id="analysis.d.v1", links=["analysis.a.v1"])}, "admin"))[0] == 201


async def test_an_idempotent_replay_is_answered_even_after_the_gate_closed(s: Services):
    first = await s.factory.create({"tpl": tpl()}, "admin", "key-1")
    await s.policy.set_capability("admin", "factory_adapter", "disabled")
    assert await s.factory.create({"tpl": tpl()}, "admin", "key-1") == first
    with pytest.raises(CapabilityDisabled):  # a new request is still refused
        await s.factory.create({"tpl": tpl("1.1.0")}, "admin", "key-2")
    with pytest.raises(Conflict):  # and the key stays bound to its body
        await s.factory.create({"tpl": tpl("1.1.0")}, "admin", "key-1")


async def test_dryrun_plan_follows_what_create_would_do(s: Services):
    await s.factory.create({"tpl": tpl()}, "admin")
    await s.factory.approve("cell-1", "admin")
    same = to_builtins(await s.factory.dryrun({"tpl": tpl()}, "admin"))
    assert same["plan"]["changes"][0]["action"] == "no-op"
    assert same["plan"]["text"].startswith(f"= cell cell-1 ({T}) — cell-1 already holds {T} 1.0.0 (canary)")
    assert same["report"]["selector"] == {"action": "reuse", "record_id": "cell-1", "state": "canary",
                                          "reason": "cell-1 already holds version 1.0.0"}
    assert same["report"]["compat"]["record"] == {"id": "cell-1", "state": "canary"}
    newer = to_builtins(await s.factory.dryrun({"tpl": tpl("1.1.0")}, "admin"))
    assert newer["plan"]["changes"] == [{
        "action": "update", "kind": "cell", "id": T, "before": "1.0.0", "after": "1.1.0",
        "reason": f"new draft record of {T} 1.1.0 (the catalog has 1.0.0)"}]
    assert newer["report"]["selector"]["action"] == "create"  # the plan and the selector say the same


async def test_plan_for_the_command_cell_takes_a_catalog_id(s: Services):
    await put_cells(s, tpl())
    result = await s.factory.plan(T)
    assert result["ok"] is True and result["report"]["compat"]["catalog"] == "identical"


# --- ensure_cells ----------------------------------------------------------------------------------
async def test_ensure_cells_reuses_live_records_and_creates_drafts(s: Services):
    await put_cells(s, tpl(id="analysis.known.v1"))
    live = await promote(s, "1.0.0")
    async with s.db.transaction() as tx:
        items = await s.factory.ensure_cells(tx, [T, "analysis.known.v1", "analysis.fresh.v1"], "admin", "organ.x.v1")
    gate_ids = items[1]["decision_ids"]
    assert items == [
        {"id": T, "record_id": live, "action": "reuse", "state": "stable", "decision_ids": [],
         "reason": f"{live} runs {T} 1.0.0 (stable)"},
        {"id": "analysis.known.v1", "record_id": "cell-2", "action": "create", "state": "draft", "decision_ids": gate_ids,
         "reason": "new draft record of analysis.known.v1 1.0.0"},
        {"id": "analysis.fresh.v1", "record_id": "cell-3", "action": "create", "state": "draft", "decision_ids": gate_ids,
         "reason": "not in the catalog: a generated adapter template 0.1.0"},
    ]
    assert await s.catalog.get_cell("analysis.fresh.v1") == generated_template("analysis.fresh.v1", "organ.x.v1")
    assert (await s.factory.get("cell-2"))["template"] == tpl(id="analysis.known.v1")
    async with s.db.transaction() as tx:  # a second build reuses the drafts it made
        again = await s.factory.ensure_cells(tx, ["analysis.known.v1", "analysis.fresh.v1"], "admin", "organ.y.v1")
    assert [(i["record_id"], i["action"]) for i in again] == [("cell-2", "reuse"), ("cell-3", "reuse")]


@pytest.mark.parametrize("kill", ["disable", "rollback", "auto_rollback"])
async def test_ensure_cells_refuses_a_dead_record_of_the_same_version(s: Services, kill: str):
    # the unique (template, version, backend) index forbids a second record: the dead one must not be reused
    await s.factory.create({"tpl": tpl()}, "admin")
    await s.factory.approve("cell-1", "admin")
    await getattr(s.factory, kill)("cell-1", "admin")
    dead = (await s.factory.get("cell-1"))["state"]
    with pytest.raises(Conflict) as err:
        async with s.db.transaction() as tx:
            await s.factory.ensure_cells(tx, [T], "admin", None)
    assert err.value.body() == {
        "code": "conflict", "cell": T, "record_id": "cell-1", "state": dead, "version": "1.0.0",
        "reason": f"cell {T} has only a {dead} record (cell-1) of version 1.0.0; roll forward: "
                  f"register a new version of {T} in the catalog and build again"}
    await s.catalog.put_cell(tpl(version="1.1.0"))  # rolling forward gets a fresh draft
    async with s.db.transaction() as tx:
        items = await s.factory.ensure_cells(tx, [T], "admin", None)
    assert [(i["record_id"], i["action"], i["state"]) for i in items] == [("cell-2", "create", "draft")]


async def test_a_record_healing_from_a_dead_state_counts_as_dead(s: Services):
    """A heal returns a record to where it was, or fails it: healing from `disabled` ends dead either way."""
    await s.factory.create({"tpl": tpl()}, "admin")
    await s.factory.disable("cell-1", "admin")
    assert isinstance(await planned_step(s), Blocked)  # the record cache holds the template from here on
    s.factory.heal_delay_s = 3600  # the background check must not end the heal during the test
    assert (await s.factory.auto_heal("cell-1", "admin"))["state"] == "healing"
    with pytest.raises(Conflict) as err:
        async with s.db.transaction() as tx:
            await s.factory.ensure_cells(tx, [T], "admin", None)
    assert (err.value.extra["state"], err.value.extra["record_id"]) == ("healing", "cell-1")
    assert "only a healing (from disabled) record (cell-1)" in err.value.reason
    step = await planned_step(s)  # a plan shows the same refusal, from the caches
    assert isinstance(step, Blocked) and (step.record_id, step.state, step.version) == ("cell-1", "healing", "1.0.0")
    assert await s.factory.finish_heal("cell-1") == "disabled"  # as promised: back to dead


async def test_a_record_healing_from_a_live_state_is_reused(s: Services):
    await s.factory.create({"tpl": tpl()}, "admin")
    await s.factory.approve("cell-1", "admin")
    s.factory.heal_delay_s = 3600
    await s.factory.auto_heal("cell-1", "admin")
    async with s.db.transaction() as tx:
        items = await s.factory.ensure_cells(tx, [T], "admin", None)
    assert [(i["record_id"], i["action"], i["state"]) for i in items] == [("cell-1", "reuse", "healing")]
    assert not isinstance(await planned_step(s), Blocked)


async def planned_step(s: Services):
    """What a plan does with cell T, read from the caches as a plan reads them."""
    snap = Snapshot(latest=await s.catalog.latest_view(CELL), digests={}, records=await s.factory.records.cache.of_templates([T]))
    return cell_step(T, snap)


async def test_ensure_cells_needs_the_adapter_gate_and_rolls_back_with_the_caller(s: Services):
    await s.policy.set_capability("admin", "factory_adapter", "disabled")
    with pytest.raises(CapabilityDisabled):
        async with s.db.transaction() as tx:
            await s.factory.ensure_cells(tx, ["analysis.fresh.v1"], "admin", "organ.x.v1")
    await s.policy.set_capability("admin", "factory_adapter", "experimental")
    with pytest.raises(RuntimeError):
        async with s.db.transaction() as tx:
            await s.factory.ensure_cells(tx, ["analysis.fresh.v1"], "admin", "organ.x.v1")
            raise RuntimeError("the organ build failed later")
    assert await s.factory.list() == []
    with pytest.raises(NotFound):
        await s.catalog.get_cell("analysis.fresh.v1")
    with pytest.raises(InvalidRequest):
        async with s.db.transaction() as tx:
            await s.factory.ensure_cells(tx, ["../x"], "admin", None)


# --- random sequences of moves ---------------------------------------------------------------------
MOVES = ("approve", "disable", "rollback", "auto_rollback", "auto_heal", "finish_heal", "create")
LIVE = {"canary", "experimental", "stable"}


async def _run_sequence(data: Path, steps: list[tuple[str, int]]) -> None:
    s = await make_services(data, heal_delay_s=3600)  # heals finish only when the sequence says so
    try:
        await s.factory.create({"tpl": tpl("1.0.0")}, "admin")
        for action, n in steps:
            records = await s.factory.list()
            if action == "create":
                await s.factory.create({"tpl": tpl(f"1.{len(records)}.0")}, "admin")
                continue
            target = records[n % len(records)]
            if action == "finish_heal":
                assert await s.factory.finish_heal(target["id"]) == (None if target["state"] != "healing" else (await s.factory.get(target["id"]))["state"])
                continue
            try:
                result = await getattr(s.factory, action)(target["id"], "admin", None)
            except InvalidTransition as err:
                assert err.body()["from"] == target["state"]
                assert (await s.factory.get(target["id"]))["state"] == target["state"]
                continue
            assert (await s.factory.get(target["id"]))["state"] == result["state"]
            if "restored" in result and result["restored"]:
                assert (await s.factory.get(result["restored"]))["state"] == "stable"
        final = await s.factory.list()
        assert sum(r["state"] == "stable" for r in final) <= 1
        assert s.metric("factory_cells_active") == sum(r["state"] in LIVE for r in final)
        for r in final:
            history = (await s.factory.get(r["id"]))["history"]
            assert history[-1]["to"] == r["state"]
            assert all(a["to"] == b["from"] for a, b in zip(history, history[1:]))
            assert (r["previous_state"] is not None) == (r["state"] == "healing")
    finally:
        await s.factory.close()
        await s.db.close()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(MOVES), st.integers(0, 5)), max_size=14))
def test_any_sequence_of_moves_keeps_the_invariants(tmp_path: Path, steps: list[tuple[str, int]]):
    """At most one stable record per template, the active gauge matches storage, history chains up, and
    every refused move leaves the record as it was."""
    with tempfile.TemporaryDirectory(dir=tmp_path) as data:
        asyncio.run(_run_sequence(Path(data), steps))
