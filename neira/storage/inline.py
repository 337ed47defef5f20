"""SQLite on the event loop's own thread: aiosqlite's connection without its thread.

aiosqlite runs each call on a thread of its own and wakes the loop with the answer. For the statements a
server here sends (a row, a few rows, a commit of a WAL page or two: 5–50 µs each) the two wake-ups cost far
more than the work: 0.2–0.3 ms a call on a quiet two-vCPU machine, several times that under load
(`bench/apply.py`: an apply of 8 calls took 2.3 one-statement transactions, and that transaction was itself
~1.3 ms). Here each call runs at once, where it is awaited, and its awaitable is already done.

What that trades, and why it holds for neira: the loop waits while SQLite works. A statement that waits on a
lock would stall every request, but nothing else writes the file: the data dir is locked to one server
(`api.server.lock_data_dir`), this process's writes take turns (`Database.transaction`), and in WAL mode
readers and the writer never wait for each other. With `synchronous=NORMAL` a commit appends to the WAL and
does not sync. The sync comes when the WAL is copied back into the database file (a checkpoint: 10–30 ms of
writes and fsyncs), and that happens off the loop: the connections here never checkpoint themselves
(`wal_autocheckpoint=0`); a `Checkpointer` does it every second from a thread. PostgreSQL keeps its own
asynchronous driver; this is the embedded default only.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import aiosqlite

log = logging.getLogger("neira.storage")
CHECKPOINT_S = 1.0  # how often the WAL is copied back into the database file (off the loop)


class _Now:
    """Stands where aiosqlite's queue to its thread was: a call put here runs at once and settles its future.
    (SQLAlchemy's adapter puts its isolation-level change on that queue directly.)"""

    __slots__ = ()

    def put_nowait(self, item: tuple[asyncio.Future | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as e:  # noqa: BLE001 - handed to whoever awaits it, as the thread would
            if future is not None and not future.done():
                future.set_exception(e)
            return
        if future is not None and not future.done():
            future.set_result(result)


class Connection(aiosqlite.Connection):
    """An aiosqlite connection whose calls run on the caller's thread, in the order they are awaited."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _Now()  # type: ignore[assignment]

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def _connect(self) -> Connection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self):  # no thread to start
        return self._connect().__await__()

    def stop(self) -> None:
        """Close the connection (what aiosqlite's `stop` asks its thread to do)."""
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        self.stop()


def _connect_args(url: str) -> tuple[list[Any], dict[str, Any]]:
    from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
    from sqlalchemy.engine import make_url

    args, kwargs = SQLiteDialect_aiosqlite().create_connect_args(make_url(url))
    return list(args), {**kwargs, "check_same_thread": False}


def connector(url: str) -> Callable[[], Awaitable[Connection]]:
    """The `async_creator` for SQLAlchemy's async engine: a new inline connection to the database `url` names,
    with the arguments SQLAlchemy's own SQLite dialect reads from it (path, `?uri=true`, `timeout`, …).
    `check_same_thread=False`: the connection is used from whichever thread runs the loop (one at a time;
    Python's SQLite is built serialised)."""
    args, kwargs = _connect_args(url)
    connect_sqlite = partial(sqlite3.connect, *args, **kwargs)

    async def connect() -> Connection:
        return await Connection(connect_sqlite)

    return connect


class Checkpointer:
    """Copies the WAL back into the database file every CHECKPOINT_S, on a thread of its own with a connection of
    its own (a PASSIVE checkpoint: it waits for no reader or writer, and copies what no reader still needs). One
    thread, so the connection's close waits for a checkpoint still running."""

    def __init__(self, url: str) -> None:
        self._args = _connect_args(url)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Checkpoint from now on."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sqlite checkpoints")

    async def close(self) -> None:
        """Stop (the last connection to close checkpoints what is left)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        args, kwargs = self._args
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="neira-checkpoint") as thread:
            conn = await loop.run_in_executor(thread, partial(sqlite3.connect, *args, **kwargs))
            try:
                while True:
                    await asyncio.sleep(CHECKPOINT_S)  # a period, not a wait for another task
                    try:
                        await loop.run_in_executor(thread, _checkpoint, conn)
                    except sqlite3.Error as exc:  # busy, or a full disk: the WAL grows until one succeeds
                        log.warning("sqlite checkpoint failed (%s)", exc)
            finally:
                thread.submit(conn.close)  # after a checkpoint still running; the executor's exit waits for it


def _checkpoint(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
