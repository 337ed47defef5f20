"""Input PostgreSQL cannot hold (contract §9 keeps every guarantee, the error body among them): a NUL
character, which SQLite stores and PostgreSQL's text refuses, is the client's 400, never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from neira.core import Core
from tests.conftest import auth, make_settings


@pytest.fixture
async def client(tmp_path: Path, pg_url: str) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(create_app(Core(make_settings(tmp_path / "a", database_url=pg_url)))) as c:
        yield c


async def test_a_nul_character_is_a_400_in_the_contracts_shape(client: AsyncTestClient) -> None:
    for path, body in (("/api/neira/safe-mode", {"enabled": True, "reason": "a\u0000b"}),
                       ("/organs/run", {"organ": "x\u0000y", "input": "hi"})):
        r = await client.post(path, json=body, headers=auth())
        assert r.status_code == 400, (path, r.text)
        assert r.json()["code"] == "invalid_request"
    safe = await client.get("/api/neira/safe-mode", headers=auth())
    assert safe.json()["enabled"] is False  # nothing was written
