"""The stem-cell factory: dry-run, create, and every lifecycle move of cell records (HITL approvals,
disable, rollback, auto-heal, auto-rollback). Every move goes through `lifecycle.advance`, is stored with
its history row, audited, published as `cell.transition`, and counted after the commit."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgspec
from sqlalchemy import func, select

from neira import idempotency
from neira.audit import Audit
from neira.catalog import (
    CELL,
    Catalog,
    check_id,
    check_key,
    latest,
    parse_cell,
    template_digest,
)
from neira.cell_plan import (
    SANDBOXED,
    CellDryRun,
    CellRequest,
    parse_request,
    plan_cell,
    sandbox_reason,
    with_decisions,
)
from neira.cell_records import CellRecord, RecordCache, RecordMoved, Records, record_view
from neira.errors import Conflict, NeiraError
from neira.events import EventBus
from neira.lifecycle import CellEvent, CellState, advance
from neira.metrics import Metrics
from neira.plan import AnyStep, Blocked, CreateRecord, Plan, ReuseRecord, change
from neira.plan_apply import CoreExecutor, carry_out, decision_of
from neira.planning import DEAD, Snapshot, cell_step
from neira.policy import Decision, PolicyEngine
from neira.selector import LIVE_STATES, candidate
from neira.storage import tables
from neira.storage.db import Database, Tx
from neira.structs import to_builtins
from neira.templates import CellTemplate, template_dict
from neira.lifecycle import CELL_STAGES

log = logging.getLogger("neira.factory")

IDEMPOTENCY_SCOPE = "factory.cells"
PLAN_MEMO_SIZE = 1024  # dry-runs remembered per catalog/records state (cleared whenever either changes)
R = tables.cell_records
HealCheck = Callable[[str], Awaitable[list[str]]]
"""record id → the problems a heal must fail on (none: it may go back)."""


class ApprovalGuard(Protocol):
    """Graduation's check before a human approves a record (neira/graduation.py)."""

    async def __call__(self, tx: Tx, row: Any, force: bool, reason: str | None, actor: str) -> str | None: ...


class Factory:
    """Cell records and their lifecycle. Construct once per Core; `start()` resumes interrupted heals."""

    def __init__(self, db: Database, catalog: Catalog, policy: PolicyEngine, events: EventBus, audit: Audit,
                 metrics: Metrics, heal_delay_s: float = 0.05, sandbox_limits: dict[str, int] | None = None) -> None:
        self.db, self.catalog, self.policy, self.events, self.audit, self.metrics = db, catalog, policy, events, audit, metrics
        self.records = Records(events, audit, metrics, RecordCache(db))
        self._dryruns = {ok: metrics.factory_dryrun_requests.labels(str(ok).lower()) for ok in (True, False)}
        self._memo: OrderedDict[tuple, CellDryRun] = OrderedDict()  # dry-runs for `_memo_state`, see _plan
        self._memo_state: tuple[int, int] = (-1, -1)
        self.heal_delay_s = heal_delay_s
        self.sandbox_limits = sandbox_limits or {}  # what each script / wasm run may use (dry-run, audit)
        self._tasks: set[asyncio.Task[None]] = set()
        # graduation's check before a human approves a record out of canary/experimental (neira/graduation.py):
        # (tx, row, force, reason, actor) → the verdict in words, or PolicyDenied / Held; wired by the core
        self.approval_guard: ApprovalGuard | None = None
        self.heal_checks: list[HealCheck] = []  # more checks a heal runs before it ends (the immune system's)
        self.executor = CoreExecutor(self, catalog)  # the chat apply's executor: cell steps need no organs

    # --- start / stop ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Set the active gauge from storage and finish heals a previous run left in `healing`."""
        async with self.db.read() as conn:
            active = (await conn.execute(select(func.count()).where(R.c.state.in_([s.value for s in LIVE_STATES])))).scalar_one()
            healing = list((await conn.execute(select(R.c.id).where(R.c.state == CellState.HEALING.value))).scalars())
        self.metrics.factory_cells_active.set(active)
        for record_id in healing:
            self._spawn_heal(record_id)

    async def close(self) -> None:
        """Cancel background heals (they are re-driven by the next start)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def drain(self) -> None:
        """Wait for the background heals running now (tests and orderly shutdowns)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- dry-run -----------------------------------------------------------------------------------
    async def _template(self, ref: Any) -> tuple[CellTemplate, str]:
        if isinstance(ref, dict):
            t = parse_cell(ref)
            return t, template_digest(t)
        cell_id, _, version = ref.partition("@")
        return await self.catalog.cell_template(cell_id, version or None)

    @staticmethod
    async def _check_code(t: CellTemplate, backend: str | None) -> None:
        """Any code in the template must compile (invalid_template), checked on a thread; for a create
        (`backend` given) a sandboxed backend's code must be there. A dry-run shows missing code as the risk
        `no_code` instead."""
        from neira.runtime.sandbox.code import (  # lupa, wasmtime load when asked
            check_code_off_loop,
            require_code,
        )

        if backend is not None:
            await require_code(t, backend)
        else:
            await check_code_off_loop(t)

    async def snapshot(self, t: CellTemplate) -> Snapshot:
        """The catalog and the records a dry-run of `t` needs, from the in-memory read models."""
        latest_bodies = await self.catalog.latest_view(CELL)
        versions = await self.catalog.digests(CELL, t.id)
        ids = {t.id, *t.links}
        frontier = list(t.links)
        while frontier:  # every template the closure of links reaches
            body = latest_bodies.get(frontier.pop())
            for link in (body or {}).get("links", []):
                if link not in ids:
                    ids.add(link)
                    frontier.append(link)
        records = await self.records.cache.of_templates(sorted(ids))
        return Snapshot(latest=latest_bodies, digests={f"cell:{t.id}": versions}, records=records)

    async def plan(self, template: dict[str, Any] | str, backend: str = "adapter", hitl: bool = True) -> CellDryRun:
        """`{ok, report, plan}` for creating a record of `template` (the dry-run, for the Command Cell). Reads only."""
        return await self._plan(parse_request({"template": template, "backend": backend, "hitl": hitl}))

    async def _plan(self, req: CellRequest) -> CellDryRun:
        """The dry-run, remembered for the current catalog and records: the Command Cell plans the same
        catalog cells on every command, and a report only changes when one of them commits a write. Each
        answer still gets its own gate decision (id, metrics); the memo is keyed by the decision's verdict."""
        t, digest = await self._template(req.template)
        gate = self.policy.gate(f"factory_{req.backend}")
        state = (self.catalog.generation, self.records.cache.generation)
        if state != self._memo_state:
            self._memo.clear()
            self._memo_state = state
        key = (t.id, t.version, digest, req.backend, req.hitl, gate.rule, gate.action, gate.reason, gate.capability)
        result = self._memo.get(key)
        if result is None:
            await self._check_code(t, None)  # once per content: a hit was checked before
            result = plan_cell(t, digest, req.backend, req.hitl, await self.snapshot(t), [gate], self.sandbox_limits)
            if state == (self.catalog.generation, self.records.cache.generation):  # no commit while reading
                if len(self._memo) >= PLAN_MEMO_SIZE:
                    self._memo.popitem(last=False)  # the oldest goes
                self._memo[key] = result
        return with_decisions(result, [gate])

    async def dryrun(self, body: Any, actor: str) -> CellDryRun:
        """`POST /factory/cells/dryrun`: the report and plan; never writes, never refuses for a closed gate."""
        result = await self._plan(parse_request(body))
        self._dryruns[result.ok].inc()
        return result

    # --- create ------------------------------------------------------------------------------------
    async def create(self, body: Any, actor: str, idempotency_key: str | None = None) -> tuple[int, CellRecord]:
        """`POST /factory/cells`: 201 new draft record, or 200 the existing record of the same
        template+version+backend, unchanged. The template is registered in the catalog too."""
        try:
            return await self._create(body, actor, idempotency_key)
        except NeiraError:
            self.metrics.factory_exec_errors.labels("create").inc()
            raise

    async def _create(self, body: Any, actor: str, key: str | None) -> tuple[int, CellRecord]:
        check_key(key)
        body_digest = idempotency.body_hash(body)
        await self.catalog.index()  # loaded before the writer lock: _template and check_links read it from memory
        await self._precheck(body)
        async with self.db.transaction() as tx:
            # a replay first: the stored answer stands even if the gate closed or the catalog moved since
            if (hit := await idempotency.replay(tx, IDEMPOTENCY_SCOPE, key, body_digest)) is not None:
                return hit[0], msgspec.convert(hit[1], CellRecord)
            req = parse_request(body)
            t, digest = await self._template(req.template)
            gate = self.policy.gate(f"factory_{req.backend}")
            self.policy.enforce([gate])
            await self._check_code(t, req.backend)
            await self.catalog.check_links(t)  # what the dry-run calls link_cycle is refused here
            # the same locks, in the same order, as a plan creating this version takes (plan_apply.check_facts)
            await tx.lock("catalog", f"cell:{t.id}@{t.version}")
            await tx.lock("identity", f"{t.id}@{t.version}/{req.backend}")
            row = await self.records.identity(tx.conn, t.id, t.version, req.backend)
            if row is not None:
                if row.digest != digest:
                    raise Conflict(f"{t.id} {t.version} already has a record with other content")
                status, record = 200, record_view(row)
            else:  # a one-change plan, carried out by the executor the chat's apply uses
                status = 201
                why = sandbox_reason(req.backend, self.sandbox_limits, gate) if req.backend in SANDBOXED else None
                step = CreateRecord(template=template_dict(t), template_id=t.id, version=t.version, digest=digest,
                                    backend=req.backend, hitl=req.hitl, own_reason=True, reason=why)
                made: list[CellRecord] = []
                await carry_out(tx, Plan(id="", lang="en", steps=[step], decisions=[decision_of(gate)], facts={}), actor,
                                self.executor, made)
                [record] = made
            await idempotency.remember(tx, IDEMPOTENCY_SCOPE, key, body_digest, status, to_builtins(record))
            await self.catalog.register(tx, t)  # last: a rolled-back create leaves no file behind
        return status, record

    async def _precheck(self, body: Any) -> None:
        """Compile a template's code before the writer lock is taken (the check keeps its verdict, so the one
        inside the transaction is a lookup). Errors are left to the transaction, which raises them in order."""
        try:
            req = parse_request(body)
            if isinstance(req.template, dict):
                await self._check_code(parse_cell(req.template), None)
        except NeiraError:
            pass

    # --- reads -------------------------------------------------------------------------------------
    async def record_states(self, template_ids: list[str]) -> dict[str, str]:
        """record id → state for every record of these templates, from the record cache (no storage read
        when the templates are cached)."""
        found = await self.records.cache.of_templates(template_ids)
        return {c.id: c.state for candidates in found.values() for c in candidates}

    @property
    def records_generation(self) -> int:
        """Counts committed record writes: an answer built from record states is current while it stands."""
        return self.records.cache.generation

    async def newest_record_id(self, template_id: str) -> str | None:
        """The id of the newest record of a template (from the record cache), or None."""
        found = (await self.records.cache.of_templates([template_id])).get(template_id)
        return max(found, key=lambda c: c.number).id if found else None

    async def list(self, state: str | None = None, after: str | None = None, limit: int | None = None) -> list[CellRecord]:
        """Records, oldest first; `state` filters (validated); at most `limit` after the record id `after`."""
        async with self.db.read() as conn:
            return await self.records.list(conn, state, after, limit)

    async def get(self, id: str) -> CellRecord:
        """A record with its `history: [{from, to, at, actor, reason}]`."""
        async with self.db.read() as conn:
            row = await self.records.row(conn, id)
            return msgspec.structs.replace(record_view(row), history=await self.records.history(conn, id))

    # --- moves -------------------------------------------------------------------------------------
    async def approve(self, id: str, actor: str, reason: str | None = None, force: bool = False) -> RecordMoved:
        """draft → canary → experimental → stable; reaching stable deprecates the other stable record
        of the same template. The backend's gate must be open. Elsewhere 409 invalid_transition. Out of
        canary/experimental the canary verdict must pass, or `force` with a reason overrides it (graduation)."""
        async with self.db.transaction() as tx:
            return await self.move_in(tx, id, CellEvent.APPROVE, actor, reason, force=force)

    async def disable(self, id: str, actor: str, reason: str | None = None) -> RecordMoved:
        """Any non-terminal state → disabled."""
        async with self.db.transaction() as tx:
            return await self.move_in(tx, id, CellEvent.DISABLE, actor, reason)

    async def rollback(self, id: str, actor: str, reason: str | None = None) -> RecordMoved:
        """→ rolled_back; the last stable version of the same template becomes active again (`restored`)."""
        async with self.db.transaction() as tx:
            return await self.move_in(tx, id, CellEvent.ROLLBACK, actor, reason)

    async def auto_rollback(self, id: str, actor: str, reason: str | None = None) -> RecordMoved:
        """The Immune System's rollback: like rollback, plus a `factory.auto_rollback` event."""
        async with self.db.transaction() as tx:
            return await self.move_in(tx, id, CellEvent.AUTO_ROLLBACK, actor, reason)

    async def move_in(self, tx: Tx, id: str, event: CellEvent, actor: str, reason: str | None = None,
                      decision_ids: tuple[str, ...] = (), force: bool = False) -> RecordMoved:
        """One lifecycle move of a record inside the caller's transaction (REST routes and plans alike):
        approve (gate checked; the canary verdict checked by graduation; stable deprecates the other stable
        record), disable, rollback and auto_rollback (the last stable version restored)."""
        row = await self.records.row(tx.conn, id, lock=True)
        if event is CellEvent.APPROVE:
            new = advance(row.state, CellEvent.APPROVE)  # an illegal move is a 409 before any gate question
            gate = self.policy.gate(f"factory_{row.backend}")
            self.policy.enforce([gate])
            if self.approval_guard is not None:
                said = await self.approval_guard(tx, row, force, reason, actor)
                if said:
                    reason = f"{reason or 'approved'} ({said})"
            new = await self.records.move(tx, row, event, actor, reason, [gate], decision_ids)
            if new is CellState.STABLE:
                await self.records.deprecate_others(tx, row, actor)
            tx.after_commit(lambda: self._count_approval(new))
            return RecordMoved(id=id, state=new.value)
        if event is CellEvent.DISABLE:
            new = await self.records.move(tx, row, event, actor, reason, (), decision_ids)
            return RecordMoved(id=id, state=new.value)
        new = await self.records.move(tx, row, event, actor, reason, (), decision_ids)
        restored = await self.records.restore(tx, row, actor)
        kind = "auto" if event is CellEvent.AUTO_ROLLBACK else "manual"
        if event is CellEvent.AUTO_ROLLBACK:
            await self.events.emit(tx, "factory.auto_rollback", f"cell:{id}", {
                "id": id, "from": row.state, "state": new.value, "restored": restored, "reason": reason})
        tx.after_commit(lambda: self.metrics.factory_rollbacks.labels(kind).inc())
        return RecordMoved(id=id, state=new.value, restored=restored)

    async def graduate_in(self, tx: Tx, id: str, event: CellEvent, actor: str, reason: str) -> str:
        """A move a verdict caused (graduation): approve one stage (stable deprecates the other stable record)
        or fail. No gate question: the record already runs on its backend, and the verdict is the decision."""
        row = await self.records.row(tx.conn, id, lock=True)
        new = await self.records.move(tx, row, event, actor, reason)
        if new is CellState.STABLE:
            await self.records.deprecate_others(tx, row, actor)
        if event is CellEvent.APPROVE:
            tx.after_commit(lambda: self._count_approval(new))
        return new.value

    async def carry_in(self, tx: Tx, targets: dict[str, str], actor: str, reasons: dict[str, str]) -> list[tuple[str, str, str]]:
        """Records promoted with their organ (contract §7): each record id in `targets` that is behind its target
        stage on the promotion chain is approved up to it (the organ's evidence and approval count for it);
        `reasons[record id]` says why. Records ahead of it, or off the chain (deprecated, disabled, ...), stay.
        Returns the moves `(record id, from, to)`."""
        if not targets:
            return []
        rank = {s.value: i for i, s in enumerate(CELL_STAGES)}
        moved: list[tuple[str, str, str]] = []
        # Locked in id order (PostgreSQL; SQLite has one writer): a replica carrying the same records waits, then
        # reads them as the first left them, so each step is taken once and no two carries deadlock.
        rows = list(await tx.conn.execute(select(R).where(R.c.id.in_(list(targets))).order_by(R.c.id).with_for_update()))
        for row in rows:
            if rank.get(row.state, 99) >= rank[targets[row.id]]:
                continue
            start = row.state
            while rank[row.state] < rank[targets[row.id]]:
                new = await self.records.move(tx, row, CellEvent.APPROVE, actor, reasons.get(row.id))
                if new is CellState.STABLE:
                    await self.records.deprecate_others(tx, row, actor)
                tx.after_commit(lambda new=new: self._count_approval(new))
                row = await self.records.row(tx.conn, row.id, lock=True)
            moved.append((row.id, start, row.state))
        return moved

    def _count_approval(self, new: CellState) -> None:
        self.metrics.factory_approvals.labels(new.value).inc()

    async def auto_heal(self, id: str, actor: str, reason: str | None = None) -> RecordMoved:
        """→ healing now; a background check then returns the record to its previous state, or to
        `failed` when its template no longer validates or its links are missing from the catalog."""
        async with self.db.transaction() as tx:
            return await self.auto_heal_in(tx, id, actor, reason)

    async def auto_heal_in(self, tx: Tx, id: str, actor: str, reason: str | None = None) -> RecordMoved:
        """`auto_heal` inside the caller's transaction (the immune system quarantines and heals in one)."""
        row = await self.records.row(tx.conn, id, lock=True)
        new = await self.records.move(tx, row, CellEvent.HEAL, actor, reason)
        await self.events.emit(tx, "factory.auto_heal", f"cell:{id}", {
            "id": id, "phase": "started", "from": row.state, "state": new.value, "reason": reason})
        tx.after_commit(lambda: self._spawn_heal(id))
        return RecordMoved(id=id, state=new.value)

    def _spawn_heal(self, id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._heal(id), name=f"heal {id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _heal(self, id: str) -> None:
        try:
            await asyncio.sleep(self.heal_delay_s)
            found = [problem for check in self.heal_checks for problem in await check(id)]
            await self.finish_heal(id, found)
        except asyncio.CancelledError:
            raise
        except Exception:  # a heal must never take the service down; it is retried on the next start
            log.exception("auto-heal of %s did not finish", id)

    async def health_problems(self, conn: Any, template: Any) -> list[str]:
        """Why a record cannot run: its template breaks the rules, or links to cells the catalog lacks."""
        try:
            t = parse_cell(template)
        except NeiraError as exc:
            return [f"template no longer validates: {exc.reason}"]
        c = tables.catalog.c
        known = {r.id for r in await conn.execute(
            select(c.id).where(c.family == CELL, c.id.in_(t.links)).distinct())} if t.links else set()
        return [f"link {link} is missing from the catalog" for link in t.links if link not in known]

    async def finish_heal(self, id: str, found: list[str] | None = None) -> str | None:
        """End a heal now: back to the previous state, or `failed` (with `found`: problems the heal checks
        saw before). None if the record is not healing."""
        async with self.db.transaction() as tx:
            row = await self.records.row(tx.conn, id, lock=True)
            if row.state != CellState.HEALING:
                return None
            problems = [*await self.health_problems(tx.conn, row.template), *(found or [])]
            event = CellEvent.HEAL_FAIL if problems else CellEvent.HEAL_OK
            why = "; ".join(problems) if problems else "checks passed"
            new = await self.records.move(tx, row, event, "system", why)
            if new is CellState.STABLE and (current := await self.records.other_stable(tx.conn, row)) is not None:
                # another version became stable while this one healed: it stays the active one
                healed = await self.records.row(tx.conn, id, lock=True)
                new = await self.records.move(tx, healed, CellEvent.DEPRECATE, "system", f"{current} became stable while {id} was healing")
            await self.events.emit(tx, "factory.auto_heal", f"cell:{id}", {
                "id": id, "phase": "finished", "state": new.value, "problems": problems})
            if problems:
                tx.after_commit(lambda: self.metrics.factory_exec_errors.labels("auto_heal").inc())
        return new.value

    # --- for the organ builder ---------------------------------------------------------------------
    async def cell_steps_in(self, tx: Tx, cell_ids: list[str], context: Any) -> tuple[list[AnyStep], Decision | None]:
        """Inside the caller's transaction, the plan's own choice (`planning.cell_step`) for each cell id over what
        the transaction reads: reuse a live record (or a draft of the same content), or create a draft from the
        catalog template (a generated adapter template if the catalog does not know the id), its history reason
        naming `context`. Creating needs `factory_adapter` (enforced here; its decision comes back). When the only
        record of the latest version is disabled, failed or rolled back, the dead one must not run: 409 `conflict`."""
        steps: list[AnyStep] = []
        gate: Decision | None = None
        for cell_id in cell_ids:
            check_id(cell_id, "cell id")
            versions = await self.catalog.versions(tx.conn, CELL, cell_id)
            latest_body = {cell_id: versions[latest(list(versions))]} if versions else {}
            rows = await self.records.of_template(tx.conn, cell_id)
            snap = Snapshot(latest=latest_body, digests={f"cell:{cell_id}": dict.fromkeys(versions, "")},
                            records={cell_id: [candidate(r) for r in rows]})
            step = cell_step(cell_id, snap, context=context or "an organ build")
            if isinstance(step, Blocked):
                what = step.state if step.state in DEAD else f"{step.state} (from {next(r.previous_state for r in rows if r.id == step.record_id)})"
                raise Conflict(
                    f"cell {cell_id} has only a {what} record ({step.record_id}) of version {step.version}; "
                    f"roll forward: register a new version of {cell_id} in the catalog and build again",
                    cell=cell_id, record_id=step.record_id, state=step.state, version=step.version)
            if isinstance(step, CreateRecord):
                if gate is None:
                    gate = self.policy.gate("factory_adapter")
                    self.policy.enforce([gate])
                said = change(step).reason
                step = msgspec.structs.replace(step, own_reason=True,
                                               reason=f"{said}; created for {context}" if context else said)
            steps.append(step)
        return steps, gate

    async def ensure_cells(self, tx: Tx, cell_ids: list[str], actor: str, context: Any) -> list[dict[str, Any]]:
        """Inside the caller's transaction: `cell_steps_in`, carried out at once — `[{id, record_id, action,
        state, reason, decision_ids}]` per cell (the decision ids of a created record: the `factory_adapter`
        gate's). A rebuild chooses its cells again with it."""
        steps, gate = await self.cell_steps_in(tx, cell_ids, context)
        out: list[dict[str, Any]] = []
        for step in steps:
            if isinstance(step, ReuseRecord):
                out.append({"id": step.template_id, "record_id": step.record_id, "action": "reuse", "state": step.state,
                            "reason": _reuse_reason(step), "decision_ids": []})
                continue
            assert isinstance(step, CreateRecord) and gate is not None
            ids = [gate.decision_id]
            rec = await self.executor.create_record(tx, step, actor, ids)
            out.append({"id": step.template_id, "record_id": rec.id, "action": "create", "reason": change(step).reason,
                        "state": rec.state, "decision_ids": ids})
        return out


def _reuse_reason(step: ReuseRecord) -> str:
    if step.same:
        return f"{step.record_id} already holds {step.template_id} {step.version} ({step.state})"
    return f"{step.record_id} runs {step.template_id} {step.version} ({step.state})"
