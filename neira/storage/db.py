"""The database handle: an async SQLAlchemy engine, one writer at a time, post-commit hooks and the change feed."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util import await_only

from neira.storage import inline, migrate
from neira.storage.feed import Changed, ChangeFeed
from neira.storage.notify import CHANNEL, Listener, Relay, payloads

NOTIFY = text("SELECT pg_notify(:channel, :payload)")
_COUNT = ('INSERT INTO counters ("name", "value") VALUES ({}, {}) '
          'ON CONFLICT ("name") DO UPDATE SET "value" = counters."value" + excluded."value" RETURNING "value"')
COUNT_DRIVER, COUNT = _COUNT.format("?", "?"), text(_COUNT.format(":name", ":n"))
LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
TURN_S = 0.001  # on SQLite, the longest the database's work goes on without letting other tasks run


class Driver:
    """The SQLite driver's connection under a transaction, without SQLAlchemy's layers (its statement
    processing and a greenlet per call cost more than a small statement itself). Its errors are SQLAlchemy's (an `IntegrityError` is `sqlalchemy.exc.IntegrityError`, as on the Core path)."""

    __slots__ = ("_conn", "_off_loop")

    def __init__(self, conn: inline.Connection, off_loop: bool = False) -> None:
        self._conn = conn
        self._off_loop = off_loop  # many rows at once go to a thread (`Database.transaction(off_loop=True)`)

    async def execute_fetchall(self, sql: str, params: Any = ()) -> list[Any]:
        """The rows of one statement."""
        try:
            return list(await self._conn.execute_fetchall(sql, params))
        except sqlite3.Error as e:
            raise DBAPIError.instance(sql, params, e, sqlite3.Error) from e

    async def execute_insert(self, sql: str, params: Any = ()) -> Any:
        """One INSERT; the row of `last_insert_rowid()`."""
        try:
            return await self._conn.execute_insert(sql, params)
        except sqlite3.Error as e:
            raise DBAPIError.instance(sql, params, e, sqlite3.Error) from e

    @property
    def off_loop(self) -> bool:
        """Whether this transaction's statements run on a thread (`Database.transaction(off_loop=True)`)."""
        return self._off_loop

    async def execute(self, sql: str, params: Any = ()) -> None:
        """One statement whose rows nobody reads (on a thread when the transaction is off the loop)."""
        try:
            if self._off_loop:
                await asyncio.to_thread(self._conn._conn.execute, sql, params)
            else:
                await self._conn.execute_fetchall(sql, params)
        except sqlite3.Error as e:
            raise DBAPIError.instance(sql, params, e, sqlite3.Error) from e

    async def executemany(self, sql: str, rows: list[Any]) -> None:
        """One statement over many parameter rows. Not for a transaction off the loop: the driver takes the
        GIL back after every row, and on a thread each of those waits for the loop to hand it over (up to the
        5 ms switch interval); `bulk.insert_tuples` sends one multi-row statement there instead."""
        try:
            await self._conn.executemany(sql, rows)
        except sqlite3.Error as e:
            raise DBAPIError.instance(sql, rows, e, sqlite3.Error) from e


class Tx:
    """A write transaction: the connection plus work to run after it commits (events to subscribers) or
    to undo outside the database if it rolls back (a staged file)."""

    def __init__(self, conn: AsyncConnection, off_loop: bool = False) -> None:
        self.conn = conn
        self.off_loop = off_loop
        self._driver: Driver | None = None
        self._before: list[Callable[[], Awaitable[None]]] = []
        self._last: list[Callable[[], Awaitable[None]]] = []
        self._batches: dict[str, list[Any]] = {}
        self._after: list[Callable[[], None]] = []
        self._undo: list[Callable[[], None]] = []
        self._changes: list[Changed] = []

    async def driver(self) -> Driver | None:
        """On SQLite, the driver's own connection (aiosqlite's, run inline: neira/storage/inline.py) under this
        transaction, else None. A statement sent there is one driver call; through SQLAlchemy's async adapter
        it is four (cursor, execute, fetch, close), each through a greenlet. Same connection, so the same
        transaction: a rollback undoes both."""
        if self._driver is None and self.conn.dialect.name == "sqlite":
            self._driver = Driver((await self.conn.get_raw_connection()).driver_connection, self.off_loop)
        return self._driver

    async def lock(self, kind: str, key: str) -> None:
        """Hold `kind:key` until this transaction ends, for a read-modify-write of something that may have no
        row yet (a setting, an `Idempotency-Key`): on PostgreSQL a transaction-scoped advisory lock, so the
        same lock in another replica waits for our commit; on SQLite nothing (one writer holds the database).
        A row that exists is locked with `SELECT … FOR UPDATE` by its reader instead."""
        if self.conn.dialect.name == "postgresql":
            await self.conn.execute(LOCK, {"key": f"{kind}:{key}"})

    def changed(self, table: str, key: str, value: Any = None) -> None:
        """Say what this transaction changed; the change feed publishes it once the transaction commits."""
        self._changes.append(Changed(table=table, key=key, value=value))

    def batch(self, name: str, rows: list[Any], write: Callable[[list[Any]], Awaitable[None]], last: bool = False) -> None:
        """Queue `rows` to be written, in order, with every other row of batch `name` in this transaction by
        one `write(all_rows)` just before the commit (the audit rows of an apply: one statement, not one each).
        `last` batches are written after all others (the events, whose lock must be the last one taken)."""
        queued = self._batches.get(name)
        if queued is None:
            queued = self._batches[name] = []
            (self._last if last else self._before).append(lambda: write(queued))
        queued.extend(rows)

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
        """`n` consecutive values of a named counter at once, never handed out again: one upsert (INSERT … ON
        CONFLICT DO UPDATE … RETURNING, which SQLite ≥ 3.35 and PostgreSQL both have), so replicas asking for
        a counter's very first values at once each get their own, where an UPDATE-then-INSERT would race."""
        drv = await self.driver()
        if drv is not None:
            got = await drv.execute_fetchall(COUNT_DRIVER, (name, n))
        else:
            got = (await self.conn.execute(COUNT, {"name": name, "n": n})).all()
        top = got[0][0]
        return list(range(top - n + 1, top + 1))


class Pool(NamedTuple):
    """Connection-pool settings for a server database (NEIRA_DB_POOL_SIZE, _MAX_OVERFLOW, _TIMEOUT_S)."""

    size: int = 5
    max_overflow: int = 10
    timeout_s: int = 30


class Database:
    """Owns the engine. Writes are serialised in-process; across processes (PostgreSQL) the read-modify-write
    sequences lock what they change: rows with `SELECT … FOR UPDATE`, keys without a row with `Tx.lock`, and
    events with one advisory lock at the end of each transaction (neira/events.py)."""

    def __init__(self, url: str, pool: Pool = Pool(), listen_url: str | None = None) -> None:
        self.url = url
        self.listen_url = listen_url  # LISTEN needs a session of its own: past PgBouncer, the server itself
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            # Every connection ends its own work (a transaction commits or rolls back; a read connection's
            # close rolls back what it began), so the pool's own rollback on return is a second, empty one:
            # on SQLite it would cost a driver call per connection use.
            # Its calls run on the loop's thread (neira/storage/inline.py): no hand-off to a driver thread. LIFO:
            # the connection used last is the one whose page cache is warm.
            options: dict[str, Any] = {"pool_reset_on_return": None, "pool_use_lifo": True,
                                       "async_creator": inline.connector(url)}
        else:  # a server: a connection the server or a proxy closed meanwhile is noticed before it is used
            options = {"pool_size": pool.size, "max_overflow": pool.max_overflow, "pool_timeout": pool.timeout_s}
        self.engine: AsyncEngine = create_async_engine(url, future=True, **options)
        if not self.is_sqlite:
            event.listen(self.engine.sync_engine, "checkout", _ping)
        # Reads on a server run in autocommit: no BEGIN before and no ROLLBACK after, so a read is the check at
        # checkout (`_ping`) and its statements. The same answers: at PostgreSQL's READ COMMITTED each
        # statement of a transaction takes a snapshot of its own anyway, and reads write nothing.
        self._reads: AsyncEngine = (self.engine if self.is_sqlite
                                    else self.engine.execution_options(isolation_level="AUTOCOMMIT"))
        self._write_lock = asyncio.Lock()
        self._writer: AsyncConnection | None = None  # SQLite's one write connection (`_connect_writer`)
        self._turn = 0.0  # when SQLite's statements last let the loop run others (`_take_turns`)
        self.feed = ChangeFeed()
        self.replica = secrets.token_hex(6)  # this process, in the notifications other processes hear
        self._listener: Listener | None = None
        self.relay: Relay | None = None  # who delivers the events other processes commit (neira/events.py)
        self._checkpoints: inline.Checkpointer | None = None
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            self._checkpoints = inline.Checkpointer(url)

    async def start(self) -> None:
        """The database's own background work: SQLite's checkpoints, or following PostgreSQL's other replicas."""
        if self._checkpoints is not None:
            self._checkpoints.start()
        await self.listen()

    async def listen(self) -> None:
        """On PostgreSQL, follow the other processes' commits (neira/storage/notify.py); SQLite has one."""
        if self.is_sqlite or self._listener is not None:
            return
        dsn = make_url(self.listen_url or self.url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._listener = Listener(dsn, self.replica, self.feed, self.relay)
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
        if self._checkpoints is not None:
            await self._checkpoints.close()
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await writer.close()
        await self.engine.dispose()

    async def _connect_writer(self) -> AsyncConnection:
        """The connection a write transaction runs on. On SQLite one connection, kept: the writes take turns
        anyway, and checking a connection out of the pool and back costs more than a small transaction's
        statements (`bench/apply.py`). Elsewhere one from the pool per transaction."""
        if not self.is_sqlite:
            return await self.engine.connect()
        if self._writer is None or self._writer.closed or self._writer.invalidated:
            self._writer = await self.engine.connect()
        return self._writer

    async def _take_turns(self) -> None:
        """SQLite's calls never suspend (neira/storage/inline.py), so a loop of transactions and reads (a canary
        analysis filling 1,000 runs) would keep the event loop from every request meanwhile. Before one starts,
        the others get a turn if this process's statements have not given one for TURN_S."""
        now = time.monotonic()
        if now - self._turn >= TURN_S:
            await asyncio.sleep(0)
            self._turn = time.monotonic()

    @asynccontextmanager
    async def transaction(self, off_loop: bool = False) -> AsyncIterator[Tx]:
        """A serialised write transaction; post-commit hooks run after a successful commit.

        `off_loop`, for a big write made in the background (the plans said in the last 5 ms): on SQLite its
        bulk statements and its commit run on a thread, where their I/O overlaps the requests the loop serves
        meanwhile (the connection is this transaction's alone until it ends). A small transaction stays on the
        loop: two thread hops cost more than its work."""
        tx: Tx | None = None
        if self.is_sqlite:
            await self._take_turns()
        async with self._write_lock:
            conn = await self._connect_writer()
            try:
                async with conn.begin():
                    tx = Tx(conn, off_loop and self.is_sqlite)
                    yield tx
                    for write in (*tx._before, *tx._last):  # the batched rows, inside the transaction
                        await write()
                    if tx.off_loop:  # SQLAlchemy's own commit then finds nothing left to commit
                        await asyncio.to_thread((await conn.get_raw_connection()).driver_connection._conn.commit)
                    if tx._changes and not self.is_sqlite:  # delivered to the other processes at commit
                        for payload in payloads(self.replica, tx._changes):
                            await conn.execute(NOTIFY, {"channel": CHANNEL, "payload": payload})
            except BaseException:
                for undo in tx._undo if tx is not None else ():
                    undo()
                raise
            finally:
                if conn is not self._writer:
                    await conn.close()
        if tx._changes:
            self.feed.publish(tx._changes)  # read models first: hooks (events to subscribers) may read them
        for fn in tx._after:
            fn()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads."""
        if self.is_sqlite:
            await self._take_turns()
        async with self._reads.connect() as conn:
            yield conn

    def upsert(self, table: Any, values: dict[str, Any], keys: list[str]) -> Any:
        """An insert-or-update statement for this dialect."""
        if self.is_sqlite:
            stmt = sqlite_insert(table).values(**values)
        else:  # pragma: no cover - exercised once the PostgreSQL backend lands
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt = pg_insert(table).values(**values)
        return stmt.on_conflict_do_update(index_elements=keys, set_={k: v for k, v in values.items() if k not in keys})


def _ping(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """A pooled PostgreSQL connection is checked before it is handed out: one simple query (one round
    trip; SQLAlchemy's pre-ping for asyncpg takes three, wrapping it in BEGIN and ROLLBACK). The simple query
    protocol prepares nothing, so it is safe behind PgBouncer in transaction mode too. A connection that fails
    it is dropped and the pool tries another (DisconnectionError: SQLAlchemy's pessimistic disconnect check)."""
    try:
        await_only(dbapi_conn.driver_connection.execute("SELECT 1"))  # (asyncpg fails on ";": no command tag)
    except Exception as exc:
        raise DisconnectionError(f"the pooled connection is gone ({type(exc).__name__})") from exc


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA wal_autocheckpoint=0")  # a checkpoint's fsyncs would stall the loop: inline.Checkpointer
    cur.close()
