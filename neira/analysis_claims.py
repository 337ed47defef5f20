"""Which replica measures a subject under analysis: a lease per subject (`analysis_claims` rows), so the
analysis loops of several replicas on one database measure and judge each subject once.

There is no row to lock for the time a measurement takes (sample runs, outside any transaction), so a claim
is a lease: `(subject, replica, until)`. A loop claims its subjects in one statement per tick — free ones,
expired ones and its own (renewed) — and stores a batch of measurements only while the claim is still its
own, renewing it in the same transaction. A replica that dies leaves its leases to expire; the next loop to
tick after that takes them over. On SQLite (one process) every claim is this process's, for one statement a
tick.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from neira.storage import tables
from neira.storage.db import Tx

C = tables.analysis_claims
CHUNK = 300  # subjects per claiming statement (3 bound parameters each)
LEASE_MIN_S = 5.0  # a lease lasts at least this long, and at least LEASE_TICKS intervals
LEASE_TICKS = 5


def lease_s(interval_s: float) -> float:
    """How long a claim lasts without renewal: long enough for a tick that measures many subjects."""
    return max(LEASE_MIN_S, LEASE_TICKS * interval_s)


async def claim(tx: Tx, keys: list[str], replica: str, now: float, lease: float) -> set[str]:
    """Of `keys`, the subjects this replica measures now: each one free, expired or already its own is claimed
    (or renewed) until `now + lease`, in one upsert per CHUNK keys; leases long expired are dropped."""
    if not keys:
        return set()
    insert = sqlite_insert if tx.conn.dialect.name == "sqlite" else pg_insert
    mine: set[str] = set()
    for i in range(0, len(keys), CHUNK):
        stmt = insert(C).values([{"subject": k, "replica": replica, "until": now + lease} for k in keys[i:i + CHUNK]])
        stmt = stmt.on_conflict_do_update(
            index_elements=[C.c.subject],
            set_={"replica": stmt.excluded.replica, "until": stmt.excluded.until},
            where=(C.c.until < now) | (C.c.replica == replica),
        ).returning(C.c.subject)
        mine.update((await tx.conn.execute(stmt)).scalars())
    await tx.conn.execute(delete(C).where(C.c.until < now - lease))
    return mine


async def renew(conn: Any, key: str, replica: str, now: float, lease: float) -> bool:
    """Inside the transaction that stores a subject's measurements: whether this replica still holds its
    claim (it is renewed then). False once another replica took it over (this one's lease had run out)."""
    result = await conn.execute(update(C).where(C.c.subject == key, C.c.replica == replica).values(until=now + lease))
    return bool(result.rowcount)
