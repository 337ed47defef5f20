"""Plans for commands: a resolution becomes one `Plan` (neira/plan.py) read from one snapshot — the steps,
the policy's decisions (each asked once) and the facts the steps assume. Nothing here writes; apply carries
out exactly these steps (neira/plan_apply.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from neira.catalog import CELL, ORGAN, parse_cell, parse_organ, template_digest
from neira.cell_plan import create_step
from neira.commands.plan_store import new_plan_id
from neira.commands.resolve import Resolution
from neira.errors import InvalidRequest, InvalidTransition, NotFound
from neira.ids import new_id
from neira.lifecycle import DEAD_CELL_STATES, CellEvent, CellState, OrganEvent, OrganState, advance, organ_move
from neira.organs.status import OrganStatus
from neira.plan_apply import decision_of
from neira.plan import AnyStep, Blocked, CreateRecord, Decision, MoveOrgan, MoveRecord, Plan, Risk, Snapshot
from neira.planning import cell_step, facts, is_dead, organ_steps
from neira.policy import OPEN_STATES

if TYPE_CHECKING:
    from neira.analysis import Analyzer
    from neira.catalog import Catalog
    from neira.factory import Factory
    from neira.organs import OrganBuilder
    from neira.policy import PolicyEngine
    from neira.runtime.service import RunService
    from neira.storage.db import Database

LIFECYCLE_INTENTS = frozenset({"approve", "disable", "rollback", "cancel_build", "rebuild", "hold"})
_CELL_MOVES = {"approve": CellEvent.APPROVE, "disable": CellEvent.DISABLE, "rollback": CellEvent.ROLLBACK}
_ORGAN_MOVES = {"approve": OrganEvent.APPROVE, "cancel_build": OrganEvent.CANCEL, "rebuild": OrganEvent.REBUILD,
                "disable": OrganEvent.SET, "hold": OrganEvent.HOLD}
_DEAD = {
    "en": "cell {cell} has only a {state} record ({record_id}) of version {version}; register a new version of it, then ask again",
    "ru": "у клетки {cell} есть только запись {record_id} в состоянии {state} (версия {version}); зарегистрируйте новую версию и повторите",
}


class Services(Protocol):
    """What planning reads: the catalog, the factory's records and dry-run, the organ rows, the gates."""

    catalog: Catalog
    factory: Factory
    organs: OrganBuilder
    policy: PolicyEngine
    db: Database
    runs: RunService
    analysis: Analyzer


_decision = decision_of  # a policy decision as a plan keeps it


def _deny(rule: str, reason: str) -> Decision:
    return Decision(decision_id=new_id("dec"), rule=rule, action="deny", reason=reason)


def _gates(decisions: list[Decision]) -> dict[str, str]:
    return {d.capability: d.action for d in decisions if d.capability}


def gate_verdicts(policy: PolicyEngine) -> dict[str, str]:
    """capability → allow | deny, as a plan's gate facts record them."""
    return {name: "allow" if state in OPEN_STATES else "deny" for name, state in policy.capabilities.items()}


async def make_plan(res: Resolution, svc: Services, plan_id: str | None = None) -> Plan:
    """The plan of a resolution that changes something (a spec, or a lifecycle command with a target)."""
    plan_id = plan_id or new_plan_id()
    if res.spec is not None and res.spec["kind"] == "factory_spec":
        return await _cell_plan(res, svc, plan_id)
    if res.spec is not None:
        return await _organ_plan(res, svc, plan_id)
    if res.intent in LIFECYCLE_INTENTS and res.target is not None:
        return await _move_plan(res, svc, plan_id)
    raise ValueError("only commands with a spec or a lifecycle target have plans")


async def _cell_plan(res: Resolution, svc: Services, plan_id: str) -> Plan:
    spec = res.spec["spec"]  # type: ignore[index]
    t = parse_cell(spec["template"])
    digest = template_digest(t)
    report = await svc.factory.plan(spec["template"], spec["backend"], spec["hitl"])
    snap = await svc.factory.snapshot(t)
    step = create_step(t, digest, spec["backend"], spec["hitl"], snap)
    gate = svc.policy.gate(f"factory_{spec['backend']}")
    decisions = [_decision(gate)]
    for r in report.report.risks:
        if r.severity == "error" and r.code != "capability_disabled":
            decisions.append(_deny(f"factory.{r.code}", r.message))
    return Plan(id=plan_id, lang=res.lang, steps=[step], decisions=decisions, facts=facts([step], snap, _gates(decisions)))


async def _organ_plan(res: Resolution, svc: Services, plan_id: str) -> Plan:
    template = parse_organ(res.spec["template"])  # type: ignore[index]
    body = res.spec["template"]  # type: ignore[index]
    digest = template_digest(template)
    drafts = {d["id"]: d for d in res.new_cells}
    cell_ids = list(template.cells)
    latest = await svc.catalog.latest_view(CELL)
    records = await svc.factory.records.cache.of_templates(cell_ids)
    live = await svc.organs.by_template.newest([template.id])
    organ_versions = await svc.catalog.digests(ORGAN, template.id)
    snap = Snapshot(latest=latest, records=records, live_organs=live,
                    digests={**{f"cell:{c}": await svc.catalog.digests(CELL, c) for c in cell_ids},
                             f"organ:{template.id}": organ_versions})
    steps: list[AnyStep] = [cell_step(c, snap, drafted=drafts.get(c), word=_word(drafts.get(c), res.lang),
                                      context=f"organ template {template.id}", parse=svc.catalog.parsed)
                            for c in cell_ids]
    decisions = [_decision(svc.policy.gate("organs_builder"))]
    if any(isinstance(s, CreateRecord) for s in steps):
        decisions.append(_decision(svc.policy.gate("factory_adapter")))
    for s in steps:
        if isinstance(s, Blocked):
            decisions.append(_deny("cell.live_record", _DEAD.get(res.lang, _DEAD["en"]).format(
                cell=s.template_id, state=s.state, record_id=s.record_id, version=s.version)))
    registered = organ_versions.get(template.version)
    if registered is not None and registered != digest:
        decisions.append(_deny("catalog.conflict", f"{template.id} {template.version} is registered with other content"))
    base_cells = set((await _catalog_organ(svc, res.base) or {}).get("cells", [])) if res.base else set()
    added = [c for c in cell_ids if res.base and c not in base_cells]
    steps = organ_steps(body, digest, registered is not None, res.base if res.intent == "update_organ" else None,
                        added, steps, snap)
    risks = svc.runs.pathway_risks(template, {**latest, **drafts})
    for r in risks:
        if r.severity == "error":  # the organ could never pass its first run: say so, and do not build it
            decisions.append(_deny(f"compat.{r.code}", r.message))
    return Plan(id=plan_id, lang=res.lang, steps=steps, decisions=decisions, facts=facts(steps, snap, _gates(decisions)),
                risks=risks)


def _word(draft: dict[str, Any] | None, lang: str) -> str | None:
    if draft is None:
        return None
    return (draft.get("metadata", {}).get("aliases", {}).get(lang) or [draft["id"]])[0]


async def _catalog_organ(svc: Services, template_id: str | None) -> dict[str, Any] | None:
    if not template_id:
        return None
    found = (await svc.catalog.latest_view(ORGAN)).get(template_id)
    return found


async def _move_plan(res: Resolution, svc: Services, plan_id: str) -> Plan:
    target = res.target or {}
    if target["kind"] == "cell":
        if res.intent not in _CELL_MOVES:
            raise InvalidRequest(f"{res.intent} applies to organs; {target['id']} is a cell")
        record = await active_record(svc, target["id"])
        event = _CELL_MOVES[res.intent]
        after = _judged(record["id"], lambda: advance(record["state"], event, record.get("previous_state")))
        step: AnyStep = MoveRecord(template_id=record["template_id"], record_id=record["id"], via=event.value,
                                   before=record["state"], after=after)
        decisions = [_decision(svc.policy.gate(f"factory_{record['backend']}"))] if event is CellEvent.APPROVE else []
        states = {record["id"]: record["state"]}
    else:
        if res.intent not in _ORGAN_MOVES:
            raise InvalidRequest(f"{res.intent} applies to cells; {target['id']} is an organ")
        organ = await active_organ(svc, target["id"], allow_failed=res.intent == "rebuild")
        via = _ORGAN_MOVES[res.intent]
        wanted = OrganState.FAILED if via is OrganEvent.SET else None
        after = _judged(organ.id, lambda: organ_move(organ.state, via, wanted))
        step = MoveOrgan(template_id=organ.template_id, organ_id=organ.id, via=via.value, before=organ.state,
                         after=after)
        decisions = [_decision(svc.policy.gate("organs_builder"))]
        states = {organ.id: organ.state}
    snap = Snapshot(latest={}, digests={}, records={})
    return Plan(id=plan_id, lang=res.lang, steps=[step], decisions=decisions,
                facts=facts([step], snap, _gates(decisions), states))


def _judged(target: str, move: Callable[[], Any]) -> str:
    """The state a lifecycle move leads to; an illegal one is refused while planning, naming its target."""
    try:
        return str(move().value)
    except InvalidTransition as exc:
        raise InvalidTransition(exc.extra["from"], exc.extra["to"], exc.reason, target=target) from None


async def active_record(svc: Services, ref: str, newest_if_dead: bool = False) -> dict[str, Any]:
    """A record by id, or a template's active record: its stable one, else its newest live one — never a
    dead one (NotFound names what there is), unless `newest_if_dead` (status shows the newest then)."""
    if ref.startswith("cell-"):
        return await svc.factory.get(ref)
    found = (await svc.factory.records.cache.of_templates([ref])).get(ref, [])
    if not found:
        raise NotFound(f"no cell record of {ref} yet", target=ref)
    stable = [c for c in found if c.state == CellState.STABLE]
    live = [c for c in found if not is_dead(c.state, c.previous_state) and c.state not in DEAD_CELL_STATES]
    pick = max(stable or live or (found if newest_if_dead else []), key=lambda c: c.number, default=None)
    if pick is None:
        dead = ", ".join(f"{c.id} ({c.state})" for c in sorted(found, key=lambda c: c.number))
        raise NotFound(f"{ref} has no live record: {dead}", target=ref)
    return await svc.factory.get(pick.id)


async def active_organ(svc: Services, ref: str, allow_failed: bool = False) -> OrganStatus:
    """An organ by id, or a template's active organ: its newest stable one, else its newest live one (a failed
    one only where the command mends it: rebuild)."""
    if not ref.startswith("organ."):
        return await svc.organs.status(ref, query=False)
    live = await svc.organs.by_template.newest([ref])
    stable = await svc.organs.by_template.newest([ref], frozenset({OrganState.STABLE.value}))
    chosen = stable.get(ref) or live.get(ref)
    if chosen is None and allow_failed:
        newest = await svc.organs.newest_of(ref)
        chosen = (newest, "") if newest else None
    if chosen is None:
        raise NotFound(f"no live organ built from {ref}", target=ref)
    return await svc.organs.status(chosen[0], query=False)

