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
        """Append many records `(actor, action, subject, before, after, reason, decision_ids)`: the batched twin
        of `record`. Every record of a transaction is written, in order, by one statement just before it
        commits (`Tx.batch`), so an apply's two audit rows cost one write; they are counted once it commits."""
        if not records:
            return
        at = time.time()

        async def write(rows: list[tuple[Any, ...]]) -> None:
            await insert_tuples(tx, tables.audit, COLUMNS, rows)
            counts: dict[str, int] = {}
            for r in rows:
                counts[r[2]] = counts.get(r[2], 0) + 1

            def count() -> None:
                for action, n in counts.items():
                    self.metrics.audit_records.labels(action).inc(n)

            tx.after_commit(count)

        tx.batch("audit", [(at, *r) for r in records], write)

    async def list(self, since: int = 0, limit: int = 500) -> list[AuditRecord]:
        """Records with seq > since, oldest first."""
        t = tables.audit
        async with self.db.read() as conn:
            rows = await conn.execute(select(t).where(t.c.seq > since).order_by(t.c.seq).limit(limit))
            return [AuditRecord(**r._asdict()) for r in rows]
