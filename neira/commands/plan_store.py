"""Saved plans (table `plans`): a plan is kept with its base hash and session, so "apply" — by id or by
saying «применить» in the same session — carries out exactly what was shown. Survives restarts. The apply
marks its plan applied in its own transaction (`mark_applied`), so a plan is applied wholly once or not at all."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import msgspec
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from neira.errors import NotFound
from neira.ids import new_id
from neira.plan import Plan
from neira.storage import tables
from neira.storage.bulk import insert_tuples, json_encoder
from neira.storage.db import Database, Tx

log = logging.getLogger("neira.commands")
P = tables.plans
_COLUMNS = ("id", "session_id", "base", "body", "created_at")


def new_plan_id() -> str:
    """plan-<12 hex>: unguessable, short enough to type."""
    return new_id("plan")


FLUSH_S = 0.005  # how long a plan may wait to share its write with the plans said after it
FLUSH_AT = 256  # pending plans that start a write at once
PRUNE_EVERY_S = 600.0  # how often a write also drops the plans nobody applied within the TTL


def _gone(plan_id: str) -> str:
    return f"no plan {plan_id} (a plan nobody applied in time is dropped: say the command again)"


class SavedBody(msgspec.Struct):
    """What a saved plan's `body` holds: the plan, the words that made it, who said them."""

    plan: Plan
    text: str | None = None
    actor: str | None = None
    intent: str | None = None


class ToApply(msgspec.Struct):
    """A saved plan as the apply reads it inside its transaction."""

    body: SavedBody
    applied_at: float | None
    result: dict[str, Any] | None


_body = msgspec.json.Decoder(SavedBody)
_result = msgspec.json.Decoder(dict[str, Any])


class _Pending:
    """A plan said but not yet written: row-shaped, so readers need not care."""

    __slots__ = ("id", "session_id", "base", "body", "created_at", "applied_at", "result")

    def __init__(self, row: tuple[Any, ...]) -> None:
        self.id, self.session_id, self.base, self.body, self.created_at = row
        self.applied_at, self.result = None, None

    def row(self) -> tuple[Any, ...]:
        return (self.id, self.session_id, self.base, self.body, self.created_at)


class PlanStore:
    """Reads and writes saved plans through the core's Database.

    Saving is write-behind: a plan is visible to `load` at once and written within FLUSH_S together with the
    plans said meanwhile (a command's own write transaction was ~85% of its CPU). An apply writes the pending
    plans first, and a stop writes them all; a crash inside that window loses only plans nobody applied yet
    (applying one then answers 404, and saying the command again makes it anew). On a shared database
    (PostgreSQL, several replicas) a plan is written before its answer, since any replica may apply it.

    A plan nobody applied is dropped `ttl_s` after it was said (NEIRA_PLAN_TTL_S, a day by default): the first
    write after a start, and one every PRUNE_EVERY_S, also deletes those. Without it every command said would
    keep its 2 kB for ever."""

    def __init__(self, db: Database, ttl_s: int = 0) -> None:
        self.db, self.ttl_s = db, ttl_s
        self._pruned_at: float | None = None  # monotonic time of the last prune; None: not since start
        self._pending: dict[str, _Pending] = {}
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None

    async def save(self, plan_id: str, session_id: str | None, base: str, body: dict[str, Any]) -> None:
        """Keep a plan (its steps, facts and text) bound to the base it was made against."""
        self._pending[plan_id] = _Pending((plan_id, session_id, base, body, time.time()))
        if not self.db.is_sqlite:  # replicas: another one may be asked to apply it as soon as we answer
            await self.flush()  # (concurrent saves share the write: each waits on the one flush lock)
            return
        if len(self._pending) >= FLUSH_AT:
            self._start()
        elif self._timer is None and self._task is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_S, self._start)

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._background(), name="neira-plan-saves")

    async def _background(self) -> None:
        try:
            await self.flush()
        except Exception:  # a write must not take the service down; the plans stay pending for the next try
            log.exception("saving %d plans failed; trying again", len(self._pending))
        finally:
            self._task = None
            if self._pending and self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(FLUSH_S * 20, self._start)

    async def flush(self) -> None:
        """Write every pending plan now (one transaction; a plan whose id is taken is dropped and logged)."""
        async with self._lock:
            batch = list(self._pending.values())
            if not batch:
                return
            try:
                await self._write([p.row() for p in batch])
            except IntegrityError:
                for p in batch:  # one bad row (an id said twice) must not sink the others
                    try:
                        await self._write([p.row()])
                    except IntegrityError:
                        log.error("plan %s was not kept: its id is taken", p.id)
            for p in batch:
                if self._pending.get(p.id) is p:
                    del self._pending[p.id]

    async def _write(self, rows: list[tuple[Any, ...]]) -> None:
        now = time.monotonic()
        prune = bool(self.ttl_s) and (self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY_S)
        async with self.db.transaction(off_loop=True) as tx:
            # rows through bulk.insert_tuples: on SQLite straight to the driver, bodies encoded by msgspec
            await insert_tuples(tx, P, _COLUMNS, rows)
            if prune:
                await self._prune(tx, time.time() - self.ttl_s)
        if prune:  # committed: a write that rolled back prunes again next time
            self._pruned_at = now

    @staticmethod
    async def _prune(tx: Tx, before: float) -> None:
        """Drop the plans said before `before` that nobody applied (by `ix_plans_created_at`). An applied plan
        stays: a repeated apply answers with its result. Applying a dropped one answers 404."""
        drv = await tx.driver()
        if drv is not None:  # on the transaction's thread when it is off the loop: a first prune may drop many
            await drv.execute('DELETE FROM plans WHERE "created_at" < ? AND "applied_at" IS NULL', (before,))
        else:
            await tx.conn.execute(delete(P).where(P.c.created_at < before, P.c.applied_at.is_(None)))

    async def close(self) -> None:
        """Write the plans not yet written."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()

    async def load(self, plan_id: str) -> Any:
        """The stored row (id, session_id, base, body, created_at, applied_at, result); NotFound if unknown."""
        pending = self._pending.get(plan_id)
        if pending is not None:
            return pending
        async with self.db.read() as conn:
            return await self.load_in(conn, plan_id)

    @staticmethod
    async def load_in(conn: Any, plan_id: str) -> Any:
        """The stored row read on `conn` (inside the apply's transaction); NotFound if unknown."""
        row = (await conn.execute(select(P).where(P.c.id == plan_id))).first()
        if row is None:
            raise NotFound(f"no plan {plan_id}")
        return row

    async def last_of_session(self, session_id: str) -> Any | None:
        """The session's most recent plan, applied or not (None when the session has none)."""
        pending = [p for p in self._pending.values() if p.session_id == session_id]
        if pending:  # pending plans are newer than every written one
            return max(pending, key=lambda p: p.created_at)
        async with self.db.read() as conn:
            return (await conn.execute(
                select(P).where(P.c.session_id == session_id).order_by(P.c.created_at.desc()).limit(1))).first()

    @staticmethod
    async def load_to_apply(tx: Tx, plan_id: str) -> ToApply:
        """The saved plan, typed, read inside the apply's transaction; NotFound if unknown. On SQLite the row
        comes straight from the driver and its JSON is decoded by msgspec into the Structs in one pass."""
        drv = await tx.driver()
        if drv is None:
            # FOR UPDATE: an apply of the same plan on another replica waits for ours, then reads it applied
            row = (await tx.conn.execute(select(P.c.body, P.c.applied_at, P.c.result).where(P.c.id == plan_id)
                                         .with_for_update())).first()
            if row is None:
                raise NotFound(_gone(plan_id))
            return msgspec.convert({"body": row.body, "applied_at": row.applied_at, "result": row.result}, ToApply)
        got = await drv.execute_fetchall("SELECT body, applied_at, result FROM plans WHERE id = ?", (plan_id,))
        if not got:
            raise NotFound(_gone(plan_id))
        body, applied_at, result = got[0]
        return ToApply(_body.decode(body), applied_at, None if result is None else _result.decode(result))

    @staticmethod
    async def mark_applied(tx: Tx, plan_id: str, result: dict[str, Any]) -> None:
        """Inside the apply's transaction: the plan is applied, with what it did (for a repeated apply)."""
        drv = await tx.driver()
        if drv is None:
            await tx.conn.execute(update(P).where(P.c.id == plan_id).values(applied_at=time.time(), result=result))
            return
        await drv.execute_fetchall('UPDATE plans SET "applied_at" = ?, "result" = ? WHERE "id" = ?',
                                   (time.time(), json_encoder.encode(result).decode(), plan_id))
