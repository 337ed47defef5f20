"""The event bus: events are stored in the same transaction as the change, then fanned out in-process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select

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


class EventBus:
    """Publishes events; subscribers are per topic (`*` receives everything)."""

    def __init__(self, db: Database, metrics: Metrics) -> None:
        self.db = db
        self.metrics = metrics
        self._subs: dict[str, set[Subscription]] = {}

    async def emit(self, tx: Tx, type: str, subject: str, data: dict[str, Any] | None = None) -> Event:
        """Store an event in `tx`; subscribers get it after the commit."""
        at = time.time()
        data = data or {}
        drv = await tx.driver()
        if drv is not None:  # one hand-off to the driver's thread (storage/db.py Tx.driver)
            row = await drv.execute_insert('INSERT INTO events ("at", "type", "subject", "data") VALUES (?, ?, ?, ?)',
                                           (at, type, subject, json_encoder.encode(data).decode()))
            seq = row[0]
        else:
            res = await tx.conn.execute(tables.events.insert().values(at=at, type=type, subject=subject, data=data))
            seq = res.inserted_primary_key[0]
        ev = Event(seq=seq, at=at, type=type, subject=subject, data=data)
        tx.after_commit(lambda: self._fan_out([ev.seq], at, [(type, subject, data)]))
        return ev

    async def emit_many(self, tx: Tx, items: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Store many events `(type, subject, data)` in `tx` with one statement; subscribers get them, in
        order, after the commit. On SQLite the seqs follow the current maximum (the transaction holds the
        single writer lock, so nobody else can take them); other dialects number them with their own
        sequence (RETURNING, in parameter order)."""
        if not items:
            return
        at = time.time()
        if fast_path(tx):
            drv = await tx.driver()
            top = (await drv.execute_fetchall("SELECT max(seq) FROM events"))[0][0] or 0
            seqs: Sequence[int] = range(top + 1, top + 1 + len(items))
            encode = json_encoder.encode
            await drv.executemany(
                'INSERT INTO events ("seq", "at", "type", "subject", "data") VALUES (?, ?, ?, ?, ?)',
                [(q, at, t, s, encode(d).decode()) for q, (t, s, d) in zip(seqs, items, strict=True)],
            )
        else:
            stmt = insert(tables.events).returning(tables.events.c.seq, sort_by_parameter_order=True)
            result = await tx.conn.execute(stmt, [{"at": at, "type": t, "subject": s, "data": d} for t, s, d in items])
            seqs = list(result.scalars())
        tx.after_commit(lambda: self._fan_out(seqs, at, items))

    def _fan_out(self, seqs: Sequence[int], at: float, items: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Deliver committed events to subscribers of `*` and of their subject, counting once per type and
        building Event objects only for events someone awaits."""
        everyone = self._subs.get("*", ())
        counts: dict[str, int] = {}
        for seq, (type_, subject, data) in zip(seqs, items, strict=True):
            counts[type_] = counts.get(type_, 0) + 1
            direct = self._subs.get(subject, ())
            if everyone or direct:
                ev = Event(seq=seq, at=at, type=type_, subject=subject, data=data)
                for sub in (*everyone, *direct):
                    sub.offer(ev)
        for type_, n in counts.items():
            self.metrics.events.labels(type_).inc(n)

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
