"""What a run reads: cell records, organ rows, and the organ a name stands for. Reads only; every answer is
kept while the records' commit counter (or the organ row object) stays the same, so a run usually reads no
storage at all."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, or_, select

from neira.catalog import ORGAN, Catalog, check_id, parse_cell, parse_organ
from neira.errors import NotFound, NotRunnable
from neira.lifecycle import OrganState
from neira.storage import tables
from neira.storage.db import Database
from neira.templates import CellTemplate, OrganTemplate, aliases

R, O = tables.cell_records, tables.organs
FAMILY = re.compile(r"^organ\.(?P<family>[a-z0-9_.-]+?)\.v(?P<major>\d+)$")
CACHE_LIMIT = 4096


@dataclass(frozen=True)
class RecordView:
    """A cell record as a run needs it."""

    id: str
    state: str
    previous_state: str | None
    backend: str
    template: CellTemplate


@dataclass(frozen=True)
class OrganView:
    """An organ as a run needs it: its state, template and the record of each cell."""

    id: str
    state: str
    template_id: str
    template: OrganTemplate
    records: dict[str, str | None]


def family_of(template_id: str) -> str | None:
    """`organ.voice.v2` → `voice`."""
    m = FAMILY.match(template_id)
    return m.group("family") if m else None


def _major(template_id: str) -> int:
    m = FAMILY.match(template_id)
    return int(m.group("major")) if m else -1


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _fold(name: str) -> str:
    return " ".join(name.lower().replace("ё", "е").split())


class Sources:
    """Record, organ and organ-name lookups for the runtime."""

    def __init__(self, db: Database, catalog: Catalog, organ_row: Callable[[str], Awaitable[Any]],
                 records_generation: Callable[[], int]) -> None:
        self.db, self.catalog, self.organ_row, self.records_generation = db, catalog, organ_row, records_generation
        self._records: dict[str, tuple[int, RecordView]] = {}
        self._organs: dict[str, tuple[Any, OrganView]] = {}
        self._named: dict[str, str] = {}  # folded name → the organ that serves it, while no organ or template is written
        self._writes = 0
        db.feed.subscribe("organs", self._forget_names)
        db.feed.subscribe("catalog", self._forget_names)

    def _forget_names(self, _changes: list[Any]) -> None:
        self._writes += 1
        self._named.clear()

    async def record(self, record_id: str) -> RecordView:
        """The record (400 for a malformed id, 404 for an unknown one)."""
        check_id(record_id, "record id")
        generation = self.records_generation()
        hit = self._records.get(record_id)
        if hit is not None and hit[0] == generation:
            return hit[1]
        async with self.db.read() as conn:
            row = (await conn.execute(select(R).where(R.c.id == record_id))).first()
        if row is None:
            raise NotFound(f"no cell record {record_id}", record=record_id)
        view = RecordView(row.id, row.state, row.previous_state, row.backend, parse_cell(row.template))
        if len(self._records) >= CACHE_LIMIT:
            self._records.clear()
        self._records[record_id] = (generation, view)
        return view

    async def organ(self, organ_id: str) -> OrganView:
        """The organ (400 malformed id, 404 unknown)."""
        check_id(organ_id, "organ id")
        row = await self.organ_row(organ_id)
        hit = self._organs.get(organ_id)
        if hit is not None and hit[0] is row:
            return hit[1]
        view = OrganView(row.id, row.state, row.template_id, parse_organ(row.template),
                         {c["id"]: c.get("record_id") for c in row.cells})
        if len(self._organs) >= CACHE_LIMIT:
            self._organs.clear()
        self._organs[organ_id] = (row, view)
        return view

    async def _families(self, name: str) -> tuple[set[str], set[str]]:
        """(exact template ids, families) a name stands for: a template id, `organ.<family>`, a family or an
        alias from the catalog's organ templates."""
        folded = _fold(name)
        if family_of(folded):
            return {folded}, set()
        if folded.startswith("organ."):
            return set(), {folded.removeprefix("organ.")}
        families = {folded}
        for template_id, body in (await self.catalog.latest_view(ORGAN)).items():
            words = {_fold(w) for ws in aliases(body.get("metadata") or {}).values() for w in ws}
            family = family_of(template_id)
            if family and folded in words:
                families.add(family)
        return set(), families

    async def stable_organ(self, name: str) -> str:
        """The organ that serves runs by `name`: the stable organ of the newest major version of the family
        (or of the exact template), newest first; kept until an organ or a template is written, so runs by name
        read no storage. The caller always gets this organ's answer; a share of its
        runs is shadowed to the family's canary afterwards (neira/shadow.py, through `RunService.listeners`)."""
        key, writes = _fold(name), self._writes
        if (hit := self._named.get(key)) is not None:
            return hit
        exact, families = await self._families(name)
        conds = [O.c.template_id.in_(sorted(exact))] if exact else []
        conds += [O.c.template_id.like(f"organ.{_escape(f)}.v%", escape="\\") for f in families]
        async with self.db.read() as conn:
            rows = list(await conn.execute(select(O.c.id, O.c.template_id, O.c.state, O.c.created_at).where(or_(*conds))))
        rows = [r for r in rows if r.template_id in exact or family_of(r.template_id) in families]
        if not rows:
            raise NotFound(f"no organ is named {name!r}", organ=name)
        stable = [r for r in rows if r.state == OrganState.STABLE.value]
        if not stable:
            live = [r for r in rows if r.state != OrganState.FAILED.value]
            newest = ({"newest": (n := max(live, key=lambda r: r.created_at)).id, "newest_state": n.state} if live
                      else {"newest": None})  # every build of it failed
            raise NotRunnable(f"no organ named {name!r} is stable yet", organ=name, **newest)
        best = max(stable, key=lambda r: (_major(r.template_id), r.created_at))
        if writes == self._writes:  # nothing was written while it was read
            if len(self._named) >= CACHE_LIMIT:
                self._named.clear()
            self._named[key] = best.id
        return best.id

    async def fallback(self, record: RecordView, blocked: Callable[[str], str | None]) -> RecordView | None:
        """The record that serves in place of a quarantined one: another stable record of the same template,
        else its most recently deprecated one (the previous stable version), if it is not blocked itself."""
        async with self.db.read() as conn:
            ids = list((await conn.execute(
                select(R.c.id).where(R.c.template_id == record.template.id, R.c.id != record.id,
                                     R.c.state.in_(["stable", "deprecated"]))
                .order_by(case((R.c.state == "stable", 0), else_=1), R.c.updated_at.desc()))).scalars())
        for other in ids:
            if not blocked(other):
                return await self.record(other)
        return None

    async def canaries(self, kind: str, template_id: str) -> list[tuple[str, str]]:
        """(id, state) of what is in canary or experimental beside a stable version: the records of the same
        cell template (`kind` cell), or the organs of the same family (`kind` organ)."""
        stages = [OrganState.CANARY.value, OrganState.EXPERIMENTAL.value]
        async with self.db.read() as conn:
            if kind == "cell":
                rows = await conn.execute(select(R.c.id, R.c.state).where(R.c.template_id == template_id, R.c.state.in_(stages)))
                return [(r.id, r.state) for r in rows]
            family = family_of(template_id)
            if family is None:
                return []
            rows = await conn.execute(select(O.c.id, O.c.state, O.c.template_id).where(
                O.c.state.in_(stages), O.c.template_id.like(f"organ.{_escape(family)}.v%", escape="\\")))
            return [(r.id, r.state) for r in rows if family_of(r.template_id) == family]
