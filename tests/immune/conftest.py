"""An HTTP client on a core whose registry holds the immune doubles, and helpers to make stable records."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from neira.core import Core
from tests.conftest import auth, make_settings
from tests.immune.doubles import immune_registry

SAMPLES = [{"input": "ab", "expect": {"equals": "AB"}}, {"input": "cd", "expect": {"equals": "CD"}},
           {"input": "ef", "expect": {"equals": "EF"}}]
HEAL_DELAY_S = 0.5  # long enough to watch a quarantined record get no traffic before its heal ends


def cell(impl: str, version: str = "1.0.0", samples: list[dict[str, Any]] | None = None,
         cell_id: str = "analysis.i_brittle.v1", **analysis: Any) -> dict[str, Any]:
    """A cell template on `impl` (min_runs 5 unless given) with samples."""
    return {"id": cell_id, "version": version, "analysis_type": impl, "links": [],
            "metadata": {"schema": "v1", "adapter": {"impl": impl}, "samples": SAMPLES if samples is None else samples},
            "policies": {"analysis": {"min_runs": 5, **analysis}}}


def make_app(data_dir: Path, heal_delay_s: float = HEAL_DELAY_S, **settings: Any) -> Any:
    core = Core(make_settings(data_dir, run_workers=1, **settings), immune_registry())
    core.factory.heal_delay_s = heal_delay_s
    return create_app(core)


@pytest.fixture
async def iclient(tmp_path: Path) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(make_app(tmp_path / "data", canary_share=0.0)) as c:
        yield c


async def record(client: AsyncTestClient, template: dict[str, Any], approvals: int = 3) -> str:
    """A record of `template`, approved `approvals` times (3: stable)."""
    r = await client.post("/factory/cells", json={"template": template}, headers=auth())
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    for _ in range(approvals):
        r = await client.post(f"/factory/cells/{rid}/approve", headers=auth())
        assert r.status_code == 200, r.text
    return rid


async def run_cell(client: AsyncTestClient, rid: str, text: str) -> Any:
    return await client.post(f"/factory/cells/{rid}/run", json={"input": text}, headers=auth())


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Poll `check` until it answers something truthy (the background work is real: flushes, heals)."""
    end = time.monotonic() + timeout
    while True:
        found = await check()
        if found or time.monotonic() > end:
            assert found, "timed out"
            return found
        await asyncio.sleep(0.02)


async def immune(client: AsyncTestClient) -> dict[str, Any]:
    r = await client.get("/api/neira/immune", headers=auth("viewer"))
    assert r.status_code == 200, r.text
    return r.json()


async def audit(client: AsyncTestClient) -> list[dict[str, Any]]:
    return (await client.get("/api/neira/audit?limit=1000", headers=auth())).json()


async def events(client: AsyncTestClient) -> list[dict[str, Any]]:
    return (await client.get("/api/neira/events?limit=1000", headers=auth())).json()
