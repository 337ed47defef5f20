"""SQL for the organ builder: rows in, rows out, and the batched statements the scheduler needs."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import bindparam, case, delete, exists, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from neira.catalog import check_lookup_id
from neira.errors import NotFound
from neira.lifecycle import BUILDING_ORGAN_STATES, OrganState
from neira.storage import tables
from neira.storage.bulk import fast_path, insert_tuples, json_encoder
from neira.storage.db import Database, Tx
from neira.storage.pages import after_id, by_number

ORGANS = tables.organs
BUILDING_STATES = tuple(s.value for s in BUILDING_ORGAN_STATES)

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
    for m in moves:
        tx.changed("organs", m[0])
    if not fast_path(tx):
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
            text = memo[id(times)] = json_encoder.encode(times).decode()
        params.append((state, int(auto), deadline, text, finished, at, organ_id))
    await tx.conn.exec_driver_sql(
        'UPDATE organs SET "state" = ?, "auto" = ?, "deadline" = ?, "stage_times" = ?, "build_finished_at" = ?, '
        '"updated_at" = ? WHERE "id" = ?', params)


CLAIM_CHUNK = 900  # organ ids per claiming SELECT on PostgreSQL (well under its limit on bound parameters)
Claimed = tuple[str, float | None, bool]  # a locked row's state, deadline and whether a human holds it
_BUILDING = frozenset(BUILDING_STATES)


def _held() -> Any:
    """Whether a human holds the organ (a `holds` row): a correlated EXISTS, so no outer join stops FOR UPDATE."""
    h = tables.holds.c
    return exists().where(h.subject == literal("organ:") + ORGANS.c.id)


async def claim(tx: Tx, organ_ids: list[str]) -> dict[str, Claimed]:
    """Lock, for this transaction, the rows of those organs that no other transaction holds, and answer the
    (state, deadline, held) of each one that still progresses by itself (auto on, in a building state).

    On PostgreSQL this is `SELECT … FOR UPDATE SKIP LOCKED`: a row another replica is moving right now is
    left out rather than waited for, and once this transaction has it no one else can move it before the
    commit. One statement per CLAIM_CHUNK ids, never one per organ; rows are found by primary key only (the
    rest is checked here), then one read of the holds. The scheduler claims only on PostgreSQL: SQLite has one
    writer (this process, under the writer lock), whose flights are what is stored."""
    o = ORGANS.c
    found: list[Any] = []
    for i in range(0, len(organ_ids), CLAIM_CHUNK):
        found += await tx.conn.execute(select(o.id, o.state, o.auto, o.deadline).where(o.id.in_(organ_ids[i:i + CLAIM_CHUNK]))
                                       .with_for_update(skip_locked=True))
    h = tables.holds.c
    held = set((await tx.conn.execute(select(h.subject).where(h.subject.like("organ:%")))).scalars()) if found else set()
    return {organ_id: (state, deadline, f"organ:{organ_id}" in held)
            for organ_id, state, auto, deadline in found if auto and state in _BUILDING}


async def overdue(tx: Tx, before: float, limit: int, skip_states: tuple[str, ...] = ()) -> list[Any]:
    """Lock and answer up to `limit` rows of builds that progress by themselves and whose stage should have
    moved before `before` (their owner died, or is late), no human holding them, oldest deadline first;
    rows another transaction holds are skipped (`FOR UPDATE SKIP LOCKED` on PostgreSQL). `skip_states`:
    stages something else moves (graduation, with canary analysis on). The `state` index keeps it to the
    organs still building."""
    o = ORGANS.c
    states = [s for s in BUILDING_STATES if s not in skip_states]
    q = (select(o.id, o.state, o.deadline, o.stage_times, o.build_started_at)
         .where(o.auto.is_(True), o.state.in_(states), o.deadline < before, ~_held())
         .order_by(o.deadline).limit(limit).with_for_update(skip_locked=True, of=ORGANS))
    return list(await tx.conn.execute(q))


ORGAN_COLS = ("id", "template_id", "template", "state", "auto", "deadline", "attempts", "cells", "stage_times",
              "build_started_at", "build_finished_at", "created_at", "updated_at")


async def insert_organs(tx: Tx, rows: list[tuple[Any, ...]]) -> None:
    """Insert new organ rows (tuples in ORGAN_COLS order) with one executemany."""
    for row in rows:
        tx.changed("organs", row[0], row[1])  # a new organ: its template id (the Command Cell counts built versions)
    await insert_tuples(tx, ORGANS, ORGAN_COLS, rows)


ORGAN_ID_RE = re.compile(r"organ-[1-9][0-9]{0,17}")


def check_organ_id(organ_id: str) -> None:
    """400 for an id no organ could have (`/`, `..`, control characters, over 128 characters); 404 for any
    other that is not an organ id (`organ-<n>`): `organ-missing` and `organ-01` name nothing."""
    if not ORGAN_ID_RE.fullmatch(organ_id):
        check_lookup_id(organ_id, "organ id")
        raise NotFound(f"no organ {organ_id}", organ=organ_id)


async def get_row(conn: AsyncConnection, organ_id: str, lock: bool = False) -> Any:
    """The organ's row; 400 for a malformed id, 404 for an unknown one. `lock` (inside a write transaction
    that will move it): `FOR UPDATE`, so a replica moving the same organ waits for our commit and then reads
    what we wrote (SQLite has one writer and renders nothing)."""
    check_organ_id(organ_id)
    stmt = select(ORGANS).where(ORGANS.c.id == organ_id)
    row = (await conn.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None:
        raise NotFound(f"no organ {organ_id}", organ=organ_id)
    return row


async def state_and_seq(conn: AsyncConnection, organ_id: str) -> tuple[str, int]:
    """The organ's state and the seq of its latest event (0 if none), read by one statement: a single
    SELECT sees one snapshot, whereas two (SQLite runs each outside a transaction of its own) could pair a
    state with the seq of the move after it. 400 for a malformed id, 404 for an unknown one."""
    check_organ_id(organ_id)
    e = tables.events.c
    seq = select(func.max(e.seq)).where(e.subject == f"organ:{organ_id}").scalar_subquery()
    row = (await conn.execute(select(ORGANS.c.state, seq).where(ORGANS.c.id == organ_id))).first()
    if row is None:
        raise NotFound(f"no organ {organ_id}", organ=organ_id)
    return row[0], row[1] or 0


async def cell_states(conn: AsyncConnection, record_ids: list[str]) -> dict[str, str]:
    """record id → state of the cell records an organ uses."""
    if not record_ids:
        return {}
    r = tables.cell_records.c
    rows = await conn.execute(select(r.id, r.state).where(r.id.in_(record_ids)))
    return {row.id: row.state for row in rows}


async def newest_of_template(conn: AsyncConnection, template_id: str) -> str | None:
    """The id of the newest organ built from a template, or None (indexed by template id). Ties in
    `created_at` (one group commit) go to the larger `organ-<n>`: longer id first, then the higher one."""
    o = ORGANS.c
    query = (select(o.id).where(o.template_id == template_id)
             .order_by(o.created_at.desc(), func.length(o.id).desc(), o.id.desc()).limit(1))
    return (await conn.execute(query)).scalar()


async def built_templates(conn: AsyncConnection) -> list[str]:
    """The template ids organs were built from (each once)."""
    return list((await conn.execute(select(ORGANS.c.template_id).distinct())).scalars())


async def list_rows(conn: AsyncConnection, after: str | None = None, limit: int | None = None) -> list[Any]:
    """Organs' list entries, oldest first (by id number: the order they were made in); at most `limit` after
    the organ id `after`."""
    o = ORGANS.c
    query = select(o.id, o.state, o.template_id, o.updated_at).order_by(*by_number(o.id)).limit(limit)
    if after is not None:
        query = query.where(after_id(o.id, after))
    return list(await conn.execute(query))


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


async def restart_build(tx: Tx, organ_id: str, attempts: int, cells: list[dict[str, Any]], deadline: float, at: float) -> None:
    """Put an organ back to draft for a fresh build (rebuild)."""
    tx.changed("organs", organ_id)
    await tx.conn.execute(update(ORGANS).where(ORGANS.c.id == organ_id).values(
        state=OrganState.DRAFT.value, auto=True, deadline=deadline, attempts=attempts, cells=cells,
        stage_times={OrganState.DRAFT.value: at}, build_started_at=at, build_finished_at=None, updated_at=at,
    ))


HOLD_KEY = "organs_hold"  # settings row: {"since": t} while the organs_builder gate holds every build


async def read_hold(conn: AsyncConnection) -> float | None:
    """When the closed gate started holding the builds, or None when they are not held."""
    value = (await conn.execute(select(tables.settings.c.value).where(tables.settings.c.key == HOLD_KEY))).scalar()
    return float(value["since"]) if value else None


async def write_hold(tx: Tx, db: Database, since: float) -> None:
    """Record that every build is held from `since` on."""
    await tx.conn.execute(db.upsert(tables.settings, {"key": HOLD_KEY, "value": {"since": since}}, ["key"]))


async def release_hold(tx: Tx, since: float, shift: float) -> bool:
    """End the hold: every automatic build's deadline moves on by the time it was held, so each keeps the
    delay it had left when the hold began (a deadline already past then is due at once). The hold row goes
    first: when it is gone already (another replica ended the hold; on PostgreSQL this waits for its commit)
    the deadlines moved then and stay. Answers whether this transaction ended it."""
    o = ORGANS.c
    gone = await tx.conn.execute(delete(tables.settings).where(tables.settings.c.key == HOLD_KEY))
    if not gone.rowcount:
        return False
    held_from = case((o.deadline < since, since), else_=o.deadline)
    await tx.conn.execute(update(ORGANS).where(o.auto.is_(True), o.state.in_(BUILDING_STATES), o.deadline.is_not(None))
                          .values(deadline=held_from + shift))
    return True
