"""A read model of which organs each template has built, so a plan can ask "is an organ of organ.voice.v1
live?" without a query. The ids are loaded once (one query), then follow the change feed: a new organ row
carries its template id. States come from the organ rows read model (invalidated by the same feed). A change
without a value for an id never seen (another process's insert) drops the map, to be read again."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from neira.lifecycle import LIVE_ORGAN_STATES
from neira.organs.rows import OrganRows
from neira.storage import tables
from neira.storage.db import Database
from neira.storage.pages import by_number

LIVE = frozenset(s.value for s in LIVE_ORGAN_STATES)


class TemplateOrgans:
    """organ template id → its organ ids, oldest first."""

    def __init__(self, db: Database, rows: OrganRows) -> None:
        self.db, self.rows = db, rows
        self._ids: dict[str, list[str]] | None = None
        self._known: set[str] = set()
        db.feed.subscribe("organs", self._changed)

    def _changed(self, changes: list[Any]) -> None:
        if self._ids is None:
            return
        for change in changes:
            if isinstance(change.value, str):
                if change.key not in self._known:
                    self._ids.setdefault(change.value, []).append(change.key)
                    self._known.add(change.key)
            elif change.key not in self._known:
                self._ids = None  # an insert we were not told the template of: read again
                return

    async def _load(self) -> dict[str, list[str]]:
        o = tables.organs.c
        async with self.db.read() as conn:
            rows = list(await conn.execute(select(o.id, o.template_id).order_by(*by_number(o.id))))
        ids: dict[str, list[str]] = {}
        for r in rows:
            ids.setdefault(r.template_id, []).append(r.id)
        self._ids, self._known = ids, {r.id for r in rows}
        return ids

    async def newest(self, template_ids: Iterable[str], states: frozenset[str] = LIVE) -> dict[str, tuple[str, str]]:
        """template id → (id, state) of its newest organ in `states` (by default: not failed)."""
        ids = self._ids if self._ids is not None else await self._load()
        out: dict[str, tuple[str, str]] = {}
        for tid in template_ids:
            for organ_id in reversed(ids.get(tid, ())):
                row = await self.rows.get(organ_id)
                if row.state in states:
                    out[tid] = (organ_id, row.state)
                    break
        return out
