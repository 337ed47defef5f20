"""Saved plans (table `plans`): a plan is kept with its base hash and session, so "apply" — by id or by
saying «применить» in the same session — carries out exactly what was shown. Survives restarts. The apply
marks its plan applied in its own transaction (`mark_applied`), so a plan is applied wholly once or not at all."""

from __future__ import annotations

import secrets
import time
from typing import Any

from sqlalchemy import select, update

from neira.errors import NotFound
from neira.storage import tables
from neira.storage.batch import Batch, GroupCommit
from neira.storage.bulk import insert_tuples

P = tables.plans
_COLUMNS = ("id", "session_id", "base", "body", "created_at")


def new_plan_id() -> str:
    """plan-<12 hex>: unguessable, short enough to type."""
    return f"plan-{secrets.token_hex(6)}"


class PlanStore:
    """Reads and writes saved plans through the core's Database."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self._saves: GroupCommit[tuple[Any, ...]] = GroupCommit(self._save_batch, max_batch=256, name="neira-plan-saves")

    async def save(self, plan_id: str, session_id: str | None, base: str, body: dict[str, Any]) -> None:
        """Keep a plan (its resolution, changes and text) bound to the base it was made against. Returns once
        it is committed; plans said at the same time share one transaction (the write was most of a command's
        cost under concurrency)."""
        await self._saves.submit((plan_id, session_id, base, body, time.time()))

    async def _save_batch(self, batch: Batch[tuple[Any, ...]]) -> None:
        """One transaction for the batch: every plan in it is stored, or none (each caller gets the error)."""
        async with self.db.transaction() as tx:
            # rows through bulk.insert_tuples: on SQLite straight to the driver, bodies encoded by msgspec
            # (SQLAlchemy's per-statement processing and stdlib json were a fifth of a command's CPU)
            await insert_tuples(tx, P, _COLUMNS, [row for row, _ in batch])

    async def close(self) -> None:
        """Let the plans already said commit."""
        await self._saves.close()

    async def load(self, plan_id: str) -> Any:
        """The stored row (id, session_id, base, body, created_at, applied_at, result); NotFound if unknown."""
        async with self.db.read() as conn:
            return await self.load_in(conn, plan_id)

    @staticmethod
    async def load_in(conn: Any, plan_id: str) -> Any:
        """The stored row read on `conn` (inside the apply's transaction); NotFound if unknown."""
        row = (await conn.execute(select(P).where(P.c.id == plan_id))).first()
        if row is None:
            raise NotFound(f"no plan {plan_id}")
        return row

    async def last_of_session(self, session_id: str) -> Any | None:
        """The session's most recent plan, applied or not (None when the session has none)."""
        async with self.db.read() as conn:
            return (await conn.execute(
                select(P).where(P.c.session_id == session_id).order_by(P.c.created_at.desc()).limit(1))).first()

    @staticmethod
    async def mark_applied(tx: Any, plan_id: str, result: dict[str, Any]) -> None:
        """Inside the apply's transaction: the plan is applied, with what it did (for a repeated apply)."""
        await tx.conn.execute(update(P).where(P.c.id == plan_id).values(applied_at=time.time(), result=result))
