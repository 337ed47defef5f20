"""The event bus: events are stored by the transaction that made the change, and reach subscribers after
its commit, in seq order, on every process (see EventBus)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, text

from neira.metrics import Metrics
from neira.storage import tables
from neira.storage.bulk import fast_path, json_encoder
from neira.storage.db import Database, Tx
from neira.structs import Base


class Event(Base):
    """One thing that happened: `{seq, at, type, subject, data}`."""

    seq: int
    at: float
    type: str
    subject: str
    data: dict[str, Any]


class Subscription:
    """A subscriber's bounded queue. On overflow the queue is cleared and `lagged` is set, so the consumer
    can send a fresh snapshot instead of the frames it missed; the publisher never waits."""

    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.lagged = False

    def offer(self, ev: Event) -> None:
        """Enqueue without blocking."""
        try:
            self.queue.put_nowait(ev)
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.lagged = True
            self.queue.put_nowait(ev)

    async def get(self) -> Event:
        """The next event."""
        return await self.queue.get()


EVENTS_LOCK = 0x6E65_6972_6145  # the PostgreSQL advisory lock (one bigint key) that orders event inserts
Item = tuple[str, str, dict[str, Any]]  # (type, subject, data)


class EventBus:
    """Publishes events; subscribers are per topic (`*` receives everything).

    An event is written by the transaction that made the change, as its last statement, and reaches
    subscribers only after that commit, in `seq` order. On SQLite (one process) that order is the commit
    order by construction. On PostgreSQL every write transaction takes one advisory lock (`EVENTS_LOCK`)
    just before it numbers its events and holds it to its commit, so seqs are committed in order across
    every replica; the transaction's notification names its seqs, and each replica — the writer too —
    delivers events from the notifications it hears, which PostgreSQL delivers in commit order. So every
    replica's subscribers see every replica's events, in seq order, each once."""

    def __init__(self, db: Database, metrics: Metrics) -> None:
        self.db = db
        self.metrics = metrics
        self._subs: dict[str, set[Subscription]] = {}
        self._mine: dict[str, tuple[Sequence[int], float, list[Item]]] = {}  # our own, until heard back
        db.relay = self

    async def emit(self, tx: Tx, type: str, subject: str, data: dict[str, Any] | None = None) -> None:
        """Store an event with `tx` (its last statement); subscribers get it after the commit."""
        tx.batch("events", [(type, subject, data or {})], lambda items: self._write(tx, items), last=True)

    async def emit_many(self, tx: Tx, items: list[Item]) -> None:
        """Store many events `(type, subject, data)` with `tx`, in order after any emitted before them."""
        if items:
            tx.batch("events", items, lambda queued: self._write(tx, queued), last=True)

    async def _write(self, tx: Tx, items: list[Item]) -> None:
        """Number and insert one transaction's events (one statement), just before its commit."""
        at = time.time()
        if fast_path(tx):  # SQLite: the single writer's transaction numbers them after the current maximum
            drv = await tx.driver()
            encode = json_encoder.encode
            if len(items) == 1:
                t, s, d = items[0]
                row = await drv.execute_insert('INSERT INTO events ("at", "type", "subject", "data") VALUES (?, ?, ?, ?)',
                                               (at, t, s, encode(d).decode()))
                seqs: Sequence[int] = (row[0],)
            else:
                top = (await drv.execute_fetchall("SELECT max(seq) FROM events"))[0][0] or 0
                seqs = range(top + 1, top + 1 + len(items))
                await drv.executemany(
                    'INSERT INTO events ("seq", "at", "type", "subject", "data") VALUES (?, ?, ?, ?, ?)',
                    [(q, at, t, s, encode(d).decode()) for q, (t, s, d) in zip(seqs, items, strict=True)])
            tx.after_commit(lambda: self._committed(seqs, at, items, deliver=True))
            return
        relayed = tx.conn.dialect.name == "postgresql"  # several processes: order and deliver through NOTIFY
        if relayed:
            await tx.conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": EVENTS_LOCK})
        stmt = insert(tables.events).returning(tables.events.c.seq, sort_by_parameter_order=True)
        result = await tx.conn.execute(stmt, [{"at": at, "type": t, "subject": s, "data": d} for t, s, d in items])
        seqs = list(result.scalars())
        if not relayed:
            tx.after_commit(lambda: self._committed(seqs, at, items, deliver=True))
            return
        key = f"{seqs[0]}-{seqs[-1]}"
        self._mine[key] = (seqs, at, items)  # before the commit: our listener may hear it before we return
        tx.on_rollback(lambda: self._mine.pop(key, None))
        tx.changed("events", key)
        tx.after_commit(lambda: self._committed(seqs, at, items, deliver=False))

    def _committed(self, seqs: Sequence[int], at: float, items: list[Item], deliver: bool) -> None:
        counts: dict[str, int] = {}
        for type_, _subject, _data in items:
            counts[type_] = counts.get(type_, 0) + 1
        for type_, n in counts.items():
            self.metrics.events.labels(type_).inc(n)  # counted where they were written, once
        if deliver:
            self._fan_out(seqs, at, items)

    async def heard(self, key: str) -> None:
        """A replica (this one too) committed events `first-last`: deliver them (the listener calls this in
        commit order, one notification at a time)."""
        mine = self._mine.pop(key, None)
        if mine is not None:
            self._fan_out(*mine)
            return
        first, _, last = key.partition("-")
        t = tables.events
        async with self.db.read() as conn:
            rows = (await conn.execute(select(t).where(t.c.seq >= int(first), t.c.seq <= int(last)).order_by(t.c.seq))).all()
        if rows:
            self._fan_out([r.seq for r in rows], rows[0].at, [(r.type, r.subject, r.data) for r in rows])

    def missed(self) -> None:
        """The listener was away: events may have been missed, so every subscriber is told it lagged (a stream
        sends a fresh snapshot at its next frame), and our own unheard ones are forgotten."""
        self._mine.clear()
        for subs in self._subs.values():
            for sub in subs:
                sub.lagged = True

    def _fan_out(self, seqs: Sequence[int], at: float, items: list[Item]) -> None:
        """Deliver committed events to subscribers of `*` and of their subject, building Event objects only
        for events someone awaits."""
        everyone = self._subs.get("*", ())
        for seq, (type_, subject, data) in zip(seqs, items, strict=True):
            direct = self._subs.get(subject, ())
            if everyone or direct:
                ev = Event(seq=seq, at=at, type=type_, subject=subject, data=data)
                for sub in (*everyone, *direct):
                    sub.offer(ev)

    def subscribe(self, topic: str = "*", maxsize: int = 256, into: Subscription | None = None) -> Subscription:
        """A new subscription to a subject (or `*`); with `into`, that subscription also hears `topic` (one
        queue for several subjects, so its reader waits on one thing)."""
        sub = into or Subscription(maxsize)
        self._subs.setdefault(topic, set()).add(sub)
        return sub

    def unsubscribe(self, topic: str, sub: Subscription) -> None:
        """Stop delivering to `sub`."""
        subs = self._subs.get(topic)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[topic]

    async def list(self, since: int = 0, limit: int = 100) -> list[Event]:
        """Stored events with seq > since, oldest first."""
        t = tables.events
        async with self.db.read() as conn:
            rows = await conn.execute(select(t).where(t.c.seq > since).order_by(t.c.seq).limit(limit))
            return [Event(seq=r.seq, at=r.at, type=r.type, subject=r.subject, data=r.data) for r in rows]
