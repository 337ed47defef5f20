"""An in-memory read model of organ rows for the status route, kept in step with every committed write.

Status is the route clients poll; reading its row through SQLAlchemy + aiosqlite costs ~1 ms a request.
Rows are cached on a miss (LRU, bounded) and dropped after every committed write of that organ (the writers
say `tx.changed("organs", id)`; the change feed delivers it); a load that raced a commit is used once and not kept. Like the
factory's RecordCache, this assumes this process is the only writer (see docs/architecture.md, "Caches")."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from neira.organs import store
from neira.storage.db import Database
from neira.storage.feed import RESET


class OrganRows:
    """organ id → its row."""

    def __init__(self, db: Database, limit: int = 20_000) -> None:
        self.db, self.limit = db, limit
        self._rows: OrderedDict[str, Any] = OrderedDict()
        self._writes = 0
        db.feed.subscribe("organs", lambda changes: self.forget(c.key for c in changes))

    def forget(self, organ_ids: Iterable[str]) -> None:
        """Writes of these organs have committed: their cached rows are stale."""
        self._writes += 1
        for organ_id in organ_ids:
            if organ_id == RESET:  # anything may have changed (another process, missed notifications)
                self._rows.clear()
            self._rows.pop(organ_id, None)

    async def get(self, organ_id: str) -> Any:
        """The organ's row (404 for an unknown id)."""
        row = self._rows.get(organ_id)
        if row is not None:
            self._rows.move_to_end(organ_id)
            return row
        writes = self._writes
        async with self.db.read() as conn:
            row = await store.get_row(conn, organ_id)
        if writes == self._writes:
            self._rows[organ_id] = row
            if len(self._rows) > self.limit:
                self._rows.popitem(last=False)
        return row
