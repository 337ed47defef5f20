"""The schema's one history works on SQLite and PostgreSQL: an empty database reaches the head with exactly
the tables the code declares, a database from before migrations is brought up to it, and replicas starting
at once migrate once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from neira.config import Settings
from neira.data_dir import DataDirLock
from neira.storage import migrate, tables
from neira.storage.db import Database


def async_url(url: str) -> str:
    return Settings(data_dir="/nonexistent", database_url=url).db_url if url.startswith("postgresql") else url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'neira.db'}"
    return async_url(request.getfixturevalue("pg_url"))


def differences(sync_conn: Any) -> list[Any]:
    return compare_metadata(MigrationContext.configure(sync_conn, opts={"compare_type": True}), tables.metadata)


async def test_an_empty_database_reaches_the_head_with_the_declared_schema(db_url: str) -> None:
    db = Database(db_url)
    try:
        assert await db.create() == (None, migrate.head())
        async with db.engine.connect() as conn:
            assert await conn.run_sync(differences) == []
        assert await db.create() == (migrate.head(), migrate.head())  # a second start has nothing to do
    finally:
        await db.close()


async def test_a_database_from_before_migrations_is_brought_to_the_head(db_url: str) -> None:
    """What start-up made before migrations: the tables of that day, here with one table and one index missing
    (as a data dir from an older version had), and no alembic_version."""
    db = Database(db_url)
    try:
        def old_startup(sync_conn: Any) -> None:
            tables.metadata.create_all(sync_conn, tables=[t for t in tables.metadata.sorted_tables if t is not tables.analysis_runs])
            sync_conn.execute(text("DROP INDEX ix_events_subject_seq"))
            sync_conn.execute(tables.counters.insert().values(name="organ", value=41))

        async with db.engine.begin() as conn:
            await conn.run_sync(old_startup)
        assert await db.create() == (None, migrate.head())
        async with db.engine.connect() as conn:
            assert await conn.run_sync(differences) == []
            names = await conn.run_sync(lambda c: {i["name"] for i in inspect(c).get_indexes("events")})
            assert "ix_events_subject_seq" in names
            kept = (await conn.execute(tables.counters.select())).all()
        assert [(r.name, r.value) for r in kept] == [("organ", 41)]  # what was there stays
    finally:
        await db.close()


async def test_replicas_starting_together_migrate_once(pg_url: str) -> None:
    dbs = [Database(async_url(pg_url)) for _ in range(3)]
    try:
        results = await asyncio.gather(*(db.create() for db in dbs))
        assert sorted(results, key=lambda r: r[0] is not None) == [(None, migrate.head())] + [(migrate.head(), migrate.head())] * 2
    finally:
        for db in dbs:
            await db.close()


def neira(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api.cli", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, cwd=Path(__file__).resolve().parents[2])


def test_neira_migrate_says_where_the_schema_was(tmp_path: Path, pg_url: str) -> None:
    data = str(tmp_path / "data")
    assert neira("migrate", "--data-dir", data).stdout == f"schema at revision {migrate.head()} (from none)\n"
    assert neira("migrate", "--data-dir", data).stdout == f"schema at revision {migrate.head()} (it was already)\n"
    on_pg = {"NEIRA_DATABASE_URL": pg_url}
    assert neira("migrate", "--data-dir", data, env=on_pg).stdout == f"schema at revision {migrate.head()} (from none)\n"


def test_neira_migrate_leaves_a_data_dir_held_by_a_server_alone(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    lock = DataDirLock(tmp_path / "data")
    lock.acquire()
    try:
        done = neira("migrate", "--data-dir", str(tmp_path / "data"))
    finally:
        lock.release()
    assert done.returncode == 3 and "data_dir_locked" in done.stderr
    assert not (tmp_path / "data" / "neira.db").exists()
