"""Carrying out a saved plan literally: inside one transaction, re-read its facts, refuse it if any moved
(`plan_stale`, naming the first one), then do exactly its steps with the primitives the REST routes use.
A crash at any moment leaves all of it or none of it."""

from __future__ import annotations

from typing import Any, Protocol

from neira.catalog import parse_cell, parse_organ
from neira.cell_records import CellRecord
from neira.errors import PlanStale
from neira.lifecycle import CellEvent, OrganEvent
from neira.plan import (
    AnyStep, Blocked, Change, CreateRecord, Decision, MoveOrgan, MoveRecord, Plan, PlanView, RegisterTemplate, ReuseOrgan,
    ReuseRecord, StartBuild, change,
)
from neira.planning import read_facts
from neira.policy import Decision as PolicyDecision
from neira.policy import decision_error
from neira.storage.db import Tx
from neira.structs import Base


class Applied(Change, omit_defaults=True):
    """One change carried out, with the id it created or acted on (`record_id`, or `organ_id`)."""

    organ_id: str | None = None


class ApplyResult(Base):
    """What an apply answers: the plan as shown, whether it had been applied already, every change carried out
    with the ids it made, the summary, and the reply in the plan's language (the JSON of
    `POST /api/neira/commands/plans/{id}/apply`)."""

    plan_id: str
    plan: PlanView
    already_applied: bool
    applied: list[Applied]
    summary: str
    reply: str


class Executor(Protocol):
    """The primitives a plan's steps need, each inside the caller's transaction."""

    async def create_record(self, tx: Tx, step: CreateRecord, actor: str, decision_ids: list[str]) -> CellRecord: ...

    async def register(self, tx: Tx, step: RegisterTemplate) -> None: ...

    async def start_build(self, tx: Tx, step: StartBuild, cells: list[dict[str, str]], actor: str,
                          decision_ids: list[str]) -> str: ...

    async def move_record(self, tx: Tx, step: MoveRecord, actor: str, reason: str, decision_ids: list[str]) -> None: ...

    async def move_organ(self, tx: Tx, step: MoveOrgan, actor: str, reason: str, decision_ids: list[str]) -> str: ...


def decision_of(d: PolicyDecision) -> Decision:
    """A policy decision as a plan keeps it."""
    return Decision(decision_id=d.decision_id, rule=d.rule, action=d.action, reason=d.reason, capability=d.capability)


STALE_WHY = {
    "en": "{plan_id} was made against another state ({what}: planned {planned!r}, now {now!r}); ask again for a fresh plan",
    "ru": "план {plan_id} составлен для другого состояния ({what}: было {planned!r}, сейчас {now!r}); повторите команду",
}


LOCKED_FACTS = frozenset({"catalog", "identity", "organ_of"})  # facts a step creates; a gate has its own lock


async def check_facts(tx: Tx, plan: Plan, gates: dict[str, str]) -> None:
    """PlanStale unless every fact the plan rests on still holds (read inside `tx`). Each fact's key is
    locked first, in one order, so a replica carrying out a plan on the same facts (or a REST create of the
    same version) waits for this one's commit and then finds them moved."""
    for key in sorted(plan.facts):
        kind, _, what = key.partition(":")
        if kind in LOCKED_FACTS:
            await tx.lock(kind, what)
    now = await read_facts(tx, list(plan.facts), gates)
    for key, planned in plan.facts.items():
        if now.get(key, "") != planned:
            why = STALE_WHY.get(plan.lang, STALE_WHY["en"])
            raise PlanStale(why.format(plan_id=plan.id, what=key, planned=planned, now=now.get(key, "")))


async def carry_out(tx: Tx, plan: Plan, actor: str, ex: Executor, created: list[CellRecord] | None = None,
                    shown: dict[int, tuple[AnyStep, Change]] | None = None) -> list[Applied]:
    """Every step of `plan`, in order, inside `tx`. The plan must be allowed and its facts checked. `created`,
    when given, receives each record the plan creates (the REST create answers with it). `shown`: the changes
    already rendered, by step identity, for a caller carrying out many plans in one language that share their
    step objects (a batch of builds)."""
    ids = []
    for d in plan.decisions:
        if d.action == "deny":
            raise decision_error(d)  # type: ignore[arg-type]
        ids.append(d.decision_id)
    records: dict[str, str] = {}  # cell template id → the record the plan chose or created for it
    out: list[Applied] = []
    made = created if created is not None else []
    for step in plan.steps:
        hit = shown.get(id(step)) if shown is not None else None
        if hit is not None and hit[0] is step:
            said = hit[1]
        else:
            said = change(step, plan.lang)
            if shown is not None:
                shown[id(step)] = (step, said)  # the step is kept with it: its id cannot name another meanwhile
        kind = type(step)
        if kind is ReuseRecord:  # the two steps of a batch of builds, without a coroutine each
            records[step.template_id] = step.record_id
            out.append(_applied(said, record_id=step.record_id))
        elif kind is StartBuild:
            cells = [{"id": c, "record_id": records[c]} for c in step.cells]
            out.append(_applied(said, organ_id=await ex.start_build(tx, step, cells, actor, ids)))
        else:
            out.append(await _one(tx, step, said, records, actor, ids, ex, made))
    return out


async def _one(tx: Tx, step: AnyStep, shown: Change, records: dict[str, str], actor: str, ids: list[str],
               ex: Executor, made: list[CellRecord]) -> Applied:
    match step:
        case CreateRecord():
            record = await ex.create_record(tx, step, actor, ids)
            made.append(record)
            records[step.template_id] = record.id
            return _applied(shown, record_id=records[step.template_id])
        case ReuseRecord():
            records[step.template_id] = step.record_id
            return _applied(shown, record_id=step.record_id)
        case Blocked():  # a plan holding one is denied, so this is never reached
            raise PlanStale(f"{step.template_id} cannot be used: {step.record_id} is {step.state}")
        case RegisterTemplate():
            await ex.register(tx, step)
            return _applied(shown)
        case StartBuild():
            cells = [{"id": c, "record_id": records[c]} for c in step.cells]
            return _applied(shown, organ_id=await ex.start_build(tx, step, cells, actor, ids))
        case ReuseOrgan():
            return _applied(shown, organ_id=step.organ_id)
        case MoveRecord():
            await ex.move_record(tx, step, actor, shown.reason, ids)
            return _applied(shown, record_id=step.record_id)
        case MoveOrgan():
            return _applied(shown, organ_id=await ex.move_organ(tx, step, actor, shown.reason, ids))
    raise TypeError(f"not a plan step: {step!r}")  # pragma: no cover - the union is exhaustive


def _applied(shown: Change, record_id: str | None = None, organ_id: str | None = None) -> Applied:
    """The change as shown, plus the ids it made or acted on."""
    return Applied(action=shown.action, kind=shown.kind, id=shown.id, reason=shown.reason, before=shown.before,
                   after=shown.after, record_id=record_id, organ_id=organ_id)


class CoreExecutor:
    """The executor over the core's factory, catalog and organ builder."""

    def __init__(self, factory: Any, catalog: Any, organs: Any = None) -> None:
        self.factory, self.catalog, self.organs = factory, catalog, organs

    async def create_record(self, tx: Tx, step: CreateRecord, actor: str, decision_ids: list[str]) -> CellRecord:
        """A draft record (and the template in the catalog when the plan registers it)."""
        if step.template is not None:
            t = parse_cell(step.template)
        else:  # the catalog's, and still the planned one: its digest was a fact, checked before the steps
            t = (await self.catalog.cell_template(step.template_id, step.version))[0]
        reason = step.reason if step.own_reason else change(step).reason
        record = await self.factory.records.insert(tx, t, step.digest, step.backend, step.hitl, actor, reason,
                                                   decision_ids)
        if step.register:
            await self.catalog.register(tx, t)
        return record

    async def register(self, tx: Tx, step: RegisterTemplate) -> None:
        """The organ template in the catalog."""
        await self.catalog.register(tx, parse_organ(step.template))

    async def start_build(self, tx: Tx, step: StartBuild, cells: list[dict[str, str]], actor: str,
                          decision_ids: list[str]) -> str:
        """A new organ in draft from the (now registered) template: the body the plan carries, or the catalog's
        (validated when it was registered; its digest was a fact, checked before the steps)."""
        body = step.template
        if body is None:
            body = await self.catalog.get_organ_template(step.template_id, step.version)
        return str(await self.organs.start_in(tx, step.template_id, step.version, body, cells, actor, decision_ids))

    async def move_record(self, tx: Tx, step: MoveRecord, actor: str, reason: str, decision_ids: list[str]) -> None:
        """approve / disable / rollback of one record."""
        await self.factory.move_in(tx, step.record_id, CellEvent(step.via), actor, reason, tuple(decision_ids))

    async def move_organ(self, tx: Tx, step: MoveOrgan, actor: str, reason: str, decision_ids: list[str]) -> str:
        """approve / cancel / rebuild / set of one organ."""
        await self.organs.move_in(tx, step.organ_id, OrganEvent(step.via), actor, reason, step.after, tuple(decision_ids))
        return step.organ_id
