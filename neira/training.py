"""The Training Orchestrator (HITL, contract §7): iterations over a record's samples, human reviews, convergence.

An iteration runs every sample of the record's template once through the runtime and is kept as a row; a
human accepts or rejects it with a comment. Training converges when the last `consecutive` iterations are
accepted with a score of at least `min_score`. Training changes no lifecycle state."""

from __future__ import annotations

import time
from typing import Any, Literal, Protocol

import msgspec
from sqlalchemy import func, select

from neira.audit import Audit
from neira.errors import InvalidRequest, NotFound, NotRunnable
from neira.events import EventBus
from neira.metrics import Metrics
from neira.runtime.results import RunResult
from neira.runtime.sources import RecordView
from neira.sample_runs import SampleResult, p99, run_samples
from neira.samples import samples_of
from neira.storage import tables
from neira.storage.db import Database, Tx
from neira.structs import Base
from neira.templates import CellTemplate, TrainingPolicy

I, V = tables.training_iterations, tables.training_reviews
MAX_ITERATION = 2**31 - 1


class RecordSource(Protocol):
    """Reads a cell record (400 malformed id, 404 unknown)."""

    async def record(self, record_id: str) -> RecordView: ...


class CellRuns(Protocol):
    """What training needs of the runtime."""

    async def runnable_record(self, record_id: str) -> RecordView: ...

    async def run_cell(self, record_id: str, body: Any) -> RunResult: ...


class Review(Base):
    """A human's verdict on an iteration."""

    verdict: Literal["accept", "reject"]
    comment: str
    actor: str
    at: float


class Iteration(Base):
    """One iteration: `score` is the share of samples passing; `errors` counts runs that did not complete."""

    record_id: str
    iteration: int
    score: float
    passed: int
    failed: int
    errors: int
    p99_ms: float
    results: list[SampleResult]
    at: float
    review: Review | None = None


class PolicyView(Base):
    """The training policy in force, every field shown."""

    min_score: float
    consecutive: int


class Training(Base):
    """`GET /factory/cells/{id}/training`."""

    record_id: str
    iterations: list[Iteration]
    converged: bool
    policy: PolicyView


class ReviewBody(Base):
    """Body of a review: `{verdict: accept|reject, comment}`."""

    verdict: Literal["accept", "reject"]
    comment: str = ""


class Reviewed(Base):
    """The answer to a review."""

    record_id: str
    iteration: int
    verdict: str
    comment: str
    at: float
    converged: bool


def policy_of(template: CellTemplate) -> TrainingPolicy:
    """The template's training policy (`policies.training`), else the defaults."""
    return template.policies.training if template.policies is not None else TrainingPolicy()


def converged(iterations: list[Iteration], policy: TrainingPolicy) -> bool:
    """The last `consecutive` iterations are all accepted with score ≥ `min_score`."""
    last = iterations[-policy.consecutive:]
    return len(last) == policy.consecutive and all(
        i.review is not None and i.review.verdict == "accept" and i.score >= policy.min_score for i in last)


def iteration_number(raw: str) -> int:
    """An iteration number from a path; anything but 1..2³¹-1 names no iteration (404)."""
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw[:12]) <= MAX_ITERATION:
        raise NotFound(f"no training iteration {raw[:40]!r}: iterations are numbered 1, 2, …")
    return int(raw)


def review_body(body: Any) -> ReviewBody:
    """A review request; 400 `invalid_request` naming the bad field."""
    try:
        review = msgspec.convert(body, ReviewBody)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"invalid review: {exc}") from None
    if len(review.comment) > 2000:
        raise InvalidRequest("invalid review: comment is longer than 2000 characters")
    return review


class Trainer:
    """Runs iterations and records reviews; every iteration and review is a row, an audit record and an event."""

    def __init__(self, db: Database, runs: CellRuns, records: RecordSource, events: EventBus, audit: Audit,
                 metrics: Metrics) -> None:
        self.db, self.runs, self.records = db, runs, records
        self.events, self.audit, self.metrics = events, audit, metrics

    async def train(self, record_id: str, actor: str, session_id: str | None = None) -> Iteration:
        """Run one iteration over the record's samples (409 `not_runnable` when it cannot run or has none)."""
        record = await self.runs.runnable_record(record_id)
        samples = samples_of(record.template.metadata)
        if not samples:
            raise NotRunnable(f"cell record {record_id} has no samples to train on", cell=record.template.id)
        results = await run_samples(lambda value: self.runs.run_cell(record_id, {"input": value}), samples)
        passed = sum(r.passed for r in results)
        async with self.db.transaction() as tx:
            number = await self._next(tx, record_id)
            it = Iteration(record_id=record_id, iteration=number, score=round(passed / len(results), 4), passed=passed,
                           failed=len(results) - passed, errors=sum(r.error is not None for r in results),
                           p99_ms=p99([r.ms for r in results]), results=results, at=time.time())
            await tx.conn.execute(I.insert().values(
                record_id=record_id, iteration=number, score=it.score, passed=it.passed, failed=it.failed,
                errors=it.errors, p99_ms=it.p99_ms, results=msgspec.to_builtins(results), at=it.at, actor=actor,
                session_id=session_id))
            summary = {"iteration": number, "score": it.score, "passed": it.passed, "failed": it.failed,
                       "errors": it.errors, "p99_ms": it.p99_ms}
            await self.audit.record(tx, actor, "training.iteration", f"cell:{record_id}", after=summary,
                                    reason=f"{passed}/{len(results)} samples passed")
            await self.events.emit(tx, "training.iteration", f"cell:{record_id}", {"id": record_id, **summary})
            tx.after_commit(self.metrics.training_iterations.inc)
        return it

    async def _next(self, tx: Tx, record_id: str) -> int:
        found = (await tx.conn.execute(select(func.max(I.c.iteration)).where(I.c.record_id == record_id))).scalar()
        return (found or 0) + 1

    async def training(self, record_id: str) -> Training:
        """Every iteration of the record with its latest review, whether it converged, and the policy."""
        policy = policy_of((await self.records.record(record_id)).template)
        async with self.db.read() as conn:
            iterations = await self._iterations(conn, record_id)
        return Training(record_id=record_id, iterations=iterations, converged=converged(iterations, policy),
                        policy=PolicyView(min_score=policy.min_score, consecutive=policy.consecutive))

    async def review(self, record_id: str, iteration: int, body: Any, actor: str) -> Reviewed:
        """Accept or reject an iteration with a comment (404 for an unknown record or iteration); the move
        into convergence is counted, audited and announced once."""
        req = review_body(body)
        policy = policy_of((await self.records.record(record_id)).template)
        if not 1 <= iteration <= MAX_ITERATION:  # beyond any counter, and beyond what a database integer holds
            raise NotFound(f"cell record {record_id} has no training iteration {iteration}")
        async with self.db.transaction() as tx:
            iterations = await self._iterations(tx.conn, record_id)
            index = next((n for n, it in enumerate(iterations) if it.iteration == iteration), None)
            if index is None:
                raise NotFound(f"cell record {record_id} has no training iteration {iteration}")
            before = converged(iterations, policy)
            review = Review(verdict=req.verdict, comment=req.comment, actor=actor, at=time.time())
            await tx.conn.execute(V.insert().values(record_id=record_id, iteration=iteration, verdict=review.verdict,
                                                    comment=review.comment, actor=actor, at=review.at))
            old = iterations[index].review
            iterations[index].review = review
            now = converged(iterations, policy)
            subject = f"cell:{record_id}"
            await self.audit.record(tx, actor, "training.review", subject,
                                    before=msgspec.to_builtins(old) if old else None,
                                    after={"iteration": iteration, "verdict": review.verdict, "converged": now},
                                    reason=review.comment or None)
            await self.events.emit(tx, "training.review", subject, {
                "id": record_id, "iteration": iteration, "verdict": review.verdict, "converged": now})
            if now and not before:
                await self.events.emit(tx, "training.converged", subject, {
                    "id": record_id, "iteration": iteration, "min_score": policy.min_score,
                    "consecutive": policy.consecutive})
                tx.after_commit(self.metrics.training_converged.inc)
        return Reviewed(record_id=record_id, iteration=iteration, verdict=review.verdict, comment=review.comment,
                        at=review.at, converged=now)

    async def _iterations(self, conn: Any, record_id: str) -> list[Iteration]:
        rows = await conn.execute(select(I).where(I.c.record_id == record_id).order_by(I.c.iteration))
        reviews: dict[int, Review] = {}
        for r in await conn.execute(select(V).where(V.c.record_id == record_id).order_by(V.c.seq)):
            reviews[r.iteration] = Review(verdict=r.verdict, comment=r.comment, actor=r.actor, at=r.at)
        return [Iteration(record_id=r.record_id, iteration=r.iteration, score=r.score, passed=r.passed, failed=r.failed,
                          errors=r.errors, p99_ms=r.p99_ms, results=msgspec.convert(r.results, list[SampleResult]),
                          at=r.at, review=reviews.get(r.iteration)) for r in rows]

    async def last_trained(self, session_id: str) -> str | None:
        """The record the chat session trained last, if any."""
        async with self.db.read() as conn:
            row = (await conn.execute(select(I.c.record_id).where(I.c.session_id == session_id)
                                      .order_by(I.c.at.desc()).limit(1))).first()
        return row[0] if row else None
