"""SQL for the organ builder: rows in, rows out, and the batched statements the scheduler needs."""

from __future__ import annotations

import time
from operator import itemgetter
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


def _driver_params(table: Table, cols: list[str], rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows as driver parameter tuples, written as the SQLAlchemy types would write them: JSON as text
    (one encode per distinct object, so a template shared by a whole batch is encoded once), booleans as 0/1."""
    get = itemgetter(*cols)
    params = [list(get(r)) if len(cols) > 1 else [get(r)] for r in rows]
    for i, c in enumerate(cols):
        kind = table.c[c].type
        if isinstance(kind, JSON):
            memo: dict[int, str] = {}
            for p in params:
                v = p[i]
                text = memo.get(id(v))
                if text is None:
                    text = memo[id(v)] = _json.encode(v).decode()
                p[i] = text
        elif isinstance(kind, Boolean):
            for p in params:
                p[i] = None if p[i] is None else int(bool(p[i]))
    return [tuple(p) for p in params]


async def insert_rows(tx: Tx, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows (all with the same keys) with one executemany.

    On SQLite the rows go straight to the driver: SQLAlchemy's per-row parameter processing (and the
    stdlib json it calls) costs more than the insert itself at 10k rows. Other dialects take the Core path.
    """
    if not rows:
        return
    if tx.conn.dialect.name not in DRIVER_FAST_PATH:
        await tx.conn.execute(insert(table), rows)
        return
    cols = list(rows[0])
    names = ", ".join(f'"{c}"' for c in cols)
    sql = f'INSERT INTO {table.name} ({names}) VALUES ({", ".join("?" * len(cols))})'
    await tx.conn.exec_driver_sql(sql, _driver_params(table, cols, rows))


async def update_rows(tx: Tx, table: Table, key: str, rows: list[dict[str, Any]]) -> None:
    """`UPDATE table SET ... WHERE key = ...` for many rows (all with the same keys) with one executemany."""
    if not rows:
        return
    cols = [c for c in rows[0] if c != key]
    if tx.conn.dialect.name not in DRIVER_FAST_PATH:
        stmt = update(table).where(table.c[key] == bindparam(f"k_{key}", type_=table.c[key].type)).values(
            {c: bindparam(f"k_{c}", type_=table.c[c].type) for c in cols})
        await tx.conn.execute(stmt, [{f"k_{k}": v for k, v in r.items()} for r in rows])
        return
    sets = ", ".join(f'"{c}" = ?' for c in cols)
    sql = f'UPDATE {table.name} SET {sets} WHERE "{key}" = ?'
    await tx.conn.exec_driver_sql(sql, _driver_params(table, [*cols, key], rows))


def move(organ_id: str, state: str, auto: bool, deadline: float | None, times: dict[str, float],
         finished: float | None, at: float) -> dict[str, Any]:
    """One row of the batched move: an organ's new state, timer and stage times."""
    return {"id": organ_id, "state": state, "auto": auto, "deadline": deadline, "stage_times": times,
            "build_finished_at": finished, "updated_at": at}


async def apply_moves(tx: Tx, moves: list[dict[str, Any]]) -> None:
    """Write many organ moves with one executemany."""
    await update_rows(tx, ORGANS, "id", moves)


async def insert_organs(tx: Tx, rows: list[dict[str, Any]]) -> None:
    """Insert new organ rows with one executemany."""
    await insert_rows(tx, ORGANS, rows)


async def emit_many(bus: EventBus, tx: Tx, items: list[tuple[str, str, dict[str, Any]]]) -> list[Event]:
    """Store many events in `tx` with one statement; subscribers get them, in order, after the commit.

    The batched twin of `EventBus.emit` (same table, same delivery). Seqs are assigned here, after the
    current maximum: the transaction holds the database's single writer lock, so nobody else can take them.
    """
    if not items:
        return []
    at = time.time()
    e = tables.events.c
    top = (await tx.conn.execute(select(func.max(e.seq)))).scalar() or 0
    evs = [Event(seq=top + i, at=at, type=t, subject=s, data=d) for i, (t, s, d) in enumerate(items, 1)]
    await insert_rows(tx, tables.events, [{"seq": ev.seq, "at": at, "type": ev.type, "subject": ev.subject, "data": ev.data} for ev in evs])
    def fan_out() -> None:
        fan_out_events(bus, evs)

    tx.after_commit(fan_out)
    return evs


def fan_out_events(bus: EventBus, evs: list[Event]) -> None:
    """Deliver committed events as `EventBus._deliver` does (subscribers of `*` and of the subject, the
    events counter), counting once per type instead of once per event."""
    subs = bus._subs  # noqa: SLF001 - batched delivery; see docs/requests/organs.md (EventBus.emit_many)
    counts: dict[str, int] = {}
    for ev in evs:
        counts[ev.type] = counts.get(ev.type, 0) + 1
        for topic in ("*", ev.subject):
            for sub in subs.get(topic, ()):
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


async def audit_many(audit: Audit, tx: Tx, records: list[dict[str, Any]]) -> None:
    """Append many audit records with one statement (the batched twin of `Audit.record`)."""
    if not records:
        return
    at = time.time()
    await insert_rows(tx, tables.audit, [
        {"at": at, "actor": r["actor"], "action": r["action"], "subject": r["subject"], "before": r.get("before"),
         "after": r.get("after"), "reason": r.get("reason"), "decision_ids": r.get("decision_ids", [])}
        for r in records
    ])
    counts: dict[str, int] = {}
    for r in records:
        counts[r["action"]] = counts.get(r["action"], 0) + 1

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
