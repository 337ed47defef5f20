"""The organ builder: staged builds (draft → canary → experimental → stable) that survive restarts.

Every change is one database transaction: the organ row, its `organ.stage` event and, for human moves, an
audit record. The in-memory side (which builds progress by themselves, and the timer heap) is updated only
after the commit, synchronously, so it never disagrees with what is stored. A generation number per build
makes timer entries of a cancelled, rebuilt or manually moved organ harmless.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from neira import idempotency
from neira.audit import Audit
from neira.catalog import Catalog
from neira.catalog import parse_organ
from neira.errors import Conflict, InvalidRequest, InvalidTransition, NeiraError
from neira.events import EventBus
from neira.lifecycle import ORGAN_STAGES, OrganState, next_organ_stage, organ_is_building
from neira.metrics import Metrics
from neira.organs import plan, store
from neira.organs.batch import Batch, GroupCommit
from neira.organs.scheduler import Due, StageScheduler
from neira.organs.stream import organ_stream
from neira.policy import Decision, PolicyEngine
from neira.storage.db import Database, Tx
from neira.structs import Base, to_builtins

log = logging.getLogger("neira.organs")

GATE = "organs_builder"
IDEMPOTENCY_SCOPE = "organs.build"
STATES = ", ".join(s.value for s in OrganState)
DRAFT, STABLE, FAILED = OrganState.DRAFT.value, OrganState.STABLE.value, OrganState.FAILED.value
# The lifecycle's automatic next stage, as plain strings for the scheduler's hot loop.
NEXT_STAGE: dict[str, str] = {s.value: n.value for s in OrganState if (n := next_organ_stage(s)) is not None}


class BuildRequest(Base):
    """Body of `POST /organs/build`."""

    organ_template: dict[str, Any] | str
    dryrun: bool = False


class _Job(Base):
    """One queued build: who asked, the template (inline or an id; `ref_key` groups equal ones), and the
    idempotency key and body digest."""

    actor: str
    ref: dict[str, Any] | str
    ref_key: str
    decision_id: str
    key: str | None = None
    digest: str = ""


class _Flight:
    """A build that progresses by itself: its current state, generation and stage times."""

    __slots__ = ("gen", "started", "state", "times")

    def __init__(self, state: str, gen: int, times: dict[str, float], started: float | None) -> None:
        self.state, self.gen, self.times, self.started = state, gen, times, started


class OrganBuilder:
    """Builds organs from templates; one scheduler task advances every build's stages on time."""

    def __init__(self, db: Database, catalog: Catalog, factory: Any, policy: PolicyEngine, events: EventBus,
                 audit: Audit, metrics: Metrics, stage_delays_ms: tuple[int, int, int]) -> None:
        self.db, self.catalog, self.factory, self.policy = db, catalog, factory, policy
        self.events, self.audit, self.metrics = events, audit, metrics
        self.stage_delays_ms = tuple(stage_delays_ms)
        # seconds a build stays in each stage before the next one (draft, canary, experimental)
        self._delays_s = {s.value: d / 1000 for s, d in zip(ORGAN_STAGES, self.stage_delays_ms, strict=False)}
        self._flights: dict[str, _Flight] = {}
        self._generations = itertools.count(1)
        self._building = 0
        self._scheduler = StageScheduler(self._advance)
        self._builds: GroupCommit[_Job] = GroupCommit(self._build_batch)

    # --- life ------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Reload every build that was in flight (auto on, not stable or failed) with its stored deadline,
        so it goes on with the delay it had left; then start the scheduler."""
        async with self.db.read() as conn:
            rows = await store.in_flight(conn)
            self._building = await store.count_building(conn)
        now = time.time()
        for r in rows:
            flight = _Flight(r.state, next(self._generations), dict(r.stage_times or {}), r.build_started_at)
            self._flights[r.id] = flight
            self._scheduler.push(r.deadline if r.deadline is not None else now, r.id, flight.gen)
        self.metrics.organs_building.set(self._building)
        self._scheduler.start()
        if rows:
            log.info("organ builder resumed %d builds in flight", len(rows))

    async def close(self) -> None:
        """Stop the timers. Nothing is lost: every state and deadline is already stored."""
        await self._builds.close()
        await self._scheduler.close()
        self._flights.clear()

    def _gate(self) -> Decision:
        decision = self.policy.gate(GATE)
        self.policy.enforce([decision])
        return decision

    # --- build -----------------------------------------------------------------------------------------
    async def build(self, body: Any, actor: str, idempotency_key: str | None = None) -> tuple[int, dict[str, Any]]:
        """Start a build: (201, {organ_id, state: draft}); a dry-run answers (200, {organ_id: null, dryrun,
        ok, report, plan}) and writes nothing. The same Idempotency-Key and body replay the first answer."""
        decision = self._gate()
        try:
            req = msgspec.convert(body, BuildRequest)
        except msgspec.ValidationError as exc:
            raise InvalidRequest(f"invalid build request: {exc}") from None
        if req.dryrun:
            return 200, await self._dryrun(req, actor, decision)
        ref = req.organ_template
        job = _Job(actor=actor, ref=ref, ref_key=ref if isinstance(ref, str) else idempotency.body_hash(ref),
                   decision_id=decision.decision_id, key=idempotency_key or None,
                   digest=idempotency.body_hash(body) if idempotency_key else "")
        return await self._builds.submit(job)

    async def _dryrun(self, req: BuildRequest, actor: str, decision: Decision) -> dict[str, Any]:
        """The build's own steps inside a transaction that is always rolled back."""
        try:
            async with self.db.read() as conn:
                resolved = await plan.resolve(self.catalog, conn, req.organ_template)
        except NeiraError as exc:
            if exc.code != "invalid_template":
                raise
            return {"organ_id": None, "dryrun": True, "ok": False,
                    "report": {"errors": exc.extra["errors"], "policy": [to_builtins(decision)]}, "plan": None}

        class _Rollback(Exception):
            pass

        known = [c["id"] for c in resolved.cells if c["in_catalog"]]
        chosen: dict[str, dict[str, Any]] = {}
        try:  # the factory would also register generated templates (files) for unknown cells: keep them out
            async with self.db.transaction() as tx:
                chosen = {c["id"]: c for c in await self._ensure_cells(tx, known, actor, None)}
                raise _Rollback
        except _Rollback:
            pass
        selections = [chosen.get(c["id"]) or {"id": c["id"], "action": "create", "record_id": None, "state": None,
                                              "reason": "not in the catalog: a generated adapter template"}
                      for c in resolved.cells]
        return plan.dryrun_result(resolved, selections, [to_builtins(decision)], self.stage_delays_ms)

    async def _ensure_cells(self, tx: Tx, cell_ids: list[str], actor: str, organ_id: str | None) -> list[dict[str, Any]]:
        """The factory's selector: reuse a record or create a draft for each cell, in our transaction."""
        context = f"organ {organ_id}" if organ_id else "an organ build"
        return [dict(c) for c in await self.factory.ensure_cells(tx, cell_ids, actor, context)]

    async def _build_batch(self, batch: Batch[_Job]) -> None:
        """Commit a batch of builds in one transaction; if it fails, retry them one by one so one bad build
        cannot fail the others."""
        try:
            await self._commit_builds(batch)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc)
                return
            for item in batch:
                if not item[1].done():
                    try:
                        await self._commit_builds([item])
                    except Exception as single:
                        _settle(item[1], single)

    async def _commit_builds(self, batch: Batch[_Job]) -> None:
        answers: list[tuple[asyncio.Future[Any], Any]] = []
        async with self.db.transaction() as tx:
            fresh, followers = await self._replays(tx, batch, answers)
            valid = await self._resolve_all(tx, fresh, followers)
            ids = await store.reserve_ids(tx, "organ", len(valid)) if valid else []
            now = time.time()
            deadline = now + self._delays_s[DRAFT]
            rows, evs, audits, started = [], [], [], []
            # Values shared by a whole group are one object, so they are built and JSON-encoded once.
            times = {DRAFT: now}
            groups: dict[tuple[str, str], tuple[list[dict[str, Any]], dict[str, Any]]] = {}
            for (job, fut, resolved), n in zip(valid, ids, strict=True):
                organ_id = f"organ-{n}"
                t = resolved.template
                group = groups.get((job.ref_key, job.actor))
                if group is None:  # the selector's answer is the same for the whole batch
                    chosen = await self._ensure_cells(tx, list(t.cells), job.actor, organ_id)
                    group = groups[(job.ref_key, job.actor)] = (
                        [{"id": c["id"], "record_id": c["record_id"]} for c in chosen],
                        {"state": DRAFT, "template_id": t.id, "version": t.version},
                    )
                cells, audit_after = group
                subject = f"organ:{organ_id}"
                rows.append({
                    "id": organ_id, "template_id": t.id, "template": resolved.body, "state": DRAFT,
                    "auto": True, "deadline": deadline, "attempts": 1, "cells": cells,
                    "stage_times": times, "build_started_at": now, "build_finished_at": None,
                    "created_at": now, "updated_at": now,
                })
                evs.append(("organ.stage", subject, {"id": organ_id, "state": DRAFT, "attempt": 1}))
                audits.append({"actor": job.actor, "action": "organ.build", "subject": subject,
                               "after": audit_after, "decision_ids": [job.decision_id]})
                response = {"organ_id": organ_id, "state": DRAFT}
                if job.key:
                    await idempotency.remember(tx, IDEMPOTENCY_SCOPE, job.key, job.digest, 201, response)
                answers.append((fut, (201, response)))
                answers.extend((f, (201, response)) for f in followers.get(job.key or "", ()))
                started.append((organ_id, t.id))
            await store.insert_organs(tx, rows)
            await store.emit_many(self.events, tx, evs)
            await store.audit_many(self.audit, tx, audits)
            tx.after_commit(lambda: self._started(started, deadline, now))
        for fut, answer in answers:
            _settle(fut, answer)

    async def _resolve_all(self, tx: Tx, jobs: Batch[_Job], followers: dict[str, list]) -> list[tuple[_Job, Any, plan.Resolved]]:
        """Validate each distinct template of the batch once, inside the transaction; a job whose template
        is invalid (or unknown) gets its error, and so do its idempotent followers."""
        outcomes: dict[str, plan.Resolved | NeiraError] = {}
        valid = []
        for job, fut in jobs:
            outcome = outcomes.get(job.ref_key)
            if outcome is None:
                try:
                    outcome = await plan.resolve(self.catalog, tx.conn, job.ref)
                except NeiraError as exc:
                    outcome = exc
                outcomes[job.ref_key] = outcome
            if isinstance(outcome, NeiraError):
                for f in (fut, *followers.get(job.key or "", ())):
                    _settle(f, outcome)
            else:
                valid.append((job, fut, outcome))
        return valid

    async def _replays(self, tx: Tx, batch: Batch[_Job], answers: list) -> tuple[Batch[_Job], dict[str, list]]:
        """Split a batch into new builds and replays of an Idempotency-Key (stored, or earlier in the batch)."""
        fresh: Batch[_Job] = []
        first: dict[str, _Job] = {}
        followers: dict[str, list[asyncio.Future[Any]]] = {}
        for job, fut in batch:
            if fut.done():
                continue
            if job.key:
                if job.key in first:
                    if first[job.key].digest == job.digest:
                        followers.setdefault(job.key, []).append(fut)
                    else:
                        _settle(fut, Conflict("Idempotency-Key was already used with another body"))
                    continue
                try:
                    hit = await idempotency.replay(tx, IDEMPOTENCY_SCOPE, job.key, job.digest)
                except NeiraError as exc:
                    _settle(fut, exc)
                    continue
                if hit is not None:
                    answers.append((fut, hit))
                    continue
                first[job.key] = job
            fresh.append((job, fut))
        return fresh, followers

    def _started(self, started: list[tuple[str, str]], deadline: float, now: float) -> None:
        times = {DRAFT: now}  # shared until each build's next move replaces it (never changed in place)
        for organ_id, template_id in started:
            flight = _Flight(DRAFT, next(self._generations), times, now)
            self._flights[organ_id] = flight
            self._scheduler.push(deadline, organ_id, flight.gen)
            log.info("organ build started id=%s template=%s attempt=1", organ_id, template_id)
        self._building += len(started)
        self.metrics.organ_build_attempts.inc(len(started))
        self.metrics.organs_building.set(self._building)

    # --- automatic progression -------------------------------------------------------------------------
    async def _advance(self, due: Due) -> None:
        """Move every due build one stage on, in one transaction (one UPDATE and one INSERT, executemany)."""
        async with self.db.transaction() as tx:
            now = time.time()
            delays = self._delays_s
            moves, params, evs = [], [], []
            shared: dict[tuple[int, str], dict[str, float]] = {}  # builds that moved together share times
            for organ_id, gen in due:
                flight = self._flights.get(organ_id)
                if flight is None or flight.gen != gen:
                    continue  # cancelled, rebuilt or moved by hand since this timer was set
                nxt = NEXT_STAGE.get(flight.state)
                if nxt is None:
                    continue
                times = shared.get((id(flight.times), nxt))
                if times is None:
                    times = shared[(id(flight.times), nxt)] = {**flight.times, nxt: now}
                done = nxt == STABLE
                deadline = None if done else now + delays[nxt]
                params.append(store.move(organ_id, nxt, not done, deadline, times, now if done else None, now))
                evs.append(("organ.stage", f"organ:{organ_id}", {"id": organ_id, "state": nxt, "from": flight.state}))
                moves.append((organ_id, flight, nxt, times, deadline))
            if not moves:
                return
            await store.emit_many(self.events, tx, evs)
            await store.apply_moves(tx, params)
            tx.after_commit(lambda: self._moved(moves, now))

    def _moved(self, moves: list[tuple[str, _Flight, str, dict[str, float], float | None]], now: float) -> None:
        for organ_id, flight, state, times, deadline in moves:
            flight.state, flight.times = state, times
            if deadline is not None:
                self._scheduler.push(deadline, organ_id, flight.gen)
                continue
            self._flights.pop(organ_id, None)
            self._building -= 1
            if flight.started is not None:
                self.metrics.organ_build_duration_ms.observe((now - flight.started) * 1000)
        self.metrics.organs_building.set(self._building)

    # --- reads -----------------------------------------------------------------------------------------
    async def list(self) -> list[dict[str, Any]]:
        """`[{id, state, template_id, updated_at}]`, oldest first."""
        self._gate()
        async with self.db.read() as conn:
            rows = await store.list_rows(conn)
        return [{"id": r.id, "state": r.state, "template_id": r.template_id, "updated_at": r.updated_at} for r in rows]

    async def status(self, organ_id: str, query: bool = True) -> dict[str, Any]:
        """`{id, state, template_id, auto, cells: [{id, record_id, state}], metrics}`; `query` marks a client's
        question (counted in organ_build_status_queries_total)."""
        self._gate()
        if query:
            self.metrics.organ_build_status_queries.inc()
        async with self.db.read() as conn:
            row = await store.get_row(conn, organ_id)
            states = await store.cell_states(conn, [c.get("record_id") for c in row.cells if c.get("record_id")])
        cells = [{"id": c["id"], "record_id": c.get("record_id"), "state": states.get(c.get("record_id") or "")} for c in row.cells]
        return {"id": row.id, "state": row.state, "template_id": row.template_id, "auto": row.auto, "cells": cells,
                "metrics": _status_metrics(row), "updated_at": row.updated_at}

    def stream(self, organ_id: str) -> AsyncIterator[dict[str, Any]]:
        """Frames `{id, state, seq}`: the current state first, then one per change (a fresh snapshot after
        the subscriber fell behind). NotFound is raised on the first `__anext__` for an unknown id."""
        self._gate()
        return organ_stream(self.db, self.events, organ_id)

    # --- manual control --------------------------------------------------------------------------------
    async def set_status(self, organ_id: str, state: str, reason: str | None, actor: str) -> dict[str, Any]:
        """Move an organ by hand to any stage (or failed); automatic progression stops. Audited."""
        try:
            new = OrganState(state).value
        except ValueError:
            raise InvalidRequest(f"state must be one of {STATES}") from None
        decision = self._gate()
        async with self.db.transaction() as tx:
            row = await store.get_row(tx.conn, organ_id)
            await self._settle_manually(tx, row, new, actor, "organ.status", reason, decision)
        return {"id": organ_id, "state": new}

    async def cancel(self, organ_id: str, actor: str, reason: str | None = None) -> dict[str, Any]:
        """Stop a build in flight: it ends `failed`. 409 once it is stable or failed. Audited."""
        decision = self._gate()
        async with self.db.transaction() as tx:
            row = await store.get_row(tx.conn, organ_id)
            if not organ_is_building(row.state):
                raise InvalidTransition(row.state, FAILED, f"organ {organ_id} is not building (it is {row.state})")
            await self._settle_manually(tx, row, FAILED, actor, "organ.cancel", reason or "build cancelled", decision)
        return {"id": organ_id, "state": FAILED}

    async def _settle_manually(self, tx: Tx, row: Any, new: str, actor: str, action: str, reason: str | None,
                               decision: Decision) -> None:
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
                                {"state": new, "auto": False}, reason, [decision.decision_id])
        started = row.build_started_at

        def settled() -> None:
            self._flights.pop(row.id, None)  # its timer entries are stale from now on
            self._building += int(building) - int(was_building)
            self.metrics.organs_building.set(self._building)
            if was_building and new == FAILED:
                self.metrics.organ_build_failures.inc()
            elif was_building and new == STABLE and started is not None:
                self.metrics.organ_build_duration_ms.observe((now - started) * 1000)

        tx.after_commit(settled)

    async def rebuild(self, organ_id: str, actor: str, reason: str | None = None) -> dict[str, Any]:
        """Build the same organ again from its stored template: same id, fresh stages, attempts + 1. The
        cells are selected again (a disabled cell is replaced). Audited."""
        decision = self._gate()
        async with self.db.transaction() as tx:
            row = await store.get_row(tx.conn, organ_id)
            template = parse_organ(row.template)
            cells = [{"id": c["id"], "record_id": c["record_id"]} for c in await self._ensure_cells(tx, list(template.cells), actor, organ_id)]
            now = time.time()
            deadline = now + self._delays_s[DRAFT]
            attempts = row.attempts + 1
            await store.restart_build(tx, organ_id, attempts, cells, deadline, now)
            await self.events.emit(tx, "organ.stage", f"organ:{organ_id}",
                                   {"id": organ_id, "state": DRAFT, "from": row.state, "attempt": attempts})
            await self.audit.record(tx, actor, "organ.rebuild", f"organ:{organ_id}", {"state": row.state, "attempts": row.attempts},
                                    {"state": DRAFT, "attempts": attempts}, reason, [decision.decision_id])
            was_building = organ_is_building(row.state)

            def restarted() -> None:
                flight = _Flight(DRAFT, next(self._generations), {DRAFT: now}, now)
                self._flights[organ_id] = flight
                self._scheduler.push(deadline, organ_id, flight.gen)
                self._building += 0 if was_building else 1
                self.metrics.organs_building.set(self._building)
                self.metrics.organ_build_attempts.inc()
                log.info("organ build started id=%s template=%s attempt=%d", organ_id, row.template_id, attempts)

            tx.after_commit(restarted)
        return {"organ_id": organ_id, "state": DRAFT}


def _settle(fut: asyncio.Future[Any], outcome: Any) -> None:
    """Resolve a waiting caller with a result, or an exception, unless it already gave up."""
    if fut.done():
        return
    if isinstance(outcome, BaseException):
        fut.set_exception(outcome)
    else:
        fut.set_result(outcome)


def _status_metrics(row: Any) -> dict[str, Any]:
    started, finished = row.build_started_at, row.build_finished_at
    building = organ_is_building(row.state)
    nxt = next_organ_stage(row.state) if row.auto else None
    return {
        "attempts": row.attempts,
        "stage_times": row.stage_times,
        "build_started_at": started,
        "build_finished_at": finished,
        "build_duration_ms": round((finished - started) * 1000, 3) if started and finished else None,
        "elapsed_ms": round((time.time() - started) * 1000, 3) if started and building else None,
        "next_stage": nxt.value if nxt else None,
        "next_stage_at": row.deadline if nxt else None,
    }
