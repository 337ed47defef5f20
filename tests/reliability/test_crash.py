"""A real server with 200 organ builds in flight and 100 cell records in every live state (plus disabled) is
killed with SIGKILL and started again on the same data dir. Nothing acknowledged is lost, every state and
every recorded move is legal, the builds finish from where they were (each stage exactly once), and
replaying the audit trail gives exactly the records' current states."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from neira.lifecycle import CELL_TRANSITIONS, CellState
from tests.e2e.server import Server
from tests.reliability.conftest import Store, apage_all, async_client, make_server, page_all, poll

pytestmark = pytest.mark.e2e

BUILDS = 200
RECORDS = 100
DELAY_MS = 4000  # per stage: every build is still in flight when the server is killed, even on a busy machine
ORGAN_TEMPLATES = ["organ.echo.v1", "organ.reverse.v1", "organ.voice.v1", "organ.vision.v1"]
STAGES = ["draft", "canary", "experimental", "stable"]
# record i gets MOVES[i % 5]: it ends draft, canary, experimental, stable or disabled
MOVES = [[], ["approve"], ["approve"] * 2, ["approve"] * 3, ["disable"]]
END_STATE = ["draft", "canary", "experimental", "stable", "disabled"]


def template(i: int) -> dict[str, Any]:
    return {"id": f"analysis.crash_{i:03d}", "version": "1.0.0", "analysis_type": "crash_probe", "links": [],
            "metadata": {"schema": "v1"}}


def legal_step(before: str | None, after: str) -> bool:
    """Whether one recorded move is in the transition table (healing returns to any state it came from)."""
    if before is None:
        return after == CellState.DRAFT
    return before == CellState.HEALING or any(to == after for (frm, _), to in CELL_TRANSITIONS.items() if frm == before)


async def make_records(c: httpx.AsyncClient) -> list[str]:
    async def one(i: int) -> str:
        r = await c.post("/factory/cells", json={"template": template(i)})
        assert r.status_code == 201, r.text
        record_id = r.json()["id"]
        for move in MOVES[i % 5]:
            r = await c.post(f"/factory/cells/{record_id}/{move}", json={"reason": "crash test"})
            assert r.status_code == 200, r.text
        return record_id

    return list(await asyncio.gather(*(one(i) for i in range(RECORDS))))


async def start_builds(c: httpx.AsyncClient) -> list[str]:
    async def one(i: int) -> str:
        r = await c.post("/organs/build", json={"organ_template": ORGAN_TEMPLATES[i % len(ORGAN_TEMPLATES)]})
        assert r.status_code == 201, r.text
        assert r.json()["state"] == "draft"
        return r.json()["organ_id"]

    return list(await asyncio.gather(*(one(i) for i in range(BUILDS))))


def snapshot(server: Server) -> dict[str, Any]:
    with server.client() as c:
        return {
            "records": page_all(c, "/factory/cells"),
            "organs": {o["id"]: o for o in page_all(c, "/organs")},
        }


async def test_sigkill_with_builds_in_flight_loses_nothing(tmp_path: Path, store: Store) -> None:
    server = make_server(tmp_path / "data", store, ORGANS_BUILDER_STAGE_DELAYS=f"{DELAY_MS},{DELAY_MS},{DELAY_MS}")
    server.start(timeout=60)
    try:
        async with async_client(server) as c:
            record_ids = await make_records(c)
            started = time.monotonic()
            organ_ids = await start_builds(c)
            submit_s = time.monotonic() - started
        before = snapshot(server)
    finally:
        server.kill()
    assert len(set(record_ids)) == RECORDS and len(set(organ_ids)) == BUILDS
    building = sorted(i for i in organ_ids if before["organs"][i]["state"] != "stable")
    assert building == sorted(organ_ids), f"builds finished before the kill (submitting took {submit_s:.1f}s)"
    mine = {r["id"]: r for r in before["records"] if r["id"] in record_ids}
    assert [mine[rid]["state"] for rid in record_ids] == [END_STATE[i % 5] for i in range(RECORDS)]

    server.start(timeout=60)
    try:
        after = snapshot(server)
        # cell records have no timers: every hand-moved one is back, whole and unchanged (an organ's cells may
        # already move on with it once its timers resume: graduation)
        assert [r for r in after["records"] if r["id"] in mine] == [r for r in before["records"] if r["id"] in mine]
        assert [r["id"] for r in after["records"]] == [r["id"] for r in before["records"]]
        # organs: same ids and templates; each at the same or a later stage, never back, never failed
        assert set(after["organs"]) == set(before["organs"])
        for organ_id, was in before["organs"].items():
            now = after["organs"][organ_id]
            assert now["template_id"] == was["template_id"]
            assert STAGES.index(now["state"]) >= STAGES.index(was["state"]), (organ_id, was, now)

        async with async_client(server) as c:
            async def all_stable() -> bool:
                organs = await apage_all(c, "/organs")
                return sum(o["state"] == "stable" for o in organs if o["id"] in before["organs"]) == BUILDS

            await poll(all_stable, 30 + 3 * DELAY_MS / 1000, f"{BUILDS} builds to finish after the restart")

        with server.client() as c:
            records = {r["id"]: r for r in page_all(c, "/factory/cells")}
            events = page_all(c, "/api/neira/events", 1000)
            audit = page_all(c, "/api/neira/audit", 5000)
            histories = {rid: c.get(f"/factory/cells/{rid}").json()["history"] for rid in records}
    finally:
        server.stop()

    # every build went through each stage exactly once, across the crash
    stages: dict[str, list[str]] = {}
    for e in events:
        if e["type"] == "organ.stage":
            stages.setdefault(e["subject"], []).append(e["data"]["state"])
    assert {s: stages.get(f"organ:{s}") for s in organ_ids} == {s: STAGES for s in organ_ids}
    builds_audited = sorted(a["subject"] for a in audit if a["action"] == "organ.build")
    assert builds_audited == sorted(f"organ:{s}" for s in organ_ids)

    # every record's history is a legal chain that ends in its current state
    # every record survived; the hand-moved ones are as they were, the organs' cells only moved forward with
    # their organs (an organ's promotions take its cells along: graduation)
    assert set(records) == {r["id"] for r in before["records"]}
    for was in before["records"]:
        now = records[was["id"]]
        if was["id"] in mine:
            assert now == was
            continue
        assert (now["template_id"], now["version"], now["backend"]) == (was["template_id"], was["version"], was["backend"])
        assert STAGES.index(now["state"]) >= STAGES.index(was["state"]), (was, now)
    for rid, history in histories.items():
        steps = [(h["from"], h["to"]) for h in history]
        assert all(legal_step(b, a) for b, a in steps), (rid, steps)
        assert [b for b, _ in steps] == [None, *(a for _, a in steps[:-1])], (rid, steps)
        assert steps[-1][1] == records[rid]["state"]

    # replaying the audit trail gives the same moves, and so the same current state, for every record
    audited: dict[str, list[tuple[str | None, str]]] = {}
    for a in audit:
        if a["subject"].startswith("cell:"):
            audited.setdefault(a["subject"].removeprefix("cell:"), []).append((a["before"], a["after"]))
    assert audited == {rid: [(h["from"], h["to"]) for h in histories[rid]] for rid in records}
    assert {rid: moves[-1][1] for rid, moves in audited.items()} == {rid: r["state"] for rid, r in records.items()}
