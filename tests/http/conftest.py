"""Fixtures of the HTTP tests: `live`, the app served by uvicorn on a free port (see live.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from api.app import create_app
from neira.config import Settings
from neira.core import Core
from tests.conftest import auth
from tests.e2e.server import free_port
from tests.http.live import TIMEOUT, Live


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[Live]:
    core = Core(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(core), host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "server exited"
        await asyncio.sleep(0.01)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=auth(), timeout=TIMEOUT) as http:
        yield Live(port, http, core)
    server.should_exit = True
    await asyncio.wait_for(task, 10)
