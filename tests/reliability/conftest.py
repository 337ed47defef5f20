"""Reliability fixtures: a real `neira serve` subprocess with all three role tokens, async clients whose
connection pool is large enough that concurrent requests really are concurrent, and paging helpers for
the append-only trails."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN, OPERATOR, ROLE_TOKENS, VIEWER
from tests.e2e.server import Server

ROLE_ENV = {"NEIRA_OPERATOR_TOKEN": OPERATOR, "NEIRA_VIEWER_TOKEN": VIEWER}


def make_server(data_dir: Path, **env: str) -> Server:
    """A server on `data_dir` that knows the admin, operator and viewer tokens of tests/conftest.py."""
    return Server(data_dir, token=ADMIN, env={**ROLE_ENV, **env})


def headers(role: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {ROLE_TOKENS[role]}"}


def async_client(server: Server, role: str = "admin", connections: int = 64) -> httpx.AsyncClient:
    """An async client with `connections` parallel connections (httpx's default pool would queue them)."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=server.url, headers=headers(role), timeout=30, limits=limits)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real server for the module (each test makes its own, distinct records)."""
    s = make_server(tmp_path_factory.mktemp("server") / "data")
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
