"""The append-only audit trail: who did what to which subject, from what to what, why, under which decisions."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from neira.metrics import Metrics
from neira.storage import tables
from neira.storage.bulk import insert_tuples
from neira.storage.db import Database, Tx

COLUMNS = ("at", "actor", "action", "subject", "before", "after", "reason", "decision_ids")
from neira.structs import Base


class AuditRecord(Base):
    """One audited move."""

    seq: int
    at: float
    actor: str
    action: str
    subject: str
    before: Any = None
    after: Any = None
    reason: str | None = None
    decision_ids: list[str] = []


class Audit:
    """Writes happen inside the transaction of the change they describe; there is no update or delete."""

    def __init__(self, db: Database, metrics: Metrics) -> None:
        self.db = db
        self.metrics = metrics

    async def record(
        self,
        tx: Tx,
        actor: str,
        action: str,
        subject: str,
        before: Any = None,
        after: Any = None,
        reason: str | None = None,
        decision_ids: list[str] | None = None,
    ) -> None:
        """Append one record (through the batched path: on SQLite straight to the driver)."""
        await self.record_many(tx, [(actor, action, subject, before, after, reason, decision_ids or [])])

    async def record_many(self, tx: Tx, records: list[tuple[str, str, str, Any, Any, str | None, list[str]]]) -> None:
        """Append many records `(actor, action, subject, before, after, reason, decision_ids)` with one
        statement: the batched twin of `record`."""
        if not records:
            return
        at = time.time()
        await insert_tuples(tx, tables.audit, COLUMNS, [(at, *r) for r in records])
        counts: dict[str, int] = {}
        for r in records:
            counts[r[1]] = counts.get(r[1], 0) + 1

        def count() -> None:
            for action, n in counts.items():
                self.metrics.audit_records.labels(action).inc(n)

        tx.after_commit(count)

    async def list(self, since: int = 0, limit: int = 500) -> list[AuditRecord]:
        """Records with seq > since, oldest first."""
        t = tables.audit
        async with self.db.read() as conn:
            rows = await conn.execute(select(t).where(t.c.seq > since).order_by(t.c.seq).limit(limit))
            return [AuditRecord(**r._asdict()) for r in rows]
