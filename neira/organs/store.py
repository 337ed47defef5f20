"""SQL for the organ builder: rows in, rows out, and the batched statements the scheduler needs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import JSON, Boolean, Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neira.audit import Audit
from neira.errors import NotFound
from neira.events import Event, EventBus
from neira.lifecycle import OrganState
from neira.storage import tables
from neira.storage.db import Tx

ORGANS = tables.organs
BUILDING_STATES = (OrganState.DRAFT.value, OrganState.CANARY.value, OrganState.EXPERIMENTAL.value)

_json = msgspec.json.Encoder()
DRIVER_FAST_PATH = {"sqlite"}  # dialects whose batched writes skip SQLAlchemy's per-row processing


def _driver_params(table: Table, cols: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows as the SQLAlchemy types would write them: JSON as text (one encode per distinct object, so a
    template shared by a whole batch is encoded once), booleans as 0/1."""
    convert = [(i, isinstance(table.c[c].type, JSON), {}) for i, c in enumerate(cols)
               if isinstance(table.c[c].type, JSON | Boolean)]
    out = []
    for row in rows:
        p = list(row)
        for i, is_json, memo in convert:
            v = p[i]
            if is_json:
                text = memo.get(id(v))
                if text is None:
                    text = memo[id(v)] = _json.encode(v).decode()
                p[i] = text
            elif v is not None:
                p[i] = int(bool(v))
        out.append(tuple(p))
    return out


async def insert_tuples(tx: Tx, table: Table, cols: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Insert many rows, given as tuples in `cols` order, with one executemany.

    On SQLite the rows go straight to the driver: SQLAlchemy's per-row parameter processing (and the
    stdlib json it calls) costs more than the insert itself at 10k rows. Other dialects take the Core path.
    """
    if not rows:
        return
    if tx.conn.dialect.name not in DRIVER_FAST_PATH:
        await tx.conn.execute(insert(table), [dict(zip(cols, r, strict=True)) for r in rows])
        return
    names = ", ".join(f'"{c}"' for c in cols)
    sql = f'INSERT INTO {table.name} ({names}) VALUES ({", ".join("?" * len(cols))})'
    await tx.conn.exec_driver_sql(sql, _driver_params(table, cols, rows))


Move = tuple[str, str, bool, float | None, dict[str, float], float | None, float]
_MOVE_COLS = ("id", "state", "auto", "deadline", "stage_times", "build_finished_at", "updated_at")


def move(organ_id: str, state: str, auto: bool, deadline: float | None, times: dict[str, float],
         finished: float | None, at: float) -> Move:
    """One row of the batched move: an organ's new state, timer and stage times."""
    return (organ_id, state, auto, deadline, times, finished, at)


async def apply_moves(tx: Tx, moves: list[Move]) -> None:
    """Write many organ moves with one executemany (stage times shared by several moves encoded once)."""
    if not moves:
        return
    if tx.conn.dialect.name not in DRIVER_FAST_PATH:
        o = ORGANS.c
        stmt = update(ORGANS).where(o.id == bindparam("m_id", type_=o.id.type)).values(
            {c: bindparam(f"m_{c}", type_=o[c].type) for c in _MOVE_COLS[1:]})
        await tx.conn.execute(stmt, [{f"m_{c}": v for c, v in zip(_MOVE_COLS, m, strict=True)} for m in moves])
        return
    memo: dict[int, str] = {}
    params = []
    for organ_id, state, auto, deadline, times, finished, at in moves:
        text = memo.get(id(times))
        if text is None:
            text = memo[id(times)] = _json.encode(times).decode()
        params.append((state, int(auto), deadline, text, finished, at, organ_id))
    await tx.conn.exec_driver_sql(
        'UPDATE organs SET "state" = ?, "auto" = ?, "deadline" = ?, "stage_times" = ?, "build_finished_at" = ?, '
        '"updated_at" = ? WHERE "id" = ?', params)


ORGAN_COLS = ("id", "template_id", "template", "state", "auto", "deadline", "attempts", "cells", "stage_times",
              "build_started_at", "build_finished_at", "created_at", "updated_at")


async def insert_organs(tx: Tx, rows: list[tuple[Any, ...]]) -> None:
    """Insert new organ rows (tuples in ORGAN_COLS order) with one executemany."""
    await insert_tuples(tx, ORGANS, ORGAN_COLS, rows)


async def emit_many(bus: EventBus, tx: Tx, items: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Store many events (type, subject, data) in `tx` with one statement; subscribers get them, in order,
    after the commit.

    The batched twin of `EventBus.emit` (same table, same delivery). On SQLite the seqs are assigned here,
    after the current maximum: the transaction holds the database's single writer lock, so nobody else can
    take them. Other dialects number them with their own sequence (RETURNING, in parameter order).
    """
    if not items:
        return
    at = time.time()
    if tx.conn.dialect.name in DRIVER_FAST_PATH:
        top = (await tx.conn.execute(select(func.max(tables.events.c.seq)))).scalar() or 0
        seqs = range(top + 1, top + 1 + len(items))
        encode = _json.encode
        await tx.conn.exec_driver_sql(
            'INSERT INTO events ("seq", "at", "type", "subject", "data") VALUES (?, ?, ?, ?, ?)',
            [(q, at, t, s, encode(d).decode()) for q, (t, s, d) in zip(seqs, items, strict=True)],
        )
    else:  # the database's own sequence numbers the events (in parameter order)
        stmt = insert(tables.events).returning(tables.events.c.seq, sort_by_parameter_order=True)
        result = await tx.conn.execute(stmt, [{"at": at, "type": t, "subject": s, "data": d} for t, s, d in items])
        seqs = list(result.scalars())
    tx.after_commit(lambda: fan_out_events(bus, seqs, at, items))


def fan_out_events(bus: EventBus, seqs: Sequence[int], at: float, items: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Deliver committed events as `EventBus._deliver` does (to subscribers of `*` and of the subject; the
    events counter), counting once per type, and building Event objects only for events someone awaits."""
    subs = bus._subs  # noqa: SLF001 - batched delivery; see docs/requests/organs.md (EventBus.emit_many)
    everyone = subs.get("*", ())
    counts: dict[str, int] = {}
    for seq, (type_, subject, data) in zip(seqs, items, strict=True):
        counts[type_] = counts.get(type_, 0) + 1
        direct = subs.get(subject, ())
        if everyone or direct:
            ev = Event(seq=seq, at=at, type=type_, subject=subject, data=data)
            for sub in (*everyone, *direct):
                sub.offer(ev)
    for type_, n in counts.items():
        bus.metrics.events.labels(type_).inc(n)


async def reserve_ids(tx: Tx, name: str, n: int) -> list[int]:
    """`n` consecutive values of counter `name`, never handed out again (like `Tx.next_counter`, n at once)."""
    if n == 1:
        return [await tx.next_counter(name)]
    c = tables.counters
    row = (await tx.conn.execute(select(c.c.value).where(c.c.name == name))).first()
    start = row[0] if row else 0
    if row is None:
        await tx.conn.execute(c.insert().values(name=name, value=start + n))
    else:
        await tx.conn.execute(update(c).where(c.c.name == name).values(value=start + n))
    return list(range(start + 1, start + n + 1))


async def get_row(conn: AsyncConnection, organ_id: str) -> Any:
    """The organ's row, or 404."""
    row = (await conn.execute(select(ORGANS).where(ORGANS.c.id == organ_id))).first()
    if row is None:
        raise NotFound(f"no organ {organ_id}")
    return row


async def last_seq(conn: AsyncConnection, organ_id: str) -> int:
    """The seq of the organ's latest event (0 if none): the `seq` of its current state."""
    e = tables.events.c
    return (await conn.execute(select(func.max(e.seq)).where(e.subject == f"organ:{organ_id}"))).scalar() or 0


async def cell_states(conn: AsyncConnection, record_ids: list[str]) -> dict[str, str]:
    """record id → state of the cell records an organ uses."""
    if not record_ids:
        return {}
    r = tables.cell_records.c
    rows = await conn.execute(select(r.id, r.state).where(r.id.in_(record_ids)))
    return {row.id: row.state for row in rows}


async def list_rows(conn: AsyncConnection) -> list[Any]:
    """Every organ's list entry, oldest first."""
    o = ORGANS.c
    rows = await conn.execute(select(o.id, o.state, o.template_id, o.updated_at, o.created_at))
    return sorted(rows, key=lambda r: (r.created_at, _num(r.id)))


async def in_flight(conn: AsyncConnection) -> list[Any]:
    """Rows of builds that progress by themselves: auto on and not yet stable or failed."""
    o = ORGANS.c
    q = select(o.id, o.state, o.deadline, o.stage_times, o.build_started_at).where(
        o.auto.is_(True), o.state.in_(BUILDING_STATES)
    )
    return list(await conn.execute(q))


async def count_building(conn: AsyncConnection) -> int:
    """How many organs are in a building state (automatic or paused by a manual move)."""
    o = ORGANS.c
    return (await conn.execute(select(func.count()).where(o.state.in_(BUILDING_STATES)))).scalar() or 0


def _num(organ_id: str) -> int:
    tail = organ_id.rpartition("-")[2]
    return int(tail) if tail.isdigit() else 0


AUDIT_COLS = ("at", "actor", "action", "subject", "before", "after", "reason", "decision_ids")


async def audit_many(audit: Audit, tx: Tx, records: list[tuple[str, str, str, Any, Any, str | None, list[str]]]) -> None:
    """Append many audit records (actor, action, subject, before, after, reason, decision ids) with one
    statement: the batched twin of `Audit.record`."""
    if not records:
        return
    at = time.time()
    await insert_tuples(tx, tables.audit, AUDIT_COLS, [(at, *r) for r in records])
    counts: dict[str, int] = {}
    for r in records:
        counts[r[1]] = counts.get(r[1], 0) + 1

    def count() -> None:
        for action, n in counts.items():
            audit.metrics.audit_records.labels(action).inc(n)

    tx.after_commit(count)


async def restart_build(tx: Tx, organ_id: str, attempts: int, cells: list[dict[str, Any]], deadline: float, at: float) -> None:
    """Put an organ back to draft for a fresh build (rebuild)."""
    await tx.conn.execute(update(ORGANS).where(ORGANS.c.id == organ_id).values(
        state=OrganState.DRAFT.value, auto=True, deadline=deadline, attempts=attempts, cells=cells,
        stage_times={OrganState.DRAFT.value: at}, build_started_at=at, build_finished_at=None, updated_at=at,
    ))
