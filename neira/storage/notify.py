"""The change feed across processes on PostgreSQL: each write transaction that changed something sends its
changes with `pg_notify` (delivered at commit, in commit order; nothing if it rolls back), and every
process LISTENs and publishes the others' changes to its own feed, so the caches of every replica follow
every replica's commits.

A notification carries ids only — `[table, key, hint]`, where the hint is a short string the writer had
(a new organ's template id), never a row — and stays under PostgreSQL's 8,000-byte limit by being split.
A listener that was away (its connection dropped) cannot be told what it missed: after it reconnects it
resets the feed, and every subscriber reloads what it holds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any, Protocol

import msgspec

from neira.storage.feed import ChangeFeed, Changed

log = logging.getLogger("neira.storage")

CHANNEL = "neira_feed"
MAX_PAYLOAD = 7_000  # bytes of one notification, under PostgreSQL's 8,000 with room for the envelope
MAX_HINT = 128  # a value longer than this is not sent (the subscriber reloads instead)
RETRY_S = (0.1, 0.25, 0.5, 1.0, 2.0)  # waits between reconnection attempts, the last one repeated


class Note(msgspec.Struct, array_like=True):
    """One notification: the sending process and its changes."""

    replica: str
    changes: list[tuple[str, str, str | None]]


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Note).decode


def hint(value: Any) -> str | None:
    """The part of a change's value that travels: a short string, else nothing."""
    return value if isinstance(value, str) and len(value) <= MAX_HINT else None


def payloads(replica: str, changes: Iterable[Changed]) -> list[str]:
    """The notifications for one transaction's changes, each under MAX_PAYLOAD bytes."""
    out: list[str] = []
    batch: list[tuple[str, str, str | None]] = []
    size = len(replica) + 16
    for c in changes:
        item = (c.table, c.key, hint(c.value))
        cost = len(c.table) + len(c.key) + len(item[2] or "") + 16
        if batch and size + cost > MAX_PAYLOAD:
            out.append(_encode(Note(replica, batch)).decode())
            batch, size = [], len(replica) + 16
        batch.append(item)
        size += cost
    if batch:
        out.append(_encode(Note(replica, batch)).decode())
    return out


class Relay(Protocol):
    """Who delivers committed events to this process's subscribers (neira/events.py EventBus)."""

    async def heard(self, key: str) -> None:
        """Events `first-last` were committed (by any process, this one too)."""

    def missed(self) -> None:
        """Notifications may have been missed."""


EVENTS = "events"  # the table whose changes are events to deliver, from every process, in commit order


class Listener:
    """LISTENs on its own connection (asyncpg, outside the pool): feeds the others' changes to `feed`, and
    hands every process's committed events (ours too) to `relay`, one notification at a time, in the order
    PostgreSQL delivered them (commit order)."""

    def __init__(self, dsn: str, replica: str, feed: ChangeFeed, relay: Relay | None = None) -> None:
        self.dsn, self.replica, self.feed, self.relay = dsn, replica, feed, relay
        self._conn: Any = None
        self._tasks: list[asyncio.Task] = []
        self._lost = asyncio.Event()
        self._heard_events: asyncio.Queue[str] = asyncio.Queue()
        self.reconnects = 0

    async def start(self) -> None:
        """Connect and listen (raises if the database cannot be reached), then keep the connection alive."""
        await self._connect()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._keep(), name="neira change listener"),
                       loop.create_task(self._deliver(), name="neira event relay")]

    async def _connect(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.dsn)
        self._lost.clear()
        conn.add_termination_listener(lambda _c: self._lost.set())
        await conn.add_listener(CHANNEL, self._heard)
        self._conn = conn

    def _heard(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            note = _decode(payload)
        except msgspec.DecodeError:
            log.warning("change notification that is not ours ignored")
            return
        mine = note.replica == self.replica  # our own changes were published in-process already
        changes = []
        for t, k, h in note.changes:
            if t == EVENTS:
                if self.relay is not None:
                    self._heard_events.put_nowait(k)
            elif not mine:
                changes.append(Changed(table=t, key=k, value=h))
        if changes:
            self.feed.publish(changes)

    async def _deliver(self) -> None:
        """Deliver committed events one notification after another (a later one waits for an earlier one's
        rows to be read), so subscribers see seq order."""
        while True:
            key = await self._heard_events.get()
            try:
                await self.relay.heard(key)  # type: ignore[union-attr]
            except asyncio.CancelledError:
                raise
            except Exception:  # the database went away mid-read: the reconnect's reset covers what is lost
                log.warning("events %s could not be read for delivery", key, exc_info=True)
                if self.relay is not None:
                    self.relay.missed()

    async def _keep(self) -> None:
        while True:
            await self._lost.wait()
            log.warning("change listener lost its connection; reconnecting")
            for attempt in range(10**9):
                await asyncio.sleep(RETRY_S[min(attempt, len(RETRY_S) - 1)])
                try:
                    await self._connect()
                    break
                except (OSError, asyncio.TimeoutError) as exc:
                    log.debug("change listener reconnect failed: %s", type(exc).__name__)
                except Exception as exc:  # refused by the server (too many connections, shutting down)
                    log.debug("change listener reconnect refused: %s", type(exc).__name__)
            self.reconnects += 1
            self.feed.reset()  # what was committed while we were away is unknown: reload everything
            if self.relay is not None:
                self.relay.missed()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
