"""The immune system (contract §7). It watches two things and acts on both the same way:

- **traffic**: every cell step of a run a caller got its answer from (`RunService.listeners`) is a row
  (`analysis_runs`, subject `traffic:<record id>`, source `traffic`, in the record's current stable stint).
  A stable record whose last `min_runs` rows have an error rate over `max_error_rate` (its template's
  `policies.analysis`, defaults 20 and 0.01) is quarantined.
- **catalog files**: at start and every `NEIRA_INTEGRITY_INTERVAL_S` each file is checked against the digest of
  its indexed body (neira/integrity.py); a changed or missing file quarantines its template version's records.

A quarantine (row in `quarantine`, audit and event `immune.quarantine` naming the measurement) takes the record
out of traffic (`Quarantine.blocked`: runs by name go to the previous stable version) and starts the factory's
`auto_heal` in the same transaction. The heal runs the immune system's check (`heal_check`): the record's samples
must all pass (error rate), or its file must match again, restored from the index (integrity). Healed → the
quarantine is released; failed → `auto_rollback` to the last stable version. Every step is a row, so a restart
goes on where it was."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

import msgspec
from sqlalchemy import func, select, update

from neira.audit import Audit
from neira.catalog import CELL, Catalog, parse_cell
from neira.errors import Busy, NeiraError
from neira.events import EventBus
from neira.factory import Factory
from neira.integrity import IntegrityCheck, check_file, check_files, digest
from neira.lifecycle import CellEvent, CellState
from neira.metrics import Metrics
from neira.planning import is_dead
from neira.runtime.results import RunResult
from neira.runtime.traffic import Served
from neira.sample_runs import judge_run
from neira.samples import samples_of
from neira.shadow import prune
from neira.storage import tables
from neira.storage.db import Database, Tx
from neira.structs import Base
from neira.templates import AnalysisPolicy

log = logging.getLogger("neira.immune")
R, H, A, Q, C = tables.cell_records, tables.record_history, tables.analysis_runs, tables.quarantine, tables.catalog
FLUSH_S = 0.2  # traffic rows are written in batches (a SIGKILL loses at most this much of them)
CALLER_FAULTS = frozenset({"input_invalid", "type_mismatch"})  # the caller's input, not the cell's health
WINDOW_RUNS = 5
BUSY_TRIES = 5  # a heal's sample run that finds the pool full tries again this often before the heal fails


class Checks(Protocol):
    """What the heal's check needs of the runtime: a sample run on a record even while it is quarantined."""

    async def check_record(self, record_id: str, value: Any) -> RunResult: ...


class Quarantined(Base):
    """A record out of traffic: why (the measurement), since when, and its state now."""

    record_id: str
    template_id: str
    version: str
    cause: str
    reason: str
    measurement: dict[str, Any]
    since: float
    state: str


class ImmuneStatus(Base):
    """`GET /api/neira/immune`."""

    quarantined: list[Quarantined]
    last_integrity_check: IntegrityCheck | None


class Quarantine:
    """The records out of traffic, in memory (loaded from the rows, changed after each commit): the runtime's
    Guard."""

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}
        self.generation = 0

    def blocked(self, record_id: str) -> str | None:
        """Why the record gets no traffic, or None."""
        return self.reasons.get(record_id)

    def hold(self, record_id: str, reason: str) -> None:
        """Take the record out of traffic (after the quarantine's commit)."""
        self.reasons[record_id] = reason
        self.generation += 1

    def release(self, record_id: str) -> None:
        """Give the record its traffic back (after the release's commit)."""
        if self.reasons.pop(record_id, None) is not None:
            self.generation += 1


class Immune:
    """Quarantine on error rate and on catalog integrity; heal, or roll back."""

    def __init__(self, db: Database, checks: Checks, factory: Factory, catalog: Catalog, events: EventBus,
                 audit: Audit, metrics: Metrics, integrity_interval_s: int) -> None:
        self.db, self.checks, self.factory, self.catalog = db, checks, factory, catalog
        self.events, self.audit, self.metrics = events, audit, metrics
        self.interval_s = integrity_interval_s
        self.guard = Quarantine()
        self.last_check: IntegrityCheck | None = None
        self._traffic: list[tuple[str, bool, float, float]] = []  # (record id, ok, ms, at)
        self._policies: dict[str, AnalysisPolicy] = {}  # record id → its thresholds (templates are immutable)
        self._flush: asyncio.Task[None] | None = None
        self._loop: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unpruned: dict[str, int] = {}  # record id → batches written since its rows were last pruned
        self._notes: dict[str, str] = {}  # record id → what its heal's check found (for the release's audit)
        factory.heal_checks.append(self.heal_check)
        db.feed.subscribe("cell_records", self._records_moved)

    # --- start / stop ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Load the quarantines that hold, finish any whose heal ended while stopped, check the catalog files
        (before the catalog repairs missing ones), and start the integrity timer."""
        async with self.db.read() as conn:
            rows = list(await conn.execute(select(Q.c.record_id, Q.c.reason, R.c.state).join(R, R.c.id == Q.c.record_id)
                                           .where(Q.c.released_at.is_(None))))
        for row in rows:
            self.guard.hold(row.record_id, row.reason)
            if row.state != CellState.HEALING.value:
                self._spawn(self.resolve(row.record_id))
        await self.check_integrity()
        if self.interval_s > 0:
            self._loop = asyncio.get_running_loop().create_task(self._integrity_loop(), name="catalog integrity")

    async def close(self) -> None:
        """Stop the timer and the pending work; traffic taken so far is written."""
        for task in [t for t in (self._loop, self._flush, *self._tasks) if t is not None]:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._loop = self._flush = None
        await self.flush()

    async def drain(self) -> None:
        """Write the traffic taken so far and finish what it started (tests)."""
        await self.flush()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- traffic -----------------------------------------------------------------------------------
    def served(self, s: Served) -> None:
        """A caller got an answer: each cell step of it is a traffic measurement of its record."""
        now = time.time()
        for entry in s.result.trace:
            if entry.record_id and (entry.ok or entry.error is None or entry.error.code not in CALLER_FAULTS):
                self._traffic.append((entry.record_id, entry.ok, entry.ms, now))
        if self._traffic and self._flush is None:
            self._flush = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        try:
            await asyncio.sleep(FLUSH_S)  # batching: one write for the traffic of the next FLUSH_S
            await self.flush()
        except Exception as exc:  # a lost batch must not stop the watch
            log.warning("traffic rows were not written (%s)", type(exc).__name__)
        finally:
            self._flush = None
            if self._traffic:
                self._flush = asyncio.get_running_loop().create_task(self._flush_soon())

    async def flush(self) -> None:
        """Write the traffic of stable records as rows and quarantine each whose error rate over its last
        `min_runs` runs passes `max_error_rate`: rows, verdict and quarantine in one transaction."""
        taken, self._traffic = self._traffic, []
        ids = sorted({t[0] for t in taken} - set(self.guard.reasons))
        if not ids:
            return
        async with self.db.read() as conn:  # most traffic is of records that are not stable: nothing to write then
            if not (await conn.execute(select(R.c.id).where(R.c.id.in_(ids), R.c.state == CellState.STABLE.value).limit(1))).first():
                return
        async with self.db.transaction() as tx:
            rows = {r.id: r for r in await tx.conn.execute(select(R).where(R.c.id.in_(ids), R.c.state == CellState.STABLE.value))}
            if not rows:
                return
            since = dict((await tx.conn.execute(select(H.c.record_id, func.max(H.c.at)).where(
                H.c.record_id.in_(list(rows)), H.c.to_state == CellState.STABLE.value).group_by(H.c.record_id))).all())
            values = [{"subject": f"traffic:{id}", "stage": "stable", "since": float(since.get(id) or rows[id].updated_at),
                       "source": "traffic", "ok": ok, "passed": ok, "ms": ms, "at": at}
                      for id, ok, ms, at in taken if id in rows]
            await tx.conn.execute(A.insert(), values)
            for id, row in rows.items():
                await self._judge(tx, row, float(since.get(id) or row.updated_at))

    def _policy(self, row: Any) -> AnalysisPolicy:
        policy = self._policies.get(row.id)
        if policy is None:
            t = parse_cell(row.template)
            policy = self._policies[row.id] = t.policies.analysis if t.policies is not None else AnalysisPolicy()
        return policy

    async def _judge(self, tx: Tx, row: Any, since: float) -> None:
        policy, key = self._policy(row), f"traffic:{row.id}"
        self._unpruned[row.id] = self._unpruned.get(row.id, 0) + 1
        if self._unpruned[row.id] >= 8:  # every few batches: the verdict reads only the newest min_runs rows
            await prune(tx.conn, key, WINDOW_RUNS * policy.min_runs)
            self._unpruned[row.id] = 0
        last = list((await tx.conn.execute(select(A.c.ok).where(A.c.subject == key, A.c.since == since)
                                           .order_by(A.c.seq.desc()).limit(policy.min_runs))).scalars())
        if len(last) < policy.min_runs:
            return
        errors = sum(not ok for ok in last)
        rate = errors / len(last)
        if rate > policy.max_error_rate:
            reason = (f"error_rate {rate:.2f} > max_error_rate {policy.max_error_rate:g} over {len(last)} runs "
                      f"({errors} failed)")
            await self.quarantine_in(tx, row, "error_rate", reason, {
                "metric": "error_rate", "value": round(rate, 4), "threshold": policy.max_error_rate,
                "runs": len(last), "errors": errors})

    # --- quarantine --------------------------------------------------------------------------------
    async def quarantine_in(self, tx: Tx, row: Any, cause: str, reason: str, measurement: dict[str, Any]) -> None:
        """Inside `tx`: take the record out of traffic (row, audit, event) and start its heal."""
        now = time.time()
        await tx.conn.execute(Q.insert().values(record_id=row.id, template_id=row.template_id, version=row.version,
                                                cause=cause, reason=reason, measurement=measurement, at=now))
        await self.audit.record(tx, "immune", "immune.quarantine", f"cell:{row.id}", row.state, "quarantined", reason)
        await self.events.emit(tx, "immune.quarantine", f"cell:{row.id}", {
            "id": row.id, "template_id": row.template_id, "version": row.version, "state": row.state,
            "cause": cause, "reason": reason, "measurement": measurement})
        if row.state != CellState.HEALING.value and not is_dead(row.state, row.previous_state):
            await self.factory.auto_heal_in(tx, row.id, "immune", f"quarantined: {reason}")
        tx.after_commit(lambda: self.guard.hold(row.id, reason))
        tx.after_commit(lambda: self.metrics.immune_quarantines.labels(cause).inc())

    def _records_moved(self, changes: list[Any]) -> None:
        for change in changes:
            if change.value is None:  # another process wrote: look at every quarantine again
                for record_id in list(self.guard.reasons):
                    self._spawn(self.resolve(record_id))
            elif change.key in self.guard.reasons and change.value.state != CellState.HEALING.value:
                self._spawn(self.resolve(change.key))

    async def resolve(self, record_id: str) -> None:
        """A quarantined record's heal has ended: healed → released; failed → auto_rollback, then released."""
        async with self.db.transaction() as tx:
            q = (await tx.conn.execute(select(Q).where(Q.c.record_id == record_id, Q.c.released_at.is_(None))
                                       .order_by(Q.c.seq.desc()).limit(1))).first()
            if q is None:
                return
            row = await self.factory.records.row(tx.conn, record_id, lock=True)
            if row.state == CellState.HEALING.value:
                return
            restored = None
            if row.state == CellState.FAILED.value:
                moved = await self.factory.move_in(tx, record_id, CellEvent.AUTO_ROLLBACK, "immune",
                                                   f"{q.reason}; the heal failed: {self._notes.get(record_id, 'see its history')}")
                outcome, restored = "rolled_back", moved.get("restored")
            elif is_dead(row.state, row.previous_state):
                outcome = row.state
            else:
                outcome = "healed"
            why = {"healed": f"healed: {self._notes.get(record_id, 'the heal checks passed')}; back to {row.state}",
                   "rolled_back": f"rolled back to {restored or 'no earlier stable version'} after the heal failed"
                   }.get(outcome, f"{row.state} meanwhile")
            await tx.conn.execute(update(Q).where(Q.c.seq == q.seq).values(released_at=time.time(), outcome=outcome))
            await self.audit.record(tx, "immune", "immune.release", f"cell:{record_id}", "quarantined", outcome, why)
            await self.events.emit(tx, "immune.release", f"cell:{record_id}", {
                "id": record_id, "outcome": outcome, "state": "rolled_back" if outcome == "rolled_back" else row.state,
                "restored": restored, "reason": why})
            tx.after_commit(lambda: self.guard.release(record_id))
            tx.after_commit(lambda: self._notes.pop(record_id, None))

    # --- the heal's check --------------------------------------------------------------------------
    async def heal_check(self, record_id: str) -> list[str]:
        """Problems a quarantined record's heal must fail on (nothing for other heals)."""
        async with self.db.read() as conn:
            q = (await conn.execute(select(Q.c.cause).where(Q.c.record_id == record_id, Q.c.released_at.is_(None))
                                    .order_by(Q.c.seq.desc()).limit(1))).first()
            row = (await conn.execute(select(R).where(R.c.id == record_id))).first()
        if q is None or row is None:
            return []
        problems = await (self._check_file(row) if q.cause == "integrity" else self._check_samples(row))
        if problems:
            self._notes[record_id] = "; ".join(problems)
        return problems

    async def _check_samples(self, row: Any) -> list[str]:
        samples = samples_of(parse_cell(row.template).metadata)
        if not samples:
            return ["no samples to show that it works again"]
        results = []
        for i, sample in enumerate(samples):
            try:
                results.append(judge_run(i, sample, await self._sample_run(row.id, sample.input)))
            except NeiraError as exc:  # it cannot run at all now (a gate closed, its backend gone)
                return [f"samples could not run: {exc.reason}"]
        bad = [r for r in results if not r.passed]
        if bad:
            first = bad[0]
            return [f"samples: {len(results) - len(bad)} of {len(results)} passed (sample {first.sample}: "
                    f"{first.reason or first.error})"]
        self._notes[row.id] = f"samples: {len(results)} of {len(results)} passed"
        return []

    async def _sample_run(self, record_id: str, value: Any) -> RunResult:
        """One sample run for the heal; a full pool is waited out (a few tries), not taken for a failure."""
        for attempt in range(1, BUSY_TRIES + 1):
            try:
                return await self.checks.check_record(record_id, value)
            except Busy:
                if attempt == BUSY_TRIES:
                    raise
                await asyncio.sleep(0.2 * attempt)  # back off while callers hold the pool
        raise AssertionError("unreachable")

    async def _check_file(self, row: Any) -> list[str]:
        async with self.db.read() as conn:
            body = (await conn.execute(select(C.c.body).where(C.c.family == CELL, C.c.id == row.template_id,
                                                               C.c.version == row.version))).scalar()
        if body is None:
            return [f"{row.template_id} {row.version} is not in the catalog index"]
        path = self.catalog.path_for(CELL, row.template_id, row.version)
        if await asyncio.to_thread(check_file, path, digest(body)) is None:
            self._notes[row.id] = "the catalog file matches the index"
            return []
        try:
            await asyncio.to_thread(self.catalog.restore_file, CELL, row.template_id, row.version, body)
        except OSError as exc:
            return [f"the catalog file could not be restored from the index ({type(exc).__name__})"]
        found = await asyncio.to_thread(check_file, path, digest(body))
        if found is not None:
            return [f"the catalog file {found[1]} after restoring it from the index"]
        self._notes[row.id] = "the catalog file was restored from the index"
        return []

    # --- catalog integrity -------------------------------------------------------------------------
    async def _integrity_loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)  # the check's own period (NEIRA_INTEGRITY_INTERVAL_S)
            try:
                await self.check_integrity()
            except Exception as exc:  # one bad pass must not end the checks
                log.warning("catalog integrity check failed (%s)", type(exc).__name__)

    async def check_integrity(self) -> IntegrityCheck:
        """Check every catalog file; quarantine the records of each cell template version whose file fails."""
        async with self.db.read() as conn:
            rows = list(await conn.execute(select(C.c.family, C.c.id, C.c.version, C.c.body)))
        await self.catalog.files_copied()
        result = await asyncio.to_thread(check_files, rows, self.catalog.path_for, self.catalog.root.parent, time.time())
        bodies = {(r.family, r.id, r.version): r.body for r in rows}
        for f in [f for f in result.failed if f.problem == "missing" and not self.catalog.had_file(f.family, f.id, f.version)]:
            # registered by another replica a moment ago, its copy not here yet: copied now, not a fault
            self.catalog.restore_file(f.family, f.id, f.version, bodies[(f.family, f.id, f.version)])
            result.failed.remove(f)
        self.metrics.immune_integrity_checks.labels("failed" if result.failed else "ok").inc()
        if result.failed:
            await self._quarantine_files(result, bodies)
        self.last_check = result
        return result

    async def _quarantine_files(self, result: IntegrityCheck, bodies: dict[tuple[str, str, str], Any]) -> None:
        async with self.db.transaction() as tx:
            summary = "; ".join(f.reason for f in result.failed)
            await self.audit.record(tx, "immune", "immune.integrity", "catalog", None,
                                    {"checked": result.checked, "failed": len(result.failed)}, summary)
            await self.events.emit(tx, "immune.integrity", "catalog", {
                "checked": result.checked, "failed": msgspec.to_builtins(result.failed)})
            for f in result.failed:
                if f.family != CELL:  # an organ template has no records: its file is written again at once
                    tx.after_commit(lambda f=f: self.catalog.restore_file(f.family, f.id, f.version, bodies[(f.family, f.id, f.version)]))
                    continue
                records = await tx.conn.execute(select(R).where(R.c.template_id == f.id, R.c.version == f.version))
                for row in records:
                    if row.id in self.guard.reasons or is_dead(row.state, row.previous_state):
                        continue
                    await self.quarantine_in(tx, row, "integrity", f.reason, {
                        "metric": "file_digest", "file": f.file, "problem": f.problem})

    # --- status --------------------------------------------------------------------------------------
    async def status(self) -> ImmuneStatus:
        """What is quarantined now and the last integrity check."""
        async with self.db.read() as conn:
            rows = await conn.execute(select(Q, R.c.state).join(R, R.c.id == Q.c.record_id)
                                      .where(Q.c.released_at.is_(None)).order_by(Q.c.seq))
            held = [Quarantined(record_id=r.record_id, template_id=r.template_id, version=r.version, cause=r.cause,
                                reason=r.reason, measurement=r.measurement, since=r.at, state=r.state) for r in rows]
        return ImmuneStatus(quarantined=held, last_integrity_check=self.last_check)

