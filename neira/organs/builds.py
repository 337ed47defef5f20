"""Starting builds: each request is a plan (its cells' steps, then `StartBuild`) carried out by the plan executor
(`plan_apply.carry_out`); concurrent requests are committed together (group commit): one transaction, one counter
read and one insert of the organ rows per batch. Each distinct template is validated and its cells chosen once per
batch, and an Idempotency-Key replays the first answer, even within one batch."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import msgspec

from neira import idempotency
from neira.audit import Audit
from neira.catalog import Catalog
from neira.errors import Conflict, NeiraError
from neira.events import EventBus
from neira.organs import plan, store
from neira.organs.progress import DRAFT, YIELD_EVERY, Progress
from neira.organs.status import BuildStarted
from neira.plan import (
    AnyStep,
    Change,
    CreateRecord,
    Decision,
    MoveOrgan,
    MoveRecord,
    Plan,
    RegisterTemplate,
    ReuseRecord,
    StartBuild,
    base_of,
)
from neira.plan_apply import Executor, carry_out, decision_of
from neira.storage.batch import Batch, GroupCommit
from neira.storage.db import Database, Tx
from neira.structs import Base, to_builtins

IDEMPOTENCY_SCOPE = "organs.build"
NO_FACTS = base_of({})  # a build is planned inside the transaction that carries it out: nothing can move between
CellSteps = Callable[[Tx, list[str], str], Awaitable[tuple[list[AnyStep], Decision | None]]]
"""(tx, cell ids, context) → each cell's step and the gate decision creating records needed (or None)."""


class Job(Base):
    """One queued build: who asked, the template (inline or an id; `ref_key` groups equal ones), the gate
    decision, and the idempotency key and body digest."""

    actor: str
    ref: dict[str, Any] | str
    ref_key: str
    decision: Decision
    key: str | None = None
    digest: str = ""


class BatchStarts:
    """The executor of a batch's build plans: records and templates by the core's executor; each `StartBuild`
    takes the next of the batch's organ ids and its row, event and audit record are written with the others'
    when the batch ends (`flush`), each shared value one object so it is JSON-encoded once."""

    def __init__(self, inner: Executor, ids: list[int], now: float, deadline: float) -> None:
        self.inner, self.now, self.deadline = inner, now, deadline
        self._ids: Iterator[int] = iter(ids)
        self._next: int | None = None
        self.rows: list[tuple[Any, ...]] = []
        self.events: list[tuple[str, str, dict[str, str | int]]] = []
        self.audits: list[tuple[Any, ...]] = []
        self.started: list[tuple[str, str, int]] = []
        self._times = {DRAFT: now}
        self._cells: dict[tuple[str, ...], list[dict[str, str]]] = {}
        self._after: dict[tuple[str, str], dict[str, str]] = {}

    def peek(self) -> str:
        """The id the next `StartBuild` will get."""
        if self._next is None:
            self._next = next(self._ids)
        return f"organ-{self._next}"

    async def create_record(self, tx: Tx, step: CreateRecord, actor: str, decision_ids: list[str]) -> dict[str, Any]:
        return await self.inner.create_record(tx, step, actor, decision_ids)

    async def register(self, tx: Tx, step: RegisterTemplate) -> None:
        await self.inner.register(tx, step)

    async def start_build(self, tx: Tx, step: StartBuild, cells: list[dict[str, str]], actor: str,
                          decision_ids: list[str]) -> str:
        organ_id = self.peek()
        self._next = None
        key = tuple(c["record_id"] for c in cells)
        shared = self._cells.setdefault(key, cells)
        after = self._after.get((step.template_id, step.version))
        if after is None:
            after = self._after[(step.template_id, step.version)] = {
                "state": DRAFT, "template_id": step.template_id, "version": step.version}
        subject = f"organ:{organ_id}"
        self.rows.append((organ_id, step.template_id, step.template, DRAFT, True, self.deadline, 1, shared,
                          self._times, self.now, None, self.now, self.now))
        self.events.append(("organ.stage", subject, {"id": organ_id, "state": DRAFT, "attempt": 1}))
        self.audits.append((actor, "organ.build", subject, None, after, None, decision_ids))
        self.started.append((organ_id, step.template_id, 1))
        return organ_id

    async def move_record(self, tx: Tx, step: MoveRecord, actor: str, reason: str, decision_ids: list[str]) -> None:
        await self.inner.move_record(tx, step, actor, reason, decision_ids)

    async def move_organ(self, tx: Tx, step: MoveOrgan, actor: str, reason: str, decision_ids: list[str]) -> str:
        return await self.inner.move_organ(tx, step, actor, reason, decision_ids)


class BuildQueue:
    """`await submit(job)` → (201, {organ_id, state: draft}) once the batch holding it has committed."""

    def __init__(self, db: Database, catalog: Catalog, events: EventBus, audit: Audit, progress: Progress,
                 cell_steps: CellSteps, executor: Executor) -> None:
        self.db, self.catalog, self.events, self.audit, self.progress = db, catalog, events, audit, progress
        self.cell_steps, self.executor = cell_steps, executor
        self._queue: GroupCommit[Job] = GroupCommit(self._run, name="neira-organ-builds")

    async def submit(self, job: Job) -> tuple[int, BuildStarted]:
        """Queue a build and wait for its answer."""
        return await self._queue.submit(job)

    async def close(self) -> None:
        """Let the builds already accepted commit."""
        await self._queue.close()

    async def _run(self, batch: Batch[Job]) -> None:
        """Commit a batch in one transaction; if it fails, retry its builds one by one so one bad build
        cannot fail the others."""
        try:
            await self._commit(batch)
        except Exception as exc:
            if len(batch) == 1:
                settle(batch[0][1], exc)
                return
            for item in batch:
                if not item[1].done():
                    try:
                        await self._commit([item])
                    except Exception as single:
                        settle(item[1], single)

    async def _commit(self, batch: Batch[Job]) -> None:
        answers: list[tuple[asyncio.Future[Any], Any]] = []
        async with self.db.transaction() as tx:
            fresh, followers = await self._replays(tx, batch, answers)
            valid = await self._resolve_all(tx, fresh, followers)
            now = time.time()
            ex = BatchStarts(self.executor, await tx.next_counters("organ", len(valid)) if valid else [], now,
                             now + self.progress.delays_s[DRAFT])
            # the cells are chosen once per template and actor: the first plan's steps create or reuse them,
            # the later plans of the batch reuse what it chose
            reused: dict[tuple[str, str], list[AnyStep]] = {}
            shown: dict[int, tuple[AnyStep, Change]] = {}  # the shared steps' changes, rendered once per batch
            for job, fut, resolved in valid:
                group = (job.ref_key, job.actor)
                decisions = [job.decision]
                steps = reused.get(group)
                if steps is None:
                    t = resolved.template
                    cells, gate = await self.cell_steps(tx, list(t.cells), f"organ {ex.peek()}")
                    if gate is not None:
                        decisions.append(decision_of(gate))
                    steps = [*cells, StartBuild(template_id=t.id, version=t.version, cells=list(t.cells),
                                                template=resolved.body)]
                applied = await carry_out(tx, Plan(id="", lang="en", steps=steps, decisions=decisions, facts={},
                                                   base=NO_FACTS), job.actor, ex, shown=shown)
                if group not in reused:
                    reused[group] = [_reuse(s, a.record_id or "") for s, a in zip(steps, applied, strict=True)]
                organ_id = applied[-1].organ_id  # the StartBuild's, last in every plan
                assert organ_id is not None
                response = BuildStarted(organ_id=organ_id, state=DRAFT)
                if job.key:
                    await idempotency.remember(tx, IDEMPOTENCY_SCOPE, job.key, job.digest, 201, to_builtins(response))
                answers.append((fut, (201, response)))
                answers.extend((f, (201, response)) for f in followers.get(job.key or "", ()))
                if len(ex.started) % YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # one transaction, but the loop stays responsive meanwhile
            await store.insert_organs(tx, ex.rows)
            await self.events.emit_many(tx, ex.events)
            await self.audit.record_many(tx, ex.audits)
            started, deadline = ex.started, ex.deadline
            tx.after_commit(lambda: self.progress.started(started, deadline, now, len(started)))
        for fut, answer in answers:
            settle(fut, answer)

    async def _resolve_all(self, tx: Tx, jobs: Batch[Job], followers: dict[str, list]) -> list[tuple[Job, Any, plan.Resolved]]:
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
                    settle(f, outcome)
            else:
                valid.append((job, fut, outcome))
        return valid

    async def _replays(self, tx: Tx, batch: Batch[Job], answers: list) -> tuple[Batch[Job], dict[str, list]]:
        """Split a batch into new builds and replays of an Idempotency-Key (stored, or earlier in the batch)."""
        fresh: Batch[Job] = []
        first: dict[str, Job] = {}
        followers: dict[str, list[asyncio.Future[Any]]] = {}
        for job, fut in batch:
            if fut.done():
                continue  # the caller gave up before its build was written
            if job.key:
                if job.key in first:
                    if first[job.key].digest == job.digest:
                        followers.setdefault(job.key, []).append(fut)
                    else:
                        settle(fut, Conflict("Idempotency-Key was already used with another body"))
                    continue
                try:
                    hit = await idempotency.replay(tx, IDEMPOTENCY_SCOPE, job.key, job.digest)
                except NeiraError as exc:
                    settle(fut, exc)
                    continue
                if hit is not None:
                    answers.append((fut, (hit[0], msgspec.convert(hit[1], BuildStarted))))
                    continue
                first[job.key] = job
            fresh.append((job, fut))
        return fresh, followers


def settle(fut: asyncio.Future[Any], outcome: Any) -> None:
    """Resolve a waiting caller with a result, or an exception, unless it already gave up."""
    if fut.done():
        return
    if isinstance(outcome, BaseException):
        fut.set_exception(outcome)
    else:
        fut.set_result(outcome)


def _reuse(step: AnyStep, record_id: str) -> AnyStep:
    """The step a later build of the batch takes for a cell the first one created or reused."""
    if isinstance(step, CreateRecord):  # a StartBuild or a ReuseRecord stays as it is
        return ReuseRecord(template_id=step.template_id, version=step.version, record_id=record_id, state=DRAFT,
                           why="reuse_draft")
    return step
