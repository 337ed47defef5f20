"""`Idempotency-Key` support: the first response for (scope, key) is stored and replayed."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import msgspec
from sqlalchemy import select

from neira.errors import Conflict
from neira.storage import tables
from neira.storage.db import Tx


def body_hash(body: Any) -> str:
    """A stable hash of a request body (key order does not matter)."""
    return hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()


async def replay(tx: Tx, scope: str, key: str | None, digest: str) -> tuple[int, Any] | None:
    """Inside the write transaction: the stored (status, response) for this key, None if new.
    The same key with another body is a 409 conflict."""
    if not key:
        return None
    await tx.lock("idempotency", f"{scope}:{key}")  # a replica racing us with the same key waits for our answer
    t = tables.idempotency
    row = (await tx.conn.execute(select(t).where(t.c.scope == scope, t.c.key == key))).first()
    if row is None:
        return None
    if row.body_hash != digest:
        raise Conflict("Idempotency-Key was already used with another body")
    return row.status, row.response


async def remember(tx: Tx, scope: str, key: str | None, digest: str, status: int, response: Any) -> None:
    """Store the response for a new key in the same transaction as the change."""
    if key:
        await tx.conn.execute(
            tables.idempotency.insert().values(
                scope=scope, key=key, body_hash=digest, status=status, response=response, created_at=time.time()
            )
        )
