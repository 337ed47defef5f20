"""SQL for the organ builder: rows in, rows out, and the batched statements the scheduler needs."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import JSON, Boolean, Float, String, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neira.audit import Audit
from neira.errors import NotFound
from neira.events import Event, EventBus
from neira.lifecycle import OrganState
from neira.storage import tables
from neira.storage.db import Tx

ORGANS = tables.organs
BUILDING_STATES = (OrganState.DRAFT.value, OrganState.CANARY.value, OrganState.EXPERIMENTAL.value)

# One UPDATE for many organs (executemany): every move of the scheduler in a batch goes through it.
_MOVE = (
    update(ORGANS)
    .where(ORGANS.c.id == bindparam("b_id", type_=String))
    .values(
        state=bindparam("b_state", type_=String),
        auto=bindparam("b_auto", type_=Boolean),
        deadline=bindparam("b_deadline", type_=Float),
        stage_times=bindparam("b_times", type_=JSON),
        build_finished_at=bindparam("b_finished", type_=Float),
        updated_at=bindparam("b_at", type_=Float),
    )
)
_EVENTS = insert(tables.events).returning(tables.events.c.seq, sort_by_parameter_order=True)


def move(organ_id: str, state: str, auto: bool, deadline: float | None, times: dict[str, float],
         finished: float | None, at: float) -> dict[str, Any]:
    """Parameters of one row of the batched move statement."""
    return {"b_id": organ_id, "b_state": state, "b_auto": auto, "b_deadline": deadline, "b_times": times,
            "b_finished": finished, "b_at": at}


async def apply_moves(tx: Tx, moves: list[dict[str, Any]]) -> None:
    """Write many organ moves with one executemany."""
    if moves:
        await tx.conn.execute(_MOVE, moves)


async def insert_organs(tx: Tx, rows: list[dict[str, Any]]) -> None:
    """Insert new organ rows with one executemany."""
    if rows:
        await tx.conn.execute(insert(ORGANS), rows)


async def emit_many(bus: EventBus, tx: Tx, items: list[tuple[str, str, dict[str, Any]]]) -> list[Event]:
    """Store many events in `tx` with one statement; subscribers get them, in order, after the commit.

    The batched twin of `EventBus.emit` (same table, same delivery); `emit` costs a round trip per event,
    which is what a batch of 10k stage moves cannot afford.
    """
    if not items:
        return []
    at = time.time()
    params = [{"at": at, "type": t, "subject": s, "data": d} for t, s, d in items]
    seqs = [r[0] for r in await tx.conn.execute(_EVENTS, params)]
    evs = [Event(seq=q, at=at, type=t, subject=s, data=d) for q, (t, s, d) in zip(seqs, items, strict=True)]
    deliver = bus._deliver  # noqa: SLF001 - same delivery path as emit(); see docs/requests/organs.md

    def fan_out() -> None:
        for ev in evs:
            deliver(ev)

    tx.after_commit(fan_out)
    return evs


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
    rows = [{"at": at, "before": None, "after": None, "reason": None, "decision_ids": [], **r} for r in records]
    await tx.conn.execute(insert(tables.audit), rows)
    counts: dict[str, int] = {}
    for r in records:
        counts[r["action"]] = counts.get(r["action"], 0) + 1

    def count() -> None:
        for action, n in counts.items():
            audit.metrics.audit_records.labels(action).inc(n)

    tx.after_commit(count)


_RESTART = (
    update(ORGANS)
    .where(ORGANS.c.id == bindparam("b_id", type_=String))
    .values(
        state=OrganState.DRAFT.value, auto=True,
        deadline=bindparam("b_deadline", type_=Float),
        attempts=bindparam("b_attempts"),
        cells=bindparam("b_cells", type_=JSON),
        stage_times=bindparam("b_times", type_=JSON),
        build_started_at=bindparam("b_at", type_=Float),
        build_finished_at=None,
        updated_at=bindparam("b_at", type_=Float),
    )
)


async def restart_build(tx: Tx, organ_id: str, attempts: int, cells: list[dict[str, Any]], deadline: float, at: float) -> None:
    """Put an organ back to draft for a fresh build (rebuild)."""
    await tx.conn.execute(_RESTART, {"b_id": organ_id, "b_deadline": deadline, "b_attempts": attempts,
                                     "b_cells": cells, "b_times": {OrganState.DRAFT.value: at}, "b_at": at})
