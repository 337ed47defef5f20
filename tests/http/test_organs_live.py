"""The organ routes on a real server (the `live` fixture, tests/http/conftest.py): the builder's timers, the
stream and the clients share the test's event loop.
Covers `WS /organs/{id}/stream` and 1,000 concurrent `POST /organs/build` requests."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.conftest import ADMIN, VIEWER
from tests.http.live import VOICE, Live, close_code, frame

STAGES = ["draft", "canary", "experimental", "stable"]


async def test_refusals(live: Live) -> None:
    organ_id = await live.build()
    assert await close_code(live, f"/organs/{organ_id}/stream") == 4401
    assert await close_code(live, f"/organs/{organ_id}/stream?token=wrong") == 4401
    assert await close_code(live, f"/organs/organ-404/stream?token={ADMIN}") == 4404
    await live.http.post("/api/neira/capabilities/organs_builder", json={"state": "disabled"})
    assert await close_code(live, f"/organs/{organ_id}/stream?token={ADMIN}") == 4403


async def test_closing_the_gate_closes_open_streams(live: Live) -> None:
    organ_id = await live.build()
    async with live.ws(f"/organs/{organ_id}/stream?token={ADMIN}") as ws:
        await frame(ws)
        await live.http.post("/api/neira/capabilities/organs_builder", json={"state": "disabled"})
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await frame(ws)
    assert info.value.rcvd is not None and info.value.rcvd.code == 4403


async def test_frames_in_order_and_isolated(live: Live) -> None:
    first, second = await live.build(), await live.build()
    for organ_id in (first, second):  # hold both in draft: every later change is one the test makes
        while await live.hold(organ_id) != "draft":
            await live.restart(organ_id)
    async with live.ws(f"/organs/{first}/stream?token={VIEWER}") as ws1, live.ws(f"/organs/{second}/stream?token={VIEWER}") as ws2:
        snap1, snap2 = await frame(ws1), await frame(ws2)
        assert (snap1["id"], snap1["state"], snap2["id"], snap2["state"]) == (first, "draft", second, "draft")
        for target in ("canary", "experimental", "stable"):
            await live.move(first, target)
        await live.move(second, "failed")
        frames = [await frame(ws1) for _ in range(3)]
        assert [(f["id"], f["state"]) for f in frames] == [(first, "canary"), (first, "experimental"), (first, "stable")]
        seqs = [snap1["seq"], *(f["seq"] for f in frames)]
        assert seqs == sorted(set(seqs))
        only = await frame(ws2)  # none of the first organ's frames reached this socket
        assert (only["id"], only["state"]) == (second, "failed") and only["seq"] > frames[-1]["seq"]


async def test_follows_an_automatic_build(live: Live) -> None:
    organ_id = await live.build()
    async with live.ws(f"/organs/{organ_id}/stream?token={ADMIN}") as ws:
        frames = [await frame(ws)]
        while frames[-1]["state"] != "stable":
            frames.append(await frame(ws))
    states = [f["state"] for f in frames]
    assert states == STAGES[STAGES.index(states[0]):]
    assert [f["seq"] for f in frames] == sorted({f["seq"] for f in frames})


async def test_a_client_that_never_reads_does_not_hold_up_builds(live: Live) -> None:
    """A subscriber that stops reading; builds still finish on time, and when it reads again it ends on
    the organ's current state (the lag itself is covered in tests/unit/test_organs_stream.py)."""
    organ_id = await live.build()
    async with live.ws(f"/organs/{organ_id}/stream?token={ADMIN}") as stalled:
        for _ in range(40):  # each round held in draft first: with 20 ms stages a build may be past canary already
            while await live.restart(organ_id) != "draft":  # the fresh build may step on before it is held
                pass
            await live.move(organ_id, "canary")
            await live.move(organ_id, "experimental")
        await live.move(organ_id, "stable")
        ids = [(await live.http.post("/organs/build", json={"organ_template": VOICE})).json()["organ_id"] for _ in range(50)]
        deadline = asyncio.get_running_loop().time() + 10
        while {o["state"] for o in (await live.http.get("/organs?limit=1000")).json() if o["id"] in ids} != {"stable"}:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        frames = [await frame(stalled)]
        while frames[-1]["state"] != "stable":
            frames.append(await frame(stalled))
        seqs = [f["seq"] for f in frames]
        assert seqs == sorted(set(seqs)) and all(f["id"] == organ_id for f in frames)


async def test_thousand_http_builds_from_fifty_clients_reach_stable(live: Live) -> None:
    """1,000 builds over HTTP, 50 requests in flight at a time (httpx's pool turns quadratic with
    thousands queued; the builder's own 1,000-at-once test is tests/unit/test_organs.py)."""
    started = asyncio.get_running_loop().time()
    gate = asyncio.Semaphore(50)

    async def post() -> httpx.Response:
        async with gate:
            return await live.http.post("/organs/build", json={"organ_template": VOICE})

    answers = await asyncio.gather(*[post() for _ in range(1000)])
    assert {a.status_code for a in answers} == {201}
    ids = {a.json()["organ_id"] for a in answers}
    assert len(ids) == 1000
    while True:
        states = {o["id"]: o["state"] for o in (await live.http.get("/organs?limit=1000")).json()}
        if all(states[i] == "stable" for i in ids):
            break
        assert asyncio.get_running_loop().time() - started < 20, "builds did not finish in time"
        await asyncio.sleep(0.02)
