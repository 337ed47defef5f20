"""The organ builder: staged builds (draft → canary → experimental → stable) that survive restarts.

Every change is one database transaction: the organ row, its `organ.stage` event and, for builds and human
moves, an audit record. The in-memory side (neira/organs/progress.py: which builds progress by themselves,
and the one timer heap) follows each commit synchronously, so it never disagrees with what is stored.
New builds are committed in batches (neira/organs/builds.py).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from neira import idempotency
from neira.audit import Audit
from neira.catalog import CELL, Catalog, check_key, parse_organ
from neira.plan import CreateRecord, Risk, Snapshot
from neira.planning import cell_step
from neira.errors import InvalidRequest, NeiraError
from neira.events import EventBus
from neira.lifecycle import ORGAN_STAGES, OrganEvent, OrganState, organ_is_building, organ_move, stage_index
from neira.metrics import Metrics
from neira.organs import plan, store
from neira.storage.tables import organs as ORGANS
from sqlalchemy import select
from neira.organs.builds import BuildQueue, Job
from neira.plan_apply import CoreExecutor, decision_of
from neira.organs.by_template import TemplateOrgans
from neira.organs.progress import DRAFT, Progress, status_metrics, waiting
from neira.organs.rows import OrganRows
from neira.organs.status import BuildStarted, HoldInfo, OrganCell, OrganMetrics, OrganMoved, OrganStatus, VerdictSummary
from neira.organs.stream import organ_stream
from neira.policy import Decision, PolicyEngine
from neira.storage.db import Database, Tx
from neira.structs import Base, to_builtins
from neira.templates import OrganTemplate

if TYPE_CHECKING:
    from neira.graduation import Graduation, Verdict

log = logging.getLogger("neira.organs")

GATE = "organs_builder"
SETTLED_MEMO = 2048  # remembered status answers of organs that are not building
STATES = ", ".join(s.value for s in OrganState)


Compat = Callable[[OrganTemplate, Mapping[str, Any]], list[Risk]]


class BuildRequest(Base):
    """Body of `POST /organs/build`."""

    organ_template: dict[str, Any] | str
    dryrun: bool = False


class OrganBuilder:
    """Builds organs from templates; one scheduler task advances every build's stages on time."""

    def __init__(self, db: Database, catalog: Catalog, factory: Any, policy: PolicyEngine, events: EventBus,
                 audit: Audit, metrics: Metrics, stage_delays_ms: tuple[int, int, int],
                 compat: Compat | None = None, sweep_ms: tuple[int, int] = (2000, 2000)) -> None:
        self.db, self.catalog, self.factory, self.policy = db, catalog, factory, policy
        self.events, self.audit, self.metrics = events, audit, metrics
        self.stage_delays_ms = tuple(stage_delays_ms)
        self.compat = compat  # the pathways' type chain, for dry-runs (the runtime's check)
        self.rows = OrganRows(db)
        self.by_template = TemplateOrgans(db, self.rows)
        self._settled: OrderedDict[str, tuple[Any, int, OrganStatus]] = OrderedDict()  # organ id → (row, records generation, status)
        self.progress = Progress(db, events, metrics, self.stage_delays_ms, self.rows, sweep_ms)
        self._builds = BuildQueue(db, catalog, events, audit, self.progress, factory.cell_steps_in,
                                  CoreExecutor(factory, catalog, self))
        policy.on_gate(GATE, self.progress.gate_changed)  # a closed gate holds every build (progress.py)
        self.progress.carry = self._carry_batch  # the organ's cells move with it (contract §7)
        self.graduation: Graduation | None = None  # promotion on evidence and the holds (neira/graduation.py)

    def attach(self, graduation: Graduation) -> None:
        """Graduation decides the promotions out of canary and experimental (when analysis is on) and holds
        (on PostgreSQL the timer's claim reads the `holds` rows, so a hold made on another replica holds here too;
        on SQLite, one writer, its mirror of them is exact)."""
        self.graduation = graduation
        self.progress.is_held = graduation.held
        if graduation.enabled:
            self.progress.gated = graduation.due_in

    # --- life ------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Resume every build that was in flight, with the delay it had left (see Progress.start)."""
        gate_open = self.policy.is_open(GATE)
        resumed = await self.progress.start(gate_open)
        if resumed and gate_open:
            log.info("organ builder resumed %d builds in flight", resumed)
        elif resumed:
            log.info("organ builder holds %d builds in flight: the %s gate is closed", resumed, GATE)

    async def close(self) -> None:
        """Let accepted builds commit, then stop the timers. Nothing is lost: every state and deadline is
        already stored."""
        await self._builds.close()
        await self.progress.close()

    def _gate(self) -> Decision:
        decision = self.policy.gate(GATE)
        self.policy.enforce([decision])
        return decision

    # --- build -----------------------------------------------------------------------------------------
    async def build(self, body: Any, actor: str, idempotency_key: str | None = None) -> tuple[int, BuildStarted | plan.BuildDryRun]:
        """Start a build: (201, {organ_id, state: draft}); a dry-run answers (200, {organ_id: null, dryrun,
        ok, report, plan}) and writes nothing. The same Idempotency-Key and body replay the first answer."""
        decision = self._gate()
        check_key(idempotency_key)  # the same rule as the catalog and the factory (String(200) column)
        try:
            req = msgspec.convert(body, BuildRequest)
        except msgspec.ValidationError as exc:
            raise InvalidRequest(f"invalid build request: {exc}") from None
        if req.dryrun:
            return 200, await self._dryrun(req, actor, decision)
        ref = req.organ_template
        job = Job(actor=actor, ref=ref, ref_key=ref if isinstance(ref, str) else idempotency.body_hash(ref),
                   decision=decision_of(decision), key=idempotency_key or None,
                   digest=idempotency.body_hash(body) if idempotency_key else "")
        return await self._builds.submit(job)

    async def _dryrun(self, req: BuildRequest, actor: str, decision: Decision) -> plan.BuildDryRun:
        """What the build would do, planned from one snapshot (catalog, cell records); writes nothing."""
        try:
            async with self.db.read() as conn:
                resolved = await plan.resolve(self.catalog, conn, req.organ_template)
        except NeiraError as exc:
            if exc.code != "invalid_template":
                raise
            return plan.invalid_result(exc.extra["errors"], decision)
        cell_ids = [c.id for c in resolved.cells]
        snap = Snapshot(latest=await self.catalog.latest_view(CELL), digests={},
                        records=await self.factory.records.cache.of_templates(cell_ids))
        steps = [cell_step(c, snap, parse=self.catalog.parsed) for c in cell_ids]
        decisions = [decision]
        if any(isinstance(s, CreateRecord) for s in steps):
            decisions.append(self.policy.gate("factory_adapter"))
        compat = self.compat(resolved.template, snap.latest) if self.compat is not None else []
        return plan.dryrun_result(resolved, steps, decisions, self.stage_delays_ms, compat)

    async def _ensure_cells(self, tx: Tx, cell_ids: list[str], actor: str, organ_id: str | None) -> list[dict[str, Any]]:
        """The factory's selector: reuse a record or create a draft for each cell, in our transaction."""
        context = f"organ {organ_id}" if organ_id else "an organ build"
        return [dict(c) for c in await self.factory.ensure_cells(tx, cell_ids, actor, context)]

    # --- reads -----------------------------------------------------------------------------------------
    async def list(self, after: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """`[{id, state, template_id, updated_at}]`, oldest first; at most `limit` after the organ id `after`."""
        self.policy.require(GATE)
        async with self.db.read() as conn:
            rows = await store.list_rows(conn, after, limit)
        return [{"id": r.id, "state": r.state, "template_id": r.template_id, "updated_at": r.updated_at} for r in rows]

    async def built_templates(self) -> list[str]:
        """The template ids organs were built from (read whatever the gate: the Command Cell counts versions)."""
        async with self.db.read() as conn:
            return await store.built_templates(conn)

    async def newest_of(self, template_id: str) -> str | None:
        """The id of the newest organ built from a template, or None."""
        self.policy.require(GATE)
        async with self.db.read() as conn:
            return await store.newest_of_template(conn, template_id)

    async def status(self, organ_id: str, query: bool = True) -> OrganStatus:
        """`{id, state, template_id, auto, waiting_for, held_by, hold, analysis, override, cells: [{id, record_id,
        state}], metrics, updated_at}`;
        `query` marks a client's question (counted in organ_build_status_queries_total). It answers with the
        gate closed too, so a held build says why (`waiting_for: "gate"`, `held_by: "organs_builder"`). The
        answer for an organ that is not building (it has no running clock) is remembered until its row or
        any cell record changes: clients poll it (the answer is immutable, so it is shared)."""
        if query:
            self.metrics.organ_build_status_queries.inc()
        row = await self.rows.get(organ_id)
        generation = self.factory.records_generation
        settled = self._settled.get(organ_id)
        if settled is not None and settled[0] is row and settled[1] == generation:
            return settled[2]
        states = await self.factory.record_states([c["id"] for c in row.cells])
        cells = [OrganCell(id=c["id"], record_id=c.get("record_id"), state=states.get(c.get("record_id") or ""))
                 for c in row.cells]
        held = self.progress.held_since
        why = await self.graduation.explain(row, held is not None) if self.graduation is not None else {
            **waiting(row, held), "hold": None, "analysis": None}
        at = stage_index(row.state)
        behind = at is not None and any(
            c.state is not None and (i := stage_index(c.state)) is not None and i < at for c in cells)
        hold, analysis = why["hold"], why["analysis"]
        result = OrganStatus(
            id=row.id, state=row.state, template_id=row.template_id, auto=row.auto, waiting_for=why["waiting_for"],
            held_by=why["held_by"], hold=HoldInfo(**hold) if hold is not None else None,
            analysis=VerdictSummary(**analysis) if analysis is not None else None, override=behind, cells=cells,
            metrics=OrganMetrics(**status_metrics(row, held)), updated_at=row.updated_at)
        if not organ_is_building(row.state) and generation == self.factory.records_generation:
            self._settled[organ_id] = (row, generation, result)
            if len(self._settled) > SETTLED_MEMO:
                self._settled.popitem(last=False)
        return result

    def stream(self, organ_id: str) -> AsyncIterator[dict[str, Any]]:
        """Frames `{id, state, seq}`: the current state first, then one per change (a fresh snapshot after
        the subscriber fell behind). NotFound is raised on the first `__anext__` for an unknown id, and
        CapabilityDisabled on the next one after the gate closes under an open stream."""
        self._gate()
        return organ_stream(self.db, self.events, organ_id, self._gate, f"capability:{GATE}")

    # --- manual control --------------------------------------------------------------------------------
    async def set_status(self, organ_id: str, state: str, reason: str | None, actor: str) -> OrganMoved:
        """Move an organ by hand, as the transition table allows: forward, hold where it is, or to failed;
        automatic progression stops. Audited."""
        try:
            new = OrganState(state).value
        except ValueError:
            raise InvalidRequest(f"state must be one of {STATES}") from None
        return _moved(await self.move(organ_id, OrganEvent.SET, actor, reason, new))

    async def cancel(self, organ_id: str, actor: str, reason: str | None = None) -> OrganMoved:
        """Stop a build in flight: it ends `failed`. 409 once it is stable or failed. Audited."""
        return _moved(await self.move(organ_id, OrganEvent.CANCEL, actor, reason or "build cancelled"))

    async def approve(self, organ_id: str, actor: str, reason: str | None = None, force: bool = False) -> OrganMoved:
        """A human's approve (contract §7): ends a hold and promotes one stage when the canary verdict passes
        (against another verdict only with `force` and a reason); with analysis off, one stage forward and the
        automatic progression stops there. Audited."""
        return _moved(await self.move(organ_id, OrganEvent.APPROVE, actor, reason, force=force))

    async def hold(self, organ_id: str, actor: str, reason: str | None = None) -> OrganMoved:
        """Stop the organ's progression where it is until `approve`. Audited."""
        return _moved(await self.move(organ_id, OrganEvent.HOLD, actor, reason))

    async def move(self, organ_id: str, via: OrganEvent, actor: str, reason: str | None = None,
                   target: str | None = None, force: bool = False) -> OrganMoved | BuildStarted:
        """One lifecycle move in its own transaction (see `move_in`)."""
        decision = self._gate()
        async with self.db.transaction() as tx:
            return await self.move_in(tx, organ_id, via, actor, reason, target, (decision.decision_id,), force)

    async def move_in(self, tx: Tx, organ_id: str, via: OrganEvent, actor: str, reason: str | None = None,
                      target: str | None = None, decision_ids: tuple[str, ...] = (), force: bool = False) -> OrganMoved | BuildStarted:
        """Inside the caller's transaction: the move `via` (to `target` for a manual `set`), judged by the organ
        transition table (409 invalid_transition naming both states). Rebuild starts the build again; approve
        and hold are graduation's (neira/graduation.py)."""
        row = await store.get_row(tx.conn, organ_id, lock=True)
        new = organ_move(row.state, via, target).value
        grad = self.graduation
        if via is OrganEvent.HOLD and grad is not None:
            return await grad.hold_in(tx, row, actor, reason, decision_ids)
        if via is OrganEvent.APPROVE and grad is not None and grad.enabled:
            return await grad.approve_organ_in(tx, row, actor, reason, force, decision_ids)
        if grad is not None:
            await grad.release_in(tx, row, actor, reason)  # any other move by a human ends a hold
        if via is OrganEvent.REBUILD:
            return await self._restart(tx, row, actor, reason, decision_ids)
        action = {OrganEvent.CANCEL: "organ.cancel", OrganEvent.APPROVE: "organ.approve"}.get(via, "organ.status")
        await self._settle_manually(tx, row, new, actor, action, reason or ("approved" if via is OrganEvent.APPROVE else None), decision_ids)
        if via is OrganEvent.APPROVE:
            await self._carry(tx, [(row.id, row.cells, new)], actor, reason or "approved")
        return OrganMoved(id=organ_id, state=new)

    # --- graduation's moves (neira/graduation.py) -----------------------------------------------------------
    async def promote_in(self, tx: Tx, row: Any, actor: str, action: str, reason: str, verdict: Verdict | None,
                         decision_ids: tuple[str, ...] = ()) -> str:
        """One stage forward on evidence (or a human's approve under it), with the organ's cells, in the
        caller's transaction; the automatic progression goes on from the new stage."""
        via = OrganEvent.APPROVE if action == "organ.approve" else OrganEvent.ADVANCE
        new = organ_move(row.state, via).value
        now = time.time()
        times = {**(row.stage_times or {}), new: now}
        done = new == OrganState.STABLE.value
        deadline = None if done else now + self.progress.delays_s[new]
        await store.apply_moves(tx, [store.move(row.id, new, not done, deadline, times, now if done else None, now)])
        shown = to_builtins(verdict) if verdict is not None else None
        data: dict[str, Any] = {"id": row.id, "state": new, "from": row.state, "actor": actor}
        if shown is not None:
            data["verdict"] = shown
        await self.events.emit(tx, "organ.stage", f"organ:{row.id}", data)
        await self.audit.record(tx, actor, action, f"organ:{row.id}", {"state": row.state, "auto": row.auto},
                                {"state": new, "auto": not done, "verdict": shown}, reason, list(decision_ids))
        await self._carry(tx, [(row.id, row.cells, new)], actor, reason)
        started, was_auto = row.build_started_at, row.auto
        tx.after_commit(lambda: self.progress.promoted(row.id, new, times, deadline, started, now, was_auto))
        return new

    async def fail_in(self, tx: Tx, row: Any, actor: str, reason: str, verdict: Verdict) -> None:
        """A failing verdict fails the organ (its family's stable version keeps the traffic)."""
        new = organ_move(row.state, OrganEvent.FAIL).value
        if self.graduation is not None:
            await self.graduation.release_in(tx, row, actor, reason)
        now = time.time()
        times = {**(row.stage_times or {}), new: now}
        await store.apply_moves(tx, [store.move(row.id, new, False, None, times, now, now)])
        shown = to_builtins(verdict)
        await self.events.emit(tx, "organ.stage", f"organ:{row.id}", {"id": row.id, "state": new, "from": row.state,
                                                                      "actor": actor, "verdict": shown})
        await self.audit.record(tx, actor, "organ.fail", f"organ:{row.id}", {"state": row.state, "auto": row.auto},
                                {"state": new, "auto": False, "verdict": shown}, reason)
        started = row.build_started_at
        tx.after_commit(lambda: self.progress.stopped(row.id, True, False, new, started, now))

    async def _carry(self, tx: Tx, moves: list[tuple[str, list[dict[str, Any]], str]], actor: str, reason: str | None) -> None:
        """The organs' cells follow them up the chain, so an organ is never at a later stage than its cells."""
        rank = {s.value: i for i, s in enumerate(ORGAN_STAGES)}
        targets: dict[str, str] = {}
        reasons: dict[str, str] = {}
        for organ_id, cells, state in moves:
            if state not in rank:
                continue
            for c in cells or []:
                rid = c.get("record_id")
                if rid and rank[state] > rank.get(targets.get(rid, ""), -1):
                    targets[rid] = state
                    reasons[rid] = f"with organ {organ_id}" + (f": {reason}" if reason else "")
        await self.factory.carry_in(tx, targets, actor, reasons)

    async def _carry_batch(self, tx: Tx, moves: list[tuple[str, str]]) -> None:
        """The timer's batch moved these organs (id, new state): their cells follow (read in chunks)."""
        wanted = dict(moves)
        items: list[tuple[str, list[dict[str, Any]], str]] = []
        ids = list(wanted)
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            for organ_id, cells in await tx.conn.execute(select(ORGANS.c.id, ORGANS.c.cells).where(ORGANS.c.id.in_(chunk))):
                items.append((organ_id, cells, wanted[organ_id]))
        await self._carry(tx, items, "organs_builder", "stage delay passed")

    async def _settle_manually(self, tx: Tx, row: Any, new: str, actor: str, action: str, reason: str | None,
                               decision_ids: tuple[str, ...]) -> None:
        now = time.time()
        old = row.state
        times = dict(row.stage_times or {})
        if new != old:
            times[new] = now
        was_building, building = organ_is_building(old), organ_is_building(new)
        finished = None if building else (now if was_building else row.build_finished_at)
        await store.apply_moves(tx, [store.move(row.id, new, False, None, times, finished, now)])
        if new != old:
            await self.events.emit(tx, "organ.stage", f"organ:{row.id}", {"id": row.id, "state": new, "from": old, "actor": actor})
        await self.audit.record(tx, actor, action, f"organ:{row.id}", {"state": old, "auto": row.auto},
                                {"state": new, "auto": False}, reason, list(decision_ids))
        started = row.build_started_at

        tx.after_commit(lambda: self.progress.stopped(row.id, was_building, building, new, started, now))

    async def rebuild(self, organ_id: str, actor: str, reason: str | None = None) -> BuildStarted:
        """Build the same organ again from its stored template: same id, fresh stages, attempts + 1. The
        cells are selected again (a live or draft record; a cell whose only record of its version is
        disabled, failed or rolled back is a 409 `conflict`). Audited."""
        started = await self.move(organ_id, OrganEvent.REBUILD, actor, reason)
        assert isinstance(started, BuildStarted)
        return started

    async def _restart(self, tx: Tx, row: Any, actor: str, reason: str | None, decision_ids: tuple[str, ...]) -> BuildStarted:
        organ_id = row.id
        template = parse_organ(row.template)
        cells = [{"id": c["id"], "record_id": c["record_id"]} for c in await self._ensure_cells(tx, list(template.cells), actor, organ_id)]
        now = time.time()
        deadline = now + self.progress.delays_s[DRAFT]
        attempts = row.attempts + 1
        await store.restart_build(tx, organ_id, attempts, cells, deadline, now)
        await self.events.emit(tx, "organ.stage", f"organ:{organ_id}",
                               {"id": organ_id, "state": DRAFT, "from": row.state, "attempt": attempts})
        await self.audit.record(tx, actor, "organ.rebuild", f"organ:{organ_id}", {"state": row.state, "attempts": row.attempts},
                                {"state": DRAFT, "attempts": attempts}, reason, list(decision_ids))
        was_building = organ_is_building(row.state)

        tx.after_commit(lambda: self.progress.started([(organ_id, row.template_id, attempts)], deadline, now,
                                                      0 if was_building else 1))
        return BuildStarted(organ_id=organ_id, state=DRAFT)

    async def start_in(self, tx: Tx, template_id: str, version: str, body: dict[str, Any], cells: list[dict[str, str]],
                       actor: str, decision_ids: list[str]) -> str:
        """Inside the caller's transaction: a new organ in draft from a registered template (`body`, as the
        catalog holds it: a plan carries it so), with the cell records a plan chose (`[{id, record_id}]`).
        Its stages start once the transaction commits."""
        organ_id = f"organ-{await tx.next_counter('organ')}"
        now = time.time()
        deadline = now + self.progress.delays_s[DRAFT]
        subject = f"organ:{organ_id}"
        await store.insert_organs(tx, [(organ_id, template_id, body, DRAFT, True, deadline, 1, cells,
                                        {DRAFT: now}, now, None, now, now)])
        await self.events.emit(tx, "organ.stage", subject, {"id": organ_id, "state": DRAFT, "attempt": 1})
        await self.audit.record(tx, actor, "organ.build", subject, None,
                                {"state": DRAFT, "template_id": template_id, "version": version}, None, decision_ids)
        tx.after_commit(lambda: self.progress.started([(organ_id, template_id, 1)], deadline, now, 1))
        return organ_id


def _moved(answer: OrganMoved | BuildStarted) -> OrganMoved:
    """A move other than rebuild answers the state it reached."""
    assert isinstance(answer, OrganMoved)
    return answer
