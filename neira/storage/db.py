"""The database handle: an async SQLAlchemy engine, one writer at a time, post-commit hooks and the change feed."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from neira.storage import migrate, tables
from neira.storage.feed import ChangeFeed, Changed
from neira.storage.notify import CHANNEL, Listener, payloads

NOTIFY = text("SELECT pg_notify(:channel, :payload)")


class Tx:
    """A write transaction: the connection plus work to run after it commits (events to subscribers) or
    to undo outside the database if it rolls back (a staged file)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._after: list[Callable[[], None]] = []
        self._undo: list[Callable[[], None]] = []
        self._changes: list[Changed] = []

    def changed(self, table: str, key: str, value: Any = None) -> None:
        """Say what this transaction changed; the change feed publishes it once the transaction commits."""
        self._changes.append(Changed(table=table, key=key, value=value))

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run `fn` once the transaction has committed; dropped on rollback."""
        self._after.append(fn)

    def on_rollback(self, fn: Callable[[], None]) -> None:
        """Run `fn` if the transaction does not commit; dropped on commit."""
        self._undo.append(fn)

    async def next_counter(self, name: str) -> int:
        """Increment and return a named counter; ids made from it are never reused."""
        return (await self.next_counters(name, 1))[0]

    async def next_counters(self, name: str, n: int) -> list[int]:
        """`n` consecutive values of a named counter at once, never handed out again (one statement:
        UPDATE … RETURNING, which SQLite ≥ 3.35 and PostgreSQL both have)."""
        c = tables.counters
        row = (await self.conn.execute(
            update(c).where(c.c.name == name).values(value=c.c.value + n).returning(c.c.value))).first()
        if row is None:
            await self.conn.execute(c.insert().values(name=name, value=n))
            return list(range(1, n + 1))
        return list(range(row[0] - n + 1, row[0] + 1))


class Database:
    """Owns the engine. Writes are serialised in-process so read-modify-write sequences are atomic."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine: AsyncEngine = create_async_engine(url, future=True)
        self._write_lock = asyncio.Lock()
        self.feed = ChangeFeed()
        self.replica = secrets.token_hex(6)  # this process, in the notifications other processes hear
        self._listener: Listener | None = None
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)

    async def listen(self) -> None:
        """On PostgreSQL, follow the other processes' commits (neira/storage/notify.py); SQLite has one."""
        if self.is_sqlite or self._listener is not None:
            return
        dsn = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._listener = Listener(dsn, self.replica, self.feed)
        await self._listener.start()

    async def create(self) -> tuple[str | None, str]:
        """Bring the schema to the newest revision (neira/storage/migrate.py); (from, to)."""
        async with self.engine.begin() as conn:
            return await conn.run_sync(migrate.upgrade)

    async def ping(self, timeout_s: float = 1.0) -> bool:
        """Whether the database answers `SELECT 1` within `timeout_s` (any failure is a no)."""
        try:
            async with asyncio.timeout(timeout_s):
                async with self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except Exception:  # unreachable, refused, timed out, auth: all mean "not reachable now"
            return False
        return True

    async def close(self) -> None:
        """Stop listening and dispose of the engine's connections."""
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        await self.engine.dispose()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """A serialised write transaction; post-commit hooks run after a successful commit."""
        tx: Tx | None = None
        async with self._write_lock:
            try:
                async with self.engine.begin() as conn:
                    tx = Tx(conn)
                    yield tx
                    if tx._changes and not self.is_sqlite:  # delivered to the other processes at commit
                        for payload in payloads(self.replica, tx._changes):
                            await conn.execute(NOTIFY, {"channel": CHANNEL, "payload": payload})
            except BaseException:
                for undo in tx._undo if tx is not None else ():
                    undo()
                raise
        if tx._changes:
            self.feed.publish(tx._changes)  # read models first: hooks (events to subscribers) may read them
        for fn in tx._after:
            fn()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads."""
        async with self.engine.connect() as conn:
            yield conn

    def upsert(self, table: Any, values: dict[str, Any], keys: list[str]) -> Any:
        """An insert-or-update statement for this dialect."""
        if self.is_sqlite:
            stmt = sqlite_insert(table).values(**values)
        else:  # pragma: no cover - exercised once the PostgreSQL backend lands
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt = pg_insert(table).values(**values)
        return stmt.on_conflict_do_update(index_elements=keys, set_={k: v for k, v in values.items() if k not in keys})


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
