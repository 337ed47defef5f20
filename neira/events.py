"""The event bus: events are stored in the same transaction as the change, then fanned out in-process."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import select

from neira.metrics import Metrics
from neira.storage import tables
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
        res = await tx.conn.execute(tables.events.insert().values(at=at, type=type, subject=subject, data=data))
        ev = Event(seq=res.inserted_primary_key[0], at=at, type=type, subject=subject, data=data)
        tx.after_commit(lambda: self._deliver(ev))
        return ev

    def _deliver(self, ev: Event) -> None:
        self.metrics.events.labels(ev.type).inc()
        for topic in ("*", ev.subject):
            for sub in self._subs.get(topic, ()):
                sub.offer(ev)

    def subscribe(self, topic: str = "*", maxsize: int = 256) -> Subscription:
        """A new subscription to a subject (or `*`)."""
        sub = Subscription(maxsize)
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
