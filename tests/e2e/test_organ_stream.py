"""`WS /organs/{id}/stream` of a real server under churn: subscribers that join at random moments of many short
builds each see the final state and every stage from their snapshot on, in order (issue 14, point 10)."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from tests.e2e.server import Server

STAGES = ["draft", "canary", "experimental", "stable"]
BUILDS, SUBSCRIBERS = 60, 8
FRAME_WAIT = 10  # seconds; a build of three 1 ms stages that sends nothing for this long has lost a frame


async def watch(server: Server, organ_id: str, after: float) -> list[str]:
    """Join the organ's stream `after` seconds from now; the states it sends until the build ends."""
    await asyncio.sleep(after)  # a random join moment is the point of the test, not a wait for a result
    url = f"ws://127.0.0.1:{server.port}/organs/{organ_id}/stream?token={server.token}"
    frames: list[dict] = []
    async with connect(url) as ws:
        while not frames or frames[-1]["state"] not in ("stable", "failed"):
            try:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), FRAME_WAIT)))
            except TimeoutError:
                return [f["state"] for f in frames] + ["<no final frame>"]
    seqs = [f["seq"] for f in frames]
    return [f["state"] for f in frames] + ([] if seqs == sorted(set(seqs)) else ["<seq out of order>"])


async def churn(server: Server) -> list[list[str]]:
    rng = random.Random(14)
    watchers = []
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=10) as http:
        for _ in range(BUILDS):
            r = await http.post("/organs/build", json={"organ_template": "organ.voice.v1"})
            assert r.status_code == 201, r.text
            organ_id = r.json()["organ_id"]
            watchers += [asyncio.ensure_future(watch(server, organ_id, rng.uniform(0, 0.01))) for _ in range(SUBSCRIBERS)]
        return list(await asyncio.gather(*watchers))


def test_every_subscriber_sees_each_stage_from_its_snapshot_on(tmp_path: Path) -> None:
    with Server(tmp_path / "data", env={"ORGANS_BUILDER_STAGE_DELAYS": "1,1,1"}) as server:
        seen = asyncio.run(churn(server))
    wrong = [states for states in seen if states != STAGES[STAGES.index(states[0]):]]
    assert not wrong, f"{len(wrong)} of {len(seen)} subscribers missed a stage: {wrong[:5]}"
