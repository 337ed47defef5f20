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
from typing import Any

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


class Listener:
    """LISTENs on its own connection (asyncpg, outside the pool) and feeds the others' changes to `feed`."""

    def __init__(self, dsn: str, replica: str, feed: ChangeFeed) -> None:
        self.dsn, self.replica, self.feed = dsn, replica, feed
        self._conn: Any = None
        self._task: asyncio.Task | None = None
        self._lost = asyncio.Event()
        self.reconnects = 0

    async def start(self) -> None:
        """Connect and listen (raises if the database cannot be reached), then keep the connection alive."""
        await self._connect()
        self._task = asyncio.get_running_loop().create_task(self._keep(), name="neira change listener")

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
        if note.replica == self.replica:
            return  # our own commits were published in-process already
        self.feed.publish([Changed(table=t, key=k, value=h) for t, k, h in note.changes])

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

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
