"""Starting builds: concurrent requests are committed together (group commit), each distinct template is
validated once per batch, and an Idempotency-Key replays the first answer, even within one batch."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from neira import idempotency
from neira.audit import Audit
from neira.catalog import Catalog
from neira.errors import Conflict, NeiraError
from neira.events import EventBus
from neira.organs import plan, store
from neira.storage.batch import Batch, GroupCommit
from neira.organs.progress import DRAFT, YIELD_EVERY, Progress
from neira.storage.db import Database, Tx
from neira.structs import Base

IDEMPOTENCY_SCOPE = "organs.build"
EnsureCells = Callable[[Tx, list[str], str, str | None], Awaitable[list[dict[str, Any]]]]


class Job(Base):
    """One queued build: who asked, the template (inline or an id; `ref_key` groups equal ones), the gate
    decision, and the idempotency key and body digest."""

    actor: str
    ref: dict[str, Any] | str
    ref_key: str
    decision_id: str
    key: str | None = None
    digest: str = ""


class BuildQueue:
    """`await submit(job)` → (201, {organ_id, state: draft}) once the batch holding it has committed."""

    def __init__(self, db: Database, catalog: Catalog, events: EventBus, audit: Audit, progress: Progress,
                 ensure_cells: EnsureCells) -> None:
        self.db, self.catalog, self.events, self.audit, self.progress = db, catalog, events, audit, progress
        self.ensure_cells = ensure_cells
        self._queue: GroupCommit[Job] = GroupCommit(self._run, name="neira-organ-builds")

    async def submit(self, job: Job) -> tuple[int, dict[str, Any]]:
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
            ids = await tx.next_counters("organ", len(valid)) if valid else []
            now = time.time()
            deadline = now + self.progress.delays_s[DRAFT]
            rows, evs, audits, started = [], [], [], []
            # Values shared by a whole group are one object, so they are built and JSON-encoded once.
            times = {DRAFT: now}
            groups: dict[tuple[str, str], tuple[list[dict[str, Any]], dict[str, Any]]] = {}
            for (job, fut, resolved), n in zip(valid, ids, strict=True):
                organ_id = f"organ-{n}"
                t = resolved.template
                group = groups.get((job.ref_key, job.actor))
                if group is None:  # the selector's answer is the same for the whole batch
                    chosen = await self.ensure_cells(tx, list(t.cells), job.actor, organ_id)
                    group = groups[(job.ref_key, job.actor)] = (
                        [{"id": c["id"], "record_id": c["record_id"]} for c in chosen],
                        {"state": DRAFT, "template_id": t.id, "version": t.version},
                    )
                cells, audit_after = group
                subject = f"organ:{organ_id}"
                rows.append((organ_id, t.id, resolved.body, DRAFT, True, deadline, 1, cells, times, now, None, now, now))
                evs.append(("organ.stage", subject, {"id": organ_id, "state": DRAFT, "attempt": 1}))
                audits.append((job.actor, "organ.build", subject, None, audit_after, None, [job.decision_id]))
                response = {"organ_id": organ_id, "state": DRAFT}
                if job.key:
                    await idempotency.remember(tx, IDEMPOTENCY_SCOPE, job.key, job.digest, 201, response)
                answers.append((fut, (201, response)))
                answers.extend((f, (201, response)) for f in followers.get(job.key or "", ()))
                started.append((organ_id, t.id, 1))
                if len(started) % YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # one transaction, but the loop stays responsive meanwhile
            await store.insert_organs(tx, rows)
            await self.events.emit_many(tx, evs)
            await self.audit.record_many(tx, audits)
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
                    answers.append((fut, hit))
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
