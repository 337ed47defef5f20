"""Reliability fixtures: a real `neira serve` subprocess with all three role tokens, async clients whose
connection pool is large enough that concurrent requests really are concurrent, and paging helpers for
the append-only trails.

Every module here runs twice: on the embedded SQLite default and on PostgreSQL (a fresh database of the
session's throwaway cluster, contract §9): the `store` fixture says which, and `make_server` takes it."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN, OPERATOR, ROLE_TOKENS, VIEWER, new_pg_database
from tests.e2e.server import Server
from tests.postgres.cluster import Cluster

ROLE_ENV = {"NEIRA_OPERATOR_TOKEN": OPERATOR, "NEIRA_VIEWER_TOKEN": VIEWER}


class Store:
    """Where a test's server keeps its rows: the data dir's SQLite file, or a PostgreSQL database."""

    def __init__(self, kind: str, cluster: Cluster | None = None) -> None:
        self.kind, self.cluster = kind, cluster
        self._url: str | None = None

    def url(self) -> str | None:
        """A fresh database for the next server on PostgreSQL (each test's server starts empty); None on SQLite."""
        if self.cluster is None:
            return None
        self._url = new_pg_database(self.cluster)
        return self._url

    def one(self, data_dir: Path, sql: str, *args: str) -> int:
        """The first column of the first row of a query (`?` for each argument), read beside the server."""
        if self.cluster is None:
            with sqlite3.connect(data_dir / "neira.db") as conn:
                return conn.execute(sql, args).fetchone()[0]
        assert self._url is not None
        for arg in args:  # the tests' own ids: quoted as literals for psql
            sql = sql.replace("?", "'" + arg.replace("'", "''") + "'", 1)
        return int(self.cluster.psql(sql, database=self._url.rsplit("/", 1)[1]).strip())


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Store:
    """The module's database kind; PostgreSQL starts the session's cluster (skips locally without it)."""
    if request.param == "sqlite":
        return Store("sqlite")
    return Store("postgresql", request.getfixturevalue("pg_cluster"))


def make_server(data_dir: Path, store: Store | None = None, **env: str) -> Server:
    """A server on `data_dir` (and on `store`'s database) that knows the three role tokens of tests/conftest.py."""
    url = store.url() if store is not None else None
    return Server(data_dir, token=ADMIN, env={**ROLE_ENV, **({"NEIRA_DATABASE_URL": url} if url else {}), **env})


def headers(role: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {ROLE_TOKENS[role]}"}


def async_client(server: Server, role: str = "admin", connections: int = 64) -> httpx.AsyncClient:
    """An async client with `connections` parallel connections (httpx's default pool would queue them)."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=server.url, headers=headers(role), timeout=30, limits=limits)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, store: Store) -> Iterator[Server]:
    """One real server for the module (each test makes its own, distinct records)."""
    s = make_server(tmp_path_factory.mktemp("server") / "data", store)
    s.start(timeout=60)
    try:
        yield s
    finally:
        if s.proc is not None:
            s.stop()


def page_all(client: httpx.Client, path: str, limit: int = 1000) -> list[dict[str, Any]]:
    """Every item of a list route, oldest first, following its `Link: <…>; rel="next"` pages."""
    out: list[dict[str, Any]] = []
    r = client.get(path, params={"limit": min(limit, 1000)})
    while True:
        assert r.status_code == 200, r.text
        out.extend(r.json())
        if "next" not in r.links:
            return out
        r = client.get(r.links["next"]["url"])


async def apage_all(client: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
    """page_all for an async client."""
    out: list[dict[str, Any]] = []
    r = await client.get(path, params={"limit": 1000})
    while True:
        assert r.status_code == 200, r.text
        out.extend(r.json())
        if "next" not in r.links:
            return out
        r = await client.get(r.links["next"]["url"])


async def poll(check: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    """Await `check()` until it returns something truthy, within `timeout` seconds (polling, not sleeping
    to hide a race)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        await asyncio.sleep(0.05)
