"""A served app for HTTP tests that need real sockets: uvicorn serves the app in the test's own event loop, and
`websockets` and httpx clients talk to it over TCP (the `live` fixture is in conftest.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from neira.core import Core

VOICE = "organ.voice.v1"
TIMEOUT = 5


class Live:
    """A served app: its HTTP client and WebSocket URL."""

    def __init__(self, port: int, http: httpx.AsyncClient, core: Core) -> None:
        self.port, self.http, self.core = port, http, core

    def ws(self, path: str) -> Any:
        return connect(f"ws://127.0.0.1:{self.port}{path}", open_timeout=TIMEOUT)

    async def build(self) -> str:
        r = await self.http.post("/organs/build", json={"organ_template": VOICE})
        assert r.status_code == 201, r.text
        return r.json()["organ_id"]

    async def move(self, organ_id: str, state: str) -> None:
        r = await self.http.post(f"/organs/{organ_id}/status", json={"state": state})
        assert r.status_code == 200, r.text

    async def hold(self, organ_id: str) -> str:
        """Stop the organ's automatic progression where it is (a manual move to its own state); returns it."""
        while True:  # the build may take its next step between the read and the move: then hold there
            state = (await self.http.get(f"/organs/{organ_id}/status")).json()["state"]
            r = await self.http.post(f"/organs/{organ_id}/status", json={"state": state})
            if r.status_code == 200:
                return state
            assert r.json()["code"] == "invalid_transition", r.text

    async def restart(self, organ_id: str) -> str:
        """Rebuild the organ (back to draft, by the transition table) and hold it; returns where it holds."""
        r = await self.http.post(f"/organs/{organ_id}/rebuild")
        assert r.status_code == 200, r.text
        return await self.hold(organ_id)


async def frame(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))


async def close_code(live: Live, path: str) -> int:
    async with live.ws(path) as ws:
        with pytest.raises(ConnectionClosed) as info:
            await frame(ws)
    assert info.value.rcvd is not None
    return info.value.rcvd.code
