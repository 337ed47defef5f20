"""The append-only audit trail: who did what to which subject, from what to what, why, under which decisions."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from neira.metrics import Metrics
from neira.storage import tables
from neira.storage.db import Database, Tx
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
        """Append one record."""
        await tx.conn.execute(
            tables.audit.insert().values(
                at=time.time(), actor=actor, action=action, subject=subject, before=before, after=after,
                reason=reason, decision_ids=decision_ids or [],
            )
        )
        tx.after_commit(lambda: self.metrics.audit_records.labels(action).inc())

    async def list(self, since: int = 0, limit: int = 500) -> list[AuditRecord]:
        """Records with seq > since, oldest first."""
        t = tables.audit
        async with self.db.read() as conn:
            rows = await conn.execute(select(t).where(t.c.seq > since).order_by(t.c.seq).limit(limit))
            return [AuditRecord(**r._asdict()) for r in rows]
