"""Canary analysis (contract §7): cell records and organs in canary or experimental are measured by running
their samples (repeated up to `min_runs` when they enter the stage, then once more every interval), each
run kept as a row; the family's stable version is measured beside them as the baseline. The verdict is
computed from the rows (neira/verdict.py) whenever it is asked for, so it survives a restart."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import delete, func, select

from neira import analysis_claims
from neira.catalog import check_id, parse_cell, parse_organ
from neira.errors import Busy, NeiraError, NotFound
from neira.events import EventBus
from neira.runtime.results import RunResult
from neira.runtime.sources import family_of
from neira.sample_runs import judge_run, percentile
from neira.samples import Sample, samples_of
from neira.storage import tables
from neira.storage.db import Database, Tx
from neira.templates import AnalysisPolicy
from neira.trend import Run, trend
from neira.verdict import Analysis, Baseline, Measurement, analyse, thresholds_of

log = logging.getLogger("neira.analysis")
R, H, O, A = tables.cell_records, tables.record_history, tables.organs, tables.analysis_runs
STAGES = ("canary", "experimental")
STORE_EVERY = 20  # measurements of one subject kept per transaction while it fills up to min_runs
WINDOW_RUNS = 5  # the verdict looks at the newest WINDOW_RUNS × min_runs runs of a stint; older rows are pruned


class Runs(Protocol):
    """What analysis needs of the runtime."""

    async def run_cell(self, record_id: str, body: Any) -> RunResult: ...
    async def probe_organ(self, organ_id: str, payload: Any) -> RunResult: ...


Probe = tuple[Sample, Callable[[Any], Awaitable[RunResult]]]
OnRound = Callable[[Tx, "Subject", Analysis, bool], Awaitable[None]]
"""Called inside the transaction that stored a round, with the verdict it produced and whether that verdict
changed (graduation acts on it there, so a verdict and the promotion it causes commit together)."""


@dataclass
class Subject:
    """A record or organ as analysis sees it: its stage, when it entered it, its thresholds and probes."""

    key: str  # cell:<record id> | organ:<organ id>
    id: str
    state: str
    since: float
    policy: AnalysisPolicy
    probes: list[Probe]
    baseline: str | None  # the key of the family's stable version, if any
    baseline_probes: list[Probe]

    @property
    def measuring(self) -> bool:
        """In a stage that is analysed."""
        return self.state in STAGES


class Analyzer:
    """Measures what is under analysis on a timer (woken at once when a record or organ moves) and answers
    the analysis of a record or an organ from the rows."""

    def __init__(self, db: Database, runs: Runs, events: EventBus, interval_ms: int) -> None:
        self.db, self.runs, self.events = db, runs, events
        self.interval_s = interval_ms / 1000
        self.lease_s = analysis_claims.lease_s(self.interval_s)  # a subject's claim (neira/analysis_claims.py)
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._said: dict[str, str] = {}  # subject key → the last verdict announced (an event per change)
        self.on_round: OnRound | None = None  # graduation (neira/graduation.py), wired by the core
        db.feed.subscribe("cell_records", self._moved)
        db.feed.subscribe("organs", self._moved)

    def _moved(self, _changes: list[Any]) -> None:
        self._wake.set()

    def start(self) -> None:
        """Start the measuring loop (an interval of 0 leaves it off: the routes still answer from the rows)."""
        if self.interval_s > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="canary analysis")

    async def close(self) -> None:
        """Stop the loop; every measurement taken is a row already."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one bad tick must not end the analysis; the next one tries again
                log.warning("canary analysis tick failed (%s)", type(exc).__name__)
            try:  # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that meets a set event
                async with asyncio.timeout(self.interval_s):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()

    # --- measuring ---------------------------------------------------------------------------------
    async def tick(self) -> None:
        """Measure every record and organ in canary or experimental once (filling up to `min_runs`): those this
        replica claims, so that several replicas on one database measure each subject once."""
        keys = await self._keys_under_analysis()
        if not keys:
            return
        async with self.db.transaction() as tx:
            mine = await analysis_claims.claim(tx, keys, self.db.replica, time.time(), self.lease_s)
        for key in keys:
            if key not in mine:
                continue  # another replica measures it
            subject = await self.subject(key)
            if subject is not None and subject.measuring and subject.probes:
                await self._measure(subject)

    async def _keys_under_analysis(self) -> list[str]:
        async with self.db.read() as conn:
            cells = [f"cell:{r[0]}" for r in await conn.execute(select(R.c.id).where(R.c.state.in_(STAGES)))]
            organs = [f"organ:{r[0]}" for r in await conn.execute(select(O.c.id).where(O.c.state.in_(STAGES)))]
        return cells + organs

    async def _measure(self, s: Subject) -> None:
        have = await self._count(s.key, s.state, s.since)
        missing = max(0, s.policy.min_runs - have)
        rounds = math.ceil(missing / len(s.probes)) if missing else 1
        # Rounds are stored STORE_EVERY measurements at a time, in one transaction each: with many subjects
        # entering a stage at once, a transaction (and a re-read of the subject) per round made the last ones
        # wait past max_wait_ms for their first measurement; a long fill still shows its progress.
        measured: list[Measurement] = []
        base: list[Measurement] = []
        for _ in range(rounds):
            got = await self._round(s.probes)
            if got is None:
                break  # the pool is full: a measurement-source error, not a failure; the next tick tries again
            measured += got
            if s.baseline:
                base += await self._round(s.baseline_probes) or []
            if len(measured) >= STORE_EVERY:
                if not await self._store(s, measured, base):
                    return  # it moved on: this stint is over
                measured, base = [], []
        if measured:
            await self._store(s, measured, base)

    async def _round(self, probes: list[Probe]) -> list[Measurement] | None:
        out = []
        for index, (sample, run) in enumerate(probes):
            try:
                result = await run(sample.input)
            except Busy:
                return None
            except NeiraError as exc:  # not runnable now (a gate closed, a record disabled): measured as an error
                out.append(Measurement(ok=False, passed=False, ms=0.0))
                log.debug("analysis probe refused: %s", exc.code)
                continue
            judged = judge_run(index, sample, result)
            out.append(Measurement(ok=result.ok, passed=judged.passed, ms=result.ms))
        return out

    async def _store(self, s: Subject, measured: list[Measurement], base: list[Measurement]) -> bool:
        """Keep one batch of measurements and act on the verdict; False when the subject moved meanwhile."""
        now = time.time()
        rows = [{"subject": s.key, "stage": s.state, "since": s.since, "source": "samples", "ok": m.ok,
                 "passed": m.passed, "ms": m.ms, "at": now} for m in measured]
        rows += [{"subject": s.baseline, "stage": "baseline", "since": 0.0, "source": "samples", "ok": m.ok,
                  "passed": m.passed, "ms": m.ms, "at": now} for m in base]
        async with self.db.transaction() as tx:
            if not await analysis_claims.renew(tx.conn, s.key, self.db.replica, now, self.lease_s):
                return False  # another replica took it over (this one's claim ran out): it measures it now
            fresh = await self.subject(s.key, tx.conn)
            if fresh is None or (fresh.state, fresh.since) != (s.state, s.since):
                return False  # it moved on while it was measured: those runs belong to no stint of it now
            await tx.conn.execute(A.insert(), rows)
            keep = WINDOW_RUNS * s.policy.min_runs
            for subject in {s.key, s.baseline} - {None}:
                await self._prune(tx.conn, str(subject), keep)
            result = await self._analysis_in(tx.conn, s)
            changed = result.verdict != "running" and self._said.get(s.key) != result.verdict
            if changed:
                await self.events.emit(tx, "analysis.verdict", s.key, {
                    "id": s.id, "stage": s.state, "verdict": result.verdict, "runs": result.runs,
                    "errors": result.errors, "error_rate": result.error_rate, "p99_ms": result.p99_ms,
                    "reasons": result.reasons})
                verdict = result.verdict
                tx.after_commit(lambda: self._said.__setitem__(s.key, verdict))
            if self.on_round is not None:
                await self.on_round(tx, s, result, changed)
        return True

    async def _prune(self, conn: Any, subject: str, keep: int) -> None:
        cut = (await conn.execute(select(A.c.seq).where(A.c.subject == subject).order_by(A.c.seq.desc())
                                  .offset(keep).limit(1))).scalar()
        if cut is not None:
            await conn.execute(delete(A).where(A.c.subject == subject, A.c.seq <= cut))

    async def _count(self, key: str, stage: str, since: float) -> int:
        async with self.db.read() as conn:
            return int((await conn.execute(select(func.count()).select_from(A).where(
                A.c.subject == key, A.c.stage == stage, A.c.since == since))).scalar() or 0)

    # --- what is analysed --------------------------------------------------------------------------
    async def subject(self, key: str, conn: Any = None) -> Subject | None:
        """The record or organ behind a key, with its probes and baseline (None when it is gone); read on
        `conn` (a transaction's) when given."""
        kind, _, id = key.partition(":")
        if conn is not None:
            return await (self._cell(conn, id) if kind == "cell" else self._organ(conn, id))
        async with self.db.read() as own:
            return await (self._cell(own, id) if kind == "cell" else self._organ(own, id))

    async def _cell(self, conn: Any, id: str) -> Subject | None:
        row = (await conn.execute(select(R).where(R.c.id == id))).first()
        if row is None:
            return None
        template = parse_cell(row.template)
        since = (await conn.execute(select(func.max(H.c.at)).where(H.c.record_id == id, H.c.to_state == row.state))).scalar()
        stable = (await conn.execute(select(R.c.id).where(R.c.template_id == row.template_id, R.c.state == "stable",
                                                          R.c.id != id).order_by(R.c.created_at.desc()).limit(1))).first()
        samples = samples_of(template.metadata)
        policy = template.policies.analysis if template.policies is not None else AnalysisPolicy()
        return Subject(key=f"cell:{id}", id=id, state=row.state, since=float(since or row.updated_at), policy=policy,
                       probes=[(s, self._cell_run(id)) for s in samples],
                       baseline=f"cell:{stable[0]}" if stable else None,
                       baseline_probes=[(s, self._cell_run(stable[0])) for s in samples] if stable else [])

    def _cell_run(self, record_id: str) -> Callable[[Any], Awaitable[RunResult]]:
        return lambda value: self.runs.run_cell(record_id, {"input": value})

    def _organ_run(self, organ_id: str) -> Callable[[Any], Awaitable[RunResult]]:
        return lambda value: self.runs.probe_organ(organ_id, value)

    async def _organ(self, conn: Any, id: str) -> Subject | None:
        row = (await conn.execute(select(O).where(O.c.id == id))).first()
        if row is None:
            return None
        template = parse_organ(row.template)
        own = samples_of(template.metadata)
        if own:
            probes: list[Probe] = [(s, self._organ_run(id)) for s in own]
        else:  # the organ's cells' samples, each on the organ's record of that cell
            probes = []
            records = {c["id"]: c.get("record_id") for c in row.cells}
            for cell_id, record_id in records.items():
                body = (await conn.execute(select(R.c.template).where(R.c.id == record_id))).scalar() if record_id else None
                if body is not None:
                    probes += [(s, self._cell_run(record_id)) for s in samples_of(parse_cell(body).metadata)]
        baseline = await self._stable_organ(conn, row.template_id, id)
        policy = template.policies.analysis if isinstance(template.policies.analysis, AnalysisPolicy) else AnalysisPolicy()
        since = (row.stage_times or {}).get(row.state) or row.updated_at
        return Subject(key=f"organ:{id}", id=id, state=row.state, since=float(since), policy=policy, probes=probes,
                       baseline=f"organ:{baseline}" if baseline else None,
                       baseline_probes=[(s, self._organ_run(baseline)) for s in own] if baseline and own else [])

    async def _stable_organ(self, conn: Any, template_id: str, not_id: str) -> str | None:
        family = family_of(template_id)
        if family is None:
            return None
        rows = await conn.execute(select(O.c.id, O.c.template_id).where(O.c.state == "stable", O.c.id != not_id)
                                  .order_by(O.c.created_at.desc()))
        return next((r.id for r in rows if family_of(r.template_id) == family), None)

    # --- the verdict -------------------------------------------------------------------------------
    async def of(self, kind: str, id: str) -> Analysis:
        """The analysis of a cell record (`kind` cell) or an organ now: 400 malformed id, 404 unknown."""
        check_id(id, f"{'record' if kind == 'cell' else 'organ'} id")
        subject = await self.subject(f"{kind}:{id}")
        if subject is None:
            raise NotFound(f"no {'cell record' if kind == 'cell' else 'organ'} {id}")
        async with self.db.read() as conn:
            return await self._analysis_in(conn, subject)

    async def analysis_in(self, conn: Any, s: Subject) -> Analysis:
        """The analysis of a subject read on `conn` (inside a caller's transaction)."""
        return await self._analysis_in(conn, s)

    async def _analysis_in(self, conn: Any, s: Subject) -> Analysis:
        stage, since = s.state, s.since
        if not s.measuring:  # the last stint measured, if any
            last = (await conn.execute(select(A.c.stage, A.c.since).where(A.c.subject == s.key, A.c.stage != "baseline")
                                       .order_by(A.c.seq.desc()).limit(1))).first()
            stage, since = (last.stage, last.since) if last else (None, None)
        window = WINDOW_RUNS * s.policy.min_runs
        rows = list(await conn.execute(select(A.c.ok, A.c.passed, A.c.ms, A.c.at).where(
            A.c.subject == s.key, A.c.stage == stage, A.c.since == since).order_by(A.c.seq.desc()).limit(window)))
        runs = [Measurement(ok=r.ok, passed=r.passed, ms=r.ms) for r in reversed(rows)]
        baseline = await self._baseline(conn, s.baseline, window) if s.baseline else None
        waited_ms = (time.time() - since) * 1000 if since else 0.0
        result = analyse(runs, thresholds_of(s.policy), baseline, waited_ms, s.measuring, stage, since)
        base_rows = await self._baseline_runs(conn, s.baseline, window) if baseline is not None and s.baseline else []
        result.trend = trend([Run(at=r.at, ok=r.ok, ms=r.ms) for r in reversed(rows)], base_rows, s.policy.min_runs)
        if not s.measuring and stage is None:
            result.reasons = [f"not measured: {s.key.partition(':')[0]} {s.id} is {s.state}; analysis runs in canary and experimental"]
        if s.measuring and not s.probes:
            result.reasons.append("no samples to run: only traffic can measure it")
        return result

    async def _baseline_runs(self, conn: Any, key: str, window: int) -> list[Run]:
        rows = await conn.execute(select(A.c.at, A.c.ok, A.c.ms).where(A.c.subject == key, A.c.stage == "baseline")
                                  .order_by(A.c.seq.desc()).limit(window))
        return [Run(at=r.at, ok=r.ok, ms=r.ms) for r in reversed(list(rows))]

    async def _baseline(self, conn: Any, key: str, window: int) -> Baseline | None:
        rows = list(await conn.execute(select(A.c.ms).where(A.c.subject == key, A.c.stage == "baseline", A.c.ok.is_(True))
                                       .order_by(A.c.seq.desc()).limit(window)))
        if not rows:
            return None
        return Baseline(id=key.partition(":")[2], p99_ms=percentile([r.ms for r in rows], 0.99))
