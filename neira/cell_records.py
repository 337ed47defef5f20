"""Cell records in storage: the wire form, inserts, and the one way a record changes state — a move judged
by `lifecycle.advance`, written with its history row, audited, published as `cell.transition`, and
reflected in the active gauge after the commit.

`RecordCache` keeps the selector's view of recently used templates' records in memory, updated from every
committed write here (this module holds all writes of `cell_records`), so a dry-run reads no storage."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import msgspec
from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neira.audit import Audit
from neira.catalog import check_id
from neira.ids import new_id
from neira.storage.pages import after_id, by_number
from neira.errors import InvalidRequest, NotFound
from neira.events import EventBus
from neira.lifecycle import CellEvent, CellState, advance
from neira.metrics import Metrics
from neira.policy import Decision
from neira.selector import LIVE_STATES, Candidate, candidate
from neira.storage import tables
from neira.storage.db import Database, Tx
from neira.structs import Answer
from neira.templates import CellTemplate, template_dict

R = tables.cell_records
H = tables.record_history


class HistoryEntry(Answer):
    """One move of a record."""

    from_: str | None = msgspec.field(name="from")
    to: str
    at: float
    actor: str
    reason: str | None


class CellRecord(Answer):
    """A cell record as the factory answers it (`history`, oldest first, on `GET /factory/cells/{id}` only)."""

    id: str
    state: str
    template_id: str
    version: str
    backend: str
    hitl: bool
    kind: str
    previous_state: str | None
    digest: str
    template: dict[str, Any]
    created_at: float
    updated_at: float
    history: list[HistoryEntry] | msgspec.UnsetType = msgspec.UNSET


class RecordMoved(Answer):
    """A record's move: `{id, state}`; a rollback also says which record is `restored` (stable again), if any."""

    id: str
    state: str
    restored: str | None | msgspec.UnsetType = msgspec.UNSET


def record_view(row: Any) -> CellRecord:
    """The wire form of a cell record."""
    return CellRecord(id=row.id, state=row.state, template_id=row.template_id, version=row.version, backend=row.backend,
                      hitl=bool(row.hitl), kind=candidate(row).kind, previous_state=row.previous_state, digest=row.digest,
                      template=row.template, created_at=row.created_at, updated_at=row.updated_at)


def lifecycle_decision(event: CellEvent, before: str, after: str) -> Decision:
    """The lifecycle table's verdict on a move, as a decision with an id for the audit trail."""
    return Decision(
        decision_id=new_id("dec"), rule=f"lifecycle.{event.value}", action="allow",
        reason=f"{before} → {after} is in the transition table",
    )


class RecordCache:
    """template id → {record id → Candidate} for the `limit` most recently used templates, plus the set of
    every template id that has a record (so a dry-run of a template nobody created reads nothing). Filled
    from storage on a miss and updated by every committed record write, never before the commit; a load that
    raced a commit is used once and not kept. Assumes this process is the only writer."""

    def __init__(self, db: Database, limit: int = 4096) -> None:
        self.db, self.limit = db, limit
        self._by_template: OrderedDict[str, dict[str, Candidate]] = OrderedDict()
        self._with_records: set[str] | None = None
        self.generation = 0  # committed record writes so far
        self.follow(db.feed)

    def follow(self, feed: Any) -> None:
        """Keep in step with committed writes of `cell_records` (the change feed)."""
        feed.subscribe("cell_records", self.changed)

    def changed(self, changes: list[Any]) -> None:
        """Records were written: take the new values; a change without one drops everything (reloaded lazily)."""
        for change in changes:
            if change.value is None:
                self.generation += 1
                self._by_template.clear()
                self._with_records = None
                continue
            self.committed(change.value)

    def committed(self, c: Candidate) -> None:
        """A write of record `c` has committed."""
        self.generation += 1
        if self._with_records is not None:
            self._with_records.add(c.template_id)
        found = self._by_template.get(c.template_id)
        if found is not None:
            found[c.id] = c

    async def of_templates(self, template_ids: Iterable[str]) -> dict[str, list[Candidate]]:
        """template id → its records (templates without records are left out)."""
        with_records = self._with_records if self._with_records is not None else await self._load_ids()
        out: dict[str, list[Candidate]] = {}
        missing = []
        for tid in template_ids:
            if tid not in with_records:
                continue
            found = self._by_template.get(tid)
            if found is None:
                missing.append(tid)
                continue
            self._by_template.move_to_end(tid)
            out[tid] = list(found.values())
        if missing:
            for tid, found in (await self._load(missing)).items():
                if found:
                    out[tid] = list(found.values())
        return out

    async def _load_ids(self) -> set[str]:
        generation = self.generation
        async with self.db.read() as conn:
            ids = set((await conn.execute(select(R.c.template_id).distinct())).scalars())
        if generation == self.generation:
            self._with_records = ids
        return ids

    async def _load(self, template_ids: list[str]) -> dict[str, dict[str, Candidate]]:
        generation = self.generation
        loaded: dict[str, dict[str, Candidate]] = {tid: {} for tid in template_ids}
        async with self.db.read() as conn:
            for row in await conn.execute(select(R).where(R.c.template_id.in_(template_ids))):
                loaded[row.template_id][row.id] = candidate(row)
        if generation == self.generation:
            self._by_template.update(loaded)
            while len(self._by_template) > self.limit:
                self._by_template.popitem(last=False)
        return loaded


class _Row:
    """Attribute access over a values dict, so a fresh insert renders like a fetched row."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


class Records:
    """Reads and writes of `cell_records` and `record_history`; every write inside the caller's transaction."""

    def __init__(self, events: EventBus, audit: Audit, metrics: Metrics, cache: RecordCache) -> None:
        self.events, self.audit, self.metrics, self.cache = events, audit, metrics, cache

    async def row(self, conn: AsyncConnection, id: str, lock: bool = False) -> Any:
        """The record row; 400 for a malformed id, 404 for an unknown one. `lock` (inside the write
        transaction that moves it): `FOR UPDATE`, so another replica's move of it waits for our commit."""
        check_id(id, "record id")
        stmt = select(R).where(R.c.id == id)
        found = (await conn.execute(stmt.with_for_update() if lock else stmt)).first()
        if found is None:
            raise NotFound(f"no cell record {id}", record=id)
        return found

    async def of_template(self, conn: AsyncConnection, template_id: str) -> list[Any]:
        """Every record of a template (indexed)."""
        return list(await conn.execute(select(R).where(R.c.template_id == template_id)))

    async def identity(self, conn: AsyncConnection, template_id: str, version: str, backend: str) -> Any | None:
        """The record of exactly this template version on this backend, if any (unique)."""
        return (await conn.execute(select(R).where(
            R.c.template_id == template_id, R.c.version == version, R.c.backend == backend))).first()

    async def list(self, conn: AsyncConnection, state: str | None = None, after: str | None = None,
                   limit: int | None = None) -> list[CellRecord]:
        """Records, oldest first (by id number: the order they were made in); `state` filters (validated);
        `after` and `limit` give a page: at most `limit` records after the record id `after`."""
        query = select(R).order_by(*by_number(R.c.id)).limit(limit)
        if after is not None:
            query = query.where(after_id(R.c.id, after))
        if state is not None:
            if state not in {s.value for s in CellState}:
                raise InvalidRequest(f"state must be one of {', '.join(s.value for s in CellState)}")
            query = query.where(R.c.state == state)
        return [record_view(r) for r in await conn.execute(query)]

    async def history(self, conn: AsyncConnection, id: str) -> list[HistoryEntry]:
        """`[{from, to, at, actor, reason}]`, oldest first."""
        rows = await conn.execute(select(H).where(H.c.record_id == id).order_by(H.c.seq))
        return [HistoryEntry(from_=r.from_state, to=r.to_state, at=r.at, actor=r.actor, reason=r.reason) for r in rows]

    async def insert(self, tx: Tx, t: CellTemplate, digest: str, backend: str, hitl: bool, actor: str,
                     reason: str | None, decision_ids: list[str]) -> CellRecord:
        """A new draft record `cell-<n>` (ids from a counter, never reused)."""
        record_id = f"cell-{await tx.next_counter('cell')}"
        now = time.time()
        values = {
            "id": record_id, "template_id": t.id, "version": t.version, "backend": backend,
            "state": CellState.DRAFT.value, "previous_state": None, "hitl": hitl,
            "template": template_dict(t), "digest": digest, "created_at": now, "updated_at": now,
        }
        await tx.conn.execute(R.insert().values(**values))
        row = _Row(values)
        await self._log(tx, row, None, CellState.DRAFT.value, actor, "create", reason, decision_ids, now)
        tx.changed("cell_records", record_id, candidate(row))
        tx.after_commit(lambda: self.metrics.factory_cells_created.labels(backend).inc())
        return record_view(row)

    async def move(self, tx: Tx, row: Any, event: CellEvent, actor: str, reason: str | None,
                   decisions: Iterable[Decision] = (), decision_ids: Iterable[str] = ()) -> CellState:
        """Apply `event` to the record (409 invalid_transition if the table says no) and log it. `decision_ids`:
        decisions taken earlier (a plan's), audited with this move."""
        new = advance(row.state, event, previous=row.previous_state)
        ids = [*decision_ids, *(d.decision_id for d in decisions), lifecycle_decision(event, row.state, new.value).decision_id]
        now = time.time()
        previous = row.state if new is CellState.HEALING else None
        await tx.conn.execute(update(R).where(R.c.id == row.id).values(state=new.value, previous_state=previous, updated_at=now))
        moved = msgspec.structs.replace(candidate(row), state=new.value, previous_state=previous)
        tx.changed("cell_records", row.id, moved)
        await self._log(tx, row, row.state, new.value, actor, event.value, reason, ids, now)
        return new

    async def _log(self, tx: Tx, row: Any, before: str | None, after: str, actor: str, action: str,
                   reason: str | None, decision_ids: list[str], at: float) -> None:
        await tx.conn.execute(H.insert().values(
            record_id=row.id, from_state=before, to_state=after, at=at, actor=actor, reason=reason))
        await self.audit.record(tx, actor, f"cell.{action}", f"cell:{row.id}", before, after, reason, decision_ids)
        await self.events.emit(tx, "cell.transition", f"cell:{row.id}", {
            "id": row.id, "template_id": row.template_id, "version": row.version, "from": before, "to": after,
            "action": action, "actor": actor, "reason": reason,
        })
        delta = (after in LIVE_STATES) - (before in LIVE_STATES if before else False)
        if delta:
            tx.after_commit(lambda: self.metrics.factory_cells_active.inc(delta))

    async def other_stable(self, conn: AsyncConnection, row: Any) -> str | None:
        """The id of another stable record of the same template, if any."""
        found = (await conn.execute(select(R.c.id).where(
            R.c.template_id == row.template_id, R.c.state == CellState.STABLE.value, R.c.id != row.id).limit(1))).first()
        return found.id if found else None

    async def deprecate_others(self, tx: Tx, row: Any, actor: str) -> list[str]:
        """`row` became stable: every other stable record of its template becomes deprecated."""
        others = list(await tx.conn.execute(select(R).where(
            R.c.template_id == row.template_id, R.c.state == CellState.STABLE.value, R.c.id != row.id)))
        for other in others:
            await self.move(tx, other, CellEvent.DEPRECATE, actor, f"{row.id} ({row.version}) became stable")
        return [o.id for o in others]

    async def restore(self, tx: Tx, row: Any, actor: str) -> str | None:
        """After `row` was rolled back: the stable record of its template, or the most recently deprecated one
        made stable again. One query on the indexed template id."""
        found = (await tx.conn.execute(
            select(R).where(R.c.template_id == row.template_id, R.c.id != row.id,
                            R.c.state.in_([CellState.STABLE.value, CellState.DEPRECATED.value]))
            .order_by(case((R.c.state == CellState.STABLE.value, 0), else_=1), R.c.updated_at.desc(), R.c.created_at.desc())
            .limit(1)
        )).first()
        if found is None:
            return None
        if found.state == CellState.DEPRECATED:
            await self.move(tx, found, CellEvent.RESTORE, actor, f"{row.id} was rolled back")
        return found.id
