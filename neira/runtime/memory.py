"""The `context` memory in the database: per scope (organ or cell record), the newest `limit` entries."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, select

from neira.storage import tables
from neira.storage.db import Database

M = tables.run_memory


class DbMemory:
    """Memory rows in `run_memory`; each remember is one short write transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def remember(self, scope: str, entry: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        """Append `entry`, drop all but the newest `limit` of the scope, return those (oldest first)."""
        async with self.db.transaction() as tx:
            await tx.conn.execute(M.insert().values(scope=scope, at=time.time(), entry=entry))
            rows = list(await tx.conn.execute(
                select(M.c.seq, M.c.at, M.c.entry).where(M.c.scope == scope).order_by(M.c.seq.desc()).limit(limit)))
            if len(rows) == limit:
                await tx.conn.execute(delete(M).where(M.c.scope == scope, M.c.seq < rows[-1].seq))
        return [{**r.entry, "at": r.at} for r in reversed(rows)]

    async def recall(self, scope: str) -> list[dict[str, Any]]:
        """Every kept entry of the scope, oldest first."""
        async with self.db.read() as conn:
            rows = await conn.execute(select(M.c.at, M.c.entry).where(M.c.scope == scope).order_by(M.c.seq))
            return [{**r.entry, "at": r.at} for r in rows]
