"""The immune system on traffic (contract §7): a stable cell whose error rate passes `max_error_rate` over its last
`min_runs` runs is quarantined, gets no traffic, and is healed or rolled back, the measurement in the audit."""

from __future__ import annotations

import asyncio
from typing import Any

from pathlib import Path

from litestar.testing import AsyncTestClient

from tests.conftest import auth
from tests.immune.conftest import SAMPLES, audit, cell, events, immune, make_app, record, run_cell, until

REASON = "error_rate 0.20 > max_error_rate 0.01 over 5 runs (1 failed)"


def organ_template(name: str = "ibrittle") -> dict[str, Any]:
    return {"id": f"organ.{name}.v1", "version": "1.0.0", "roles": ["test"], "cells": ["analysis.i_brittle.v1"],
            "pathways": [{"name": "main", "cells": ["analysis.i_brittle.v1"]}], "policies": {"stage": "draft", "hitl": False},
            "metadata": {"schema": "v1"}}


async def build(client: AsyncTestClient) -> str:
    r = await client.post("/organs/build", json={"organ_template": organ_template()}, headers=auth())
    assert r.status_code == 201, r.text
    return r.json()["organ_id"]


async def fail_once_in_five(client: AsyncTestClient, rid: str) -> None:
    for text in ("a", "b", "c", "d"):
        assert (await run_cell(client, rid, text)).json()["ok"] is True
    r = (await run_cell(client, rid, "boom")).json()
    assert (r["ok"], r["error"]["code"]) == (False, "cell_failed")


async def held(client: AsyncTestClient) -> list[dict[str, Any]]:
    return (await immune(client))["quarantined"]


def of(rows: list[dict[str, Any]], subject: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["subject"] == subject]


async def test_a_failing_stable_cell_is_quarantined_gets_no_traffic_and_heals(iclient: AsyncTestClient) -> None:
    rid = await record(iclient, cell("brittle"))
    organ = await build(iclient)
    await fail_once_in_five(iclient, rid)
    [q] = await until(lambda: held(iclient))
    assert (q["record_id"], q["cause"], q["reason"], q["state"]) == (rid, "error_rate", REASON, "healing")
    assert q["measurement"] == {"metric": "error_rate", "value": 0.2, "threshold": 0.01, "runs": 5, "errors": 1}

    r = await run_cell(iclient, rid, "ab")  # no traffic while quarantined, with the reason
    assert (r.status_code, r.json()["code"]) == (409, "not_runnable")
    assert f"cell record {rid} is quarantined: {REASON}" in r.json()["reason"]
    r = await iclient.post(f"/organs/{organ}/run", json={"input": "ab"}, headers=auth())
    assert (r.status_code, r.json()["code"]) == (409, "not_runnable")  # no earlier stable version to run instead
    assert "no earlier stable version of analysis.i_brittle.v1" in r.json()["reason"]

    await until(lambda: _empty(iclient))  # the heal's check ran the samples: all passed, so it is back
    assert (await iclient.get(f"/factory/cells/{rid}", headers=auth())).json()["state"] == "stable"
    assert (await run_cell(iclient, rid, "ab")).json()["output"] == {"type": "text", "text": "AB"}

    trail = [(a["action"], a["reason"]) for a in of(await audit(iclient), f"cell:{rid}")][-4:]
    assert trail == [("immune.quarantine", REASON), ("cell.heal", f"quarantined: {REASON}"), ("cell.heal_ok", "checks passed"),
                     ("immune.release", "healed: samples: 3 of 3 passed; back to stable")]
    kinds = [(e["type"], e["data"].get("phase")) for e in of(await events(iclient), f"cell:{rid}") if e["type"] != "cell.transition"]
    assert kinds == [("immune.quarantine", None), ("factory.auto_heal", "started"), ("factory.auto_heal", "finished"),
                     ("immune.release", None)]


async def _empty(client: AsyncTestClient) -> bool:
    return not await held(client)


async def test_a_cell_whose_heal_fails_is_rolled_back_and_runs_go_to_the_previous_stable(iclient: AsyncTestClient) -> None:
    v1 = await record(iclient, cell("brittle"))
    v2 = await record(iclient, cell("brittle", "2.0.0", samples=[*SAMPLES[:2], {"input": "boom", "expect": {"equals": "BOOM"}}]))
    assert (await iclient.get(f"/factory/cells/{v1}", headers=auth())).json()["state"] == "deprecated"
    organ = await build(iclient)
    await fail_once_in_five(iclient, v2)
    await until(lambda: held(iclient))

    r = (await iclient.post(f"/organs/{organ}/run", json={"input": "ab"}, headers=auth())).json()
    assert (r["ok"], r["output"]["text"], r["trace"][0]["record_id"]) == (True, "AB", v1)  # the previous stable serves

    async def rolled_back() -> bool:
        return (await iclient.get(f"/factory/cells/{v2}", headers=auth())).json()["state"] == "rolled_back"

    await until(rolled_back)
    await until(lambda: _empty(iclient))
    assert (await iclient.get(f"/factory/cells/{v1}", headers=auth())).json()["state"] == "stable"
    r = (await iclient.post(f"/organs/{organ}/run", json={"input": "cd"}, headers=auth())).json()
    assert (r["ok"], r["trace"][0]["record_id"]) == (True, v1)

    trail = {a["action"]: a for a in of(await audit(iclient), f"cell:{v2}")}
    assert trail["immune.quarantine"]["reason"] == REASON
    assert trail["cell.heal_fail"]["reason"].startswith("samples: 2 of 3 passed (sample 2: ")
    rollback = trail["cell.auto_rollback"]
    assert (rollback["actor"], rollback["before"], rollback["after"]) == ("immune", "failed", "rolled_back")
    assert rollback["reason"].startswith(f"{REASON}; the heal failed: samples: 2 of 3 passed")
    assert trail["immune.release"]["reason"] == f"rolled back to {v1} after the heal failed"
    [rolled] = [e["data"] for e in of(await events(iclient), f"cell:{v2}") if e["type"] == "factory.auto_rollback"]
    assert (rolled["restored"], rolled["state"]) == (v1, "rolled_back")


async def test_refused_inputs_are_the_callers_and_do_not_count(iclient: AsyncTestClient) -> None:
    rid = await record(iclient, cell("brittle"))
    for _ in range(6):  # an image to a text cell: input the caller got wrong, not a sick cell
        r = await iclient.post(f"/factory/cells/{rid}/run", json={"input": {"type": "json", "data": {}}}, headers=auth())
        assert r.json()["error"]["code"] == "type_mismatch"
    for text in ("a", "b", "c", "d", "e"):
        assert (await run_cell(iclient, rid, text)).json()["ok"] is True
    await asyncio.sleep(0.5)  # traffic is written every 0.2 s: a quarantine would show by now
    assert await held(iclient) == []


async def test_the_immune_route_needs_a_token(iclient: AsyncTestClient) -> None:
    assert (await iclient.get("/api/neira/immune")).status_code == 401
    body = await immune(iclient)
    check = body["last_integrity_check"]
    assert body["quarantined"] == [] and check["failed"] == [] and check["checked"] >= 10 and check["at"] > 0


async def test_a_quarantine_holds_across_a_restart_and_its_heal_goes_on(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with AsyncTestClient(make_app(data, heal_delay_s=5.0, canary_share=0.0)) as client:  # stops mid-heal
        rid = await record(client, cell("brittle"))
        await fail_once_in_five(client, rid)
        await until(lambda: held(client))
    async with AsyncTestClient(make_app(data, heal_delay_s=0.2, canary_share=0.0)) as client:
        [q] = await held(client)  # the row holds: still out of traffic after the restart
        assert (q["record_id"], q["reason"], q["state"]) == (rid, REASON, "healing")
        assert (await run_cell(client, rid, "ab")).status_code == 409
        await until(lambda: _empty(client))  # the factory's start finished the heal, the immune system released it
        assert (await client.get(f"/factory/cells/{rid}", headers=auth())).json()["state"] == "stable"
        actions = [a["action"] for a in of(await audit(client), f"cell:{rid}") if a["action"].startswith("immune.")]
        assert actions == ["immune.quarantine", "immune.release"]
