"""`/organs` over HTTP and WebSocket: status codes, bodies, roles, the closed gate, and the live stream."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import auth

VOICE = "organ.voice.v1"
STAGES = ["draft", "canary", "experimental", "stable"]


async def build(client: AsyncTestClient, template: Any = VOICE, role: str = "admin") -> str:
    r = await client.post("/organs/build", json={"organ_template": template}, headers=auth(role))
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "draft"
    return r.json()["organ_id"]


async def state(client: AsyncTestClient, organ_id: str) -> str:
    r = await client.get(f"/organs/{organ_id}/status", headers=auth())
    assert r.status_code == 200, r.text
    return r.json()["state"]


async def until(client: AsyncTestClient, organ_id: str, wanted: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while await state(client, organ_id) != wanted:
        assert time.monotonic() < deadline, f"{organ_id} never reached {wanted}"
        await asyncio.sleep(0.01)


async def test_build_progresses_and_status_shape(client: AsyncTestClient) -> None:
    organ_id = await build(client)
    await until(client, organ_id, "stable")
    body = (await client.get(f"/organs/{organ_id}/status", headers=auth("viewer"))).json()
    assert body["id"] == organ_id and body["state"] == "stable"
    assert [c["id"] for c in body["cells"]] == ["analysis.text_normalize.v1", "analysis.text_to_phonemes.v1", "analysis.speak_adapter.v1"]
    assert {"attempts", "stage_times", "build_duration_ms"} <= body["metrics"].keys()
    assert list(body["metrics"]["stage_times"]) == STAGES
    listed = (await client.get("/organs", headers=auth("viewer"))).json()
    assert listed == [{"id": organ_id, "state": "stable", "template_id": VOICE, "updated_at": listed[0]["updated_at"]}]


async def test_a_settled_status_follows_every_later_change(client: AsyncTestClient) -> None:
    """A stable organ's status is remembered between polls; a move of one of its cells, a manual move of
    the organ and a closed gate all show at once."""
    organ_id = await build(client, "organ.echo.v1")
    await until(client, organ_id, "stable")
    first = (await client.get(f"/organs/{organ_id}/status", headers=auth())).json()
    assert (await client.get(f"/organs/{organ_id}/status", headers=auth())).json() == first
    record_id = first["cells"][0]["record_id"]
    assert first["cells"][0]["state"] == "stable"  # its cells went up with it (contract §7)
    assert (await client.post(f"/factory/cells/{record_id}/disable", headers=auth())).status_code == 200
    after_disable = (await client.get(f"/organs/{organ_id}/status", headers=auth())).json()
    assert after_disable["cells"][0]["state"] == "disabled" and after_disable["state"] == "stable"
    r = await client.post(f"/organs/{organ_id}/status", json={"state": "failed", "reason": "drill"}, headers=auth())
    assert r.status_code == 200
    assert (await client.get(f"/organs/{organ_id}/status", headers=auth())).json()["state"] == "failed"
    await client.post("/api/neira/capabilities/organs_builder", json={"state": "disabled"}, headers=auth())
    r = await client.get(f"/organs/{organ_id}/status", headers=auth())  # readable closed: a held build says why
    assert (r.status_code, r.json()["state"], r.json()["waiting_for"]) == (200, "failed", None)


async def test_build_inline_template_and_dryrun(client: AsyncTestClient) -> None:
    template = {"id": "organ.mini.v1", "version": "1.0.0", "cells": ["analysis.summarize.v1"], "metadata": {"schema": "v1"}}
    r = await client.post("/organs/build", json={"organ_template": template, "dryrun": True}, headers=auth())
    assert r.status_code == 200
    body = r.json()
    assert (body["organ_id"], body["dryrun"], body["ok"]) == (None, True, True)
    assert {"report", "plan"} <= body.keys()
    assert body["report"]["risks"] == [{  # shaped like the factory dry-run's risks
        "code": "new_draft_record", "severity": "warning", "id": "analysis.summarize.v1",
        "message": "analysis.summarize.v1 will be a new draft record: the organ would run an untested cell"}]
    assert (await client.get("/organs", headers=auth())).json() == []
    assert await build(client, template) == "organ-1"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"organ_template": {"id": "organ.bad.v1", "version": "1.0", "cells": []}}, 400, "invalid_template"),
        ({"organ_template": "organ.nothing.v1"}, 404, "not_found"),
        ({"organ_template": VOICE, "unknown": True}, 400, "invalid_request"),
        ({"template": VOICE}, 400, "invalid_request"),
    ],
)
async def test_build_errors(client: AsyncTestClient, body: dict, status: int, code: str) -> None:
    r = await client.post("/organs/build", json=body, headers=auth())
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    if code == "invalid_template":
        assert {e["path"] for e in r.json()["errors"]} == {"$.version", "$.cells"}


async def test_malformed_json(client: AsyncTestClient) -> None:
    r = await client.post("/organs/build", content=b"{nope", headers={**auth(), "Content-Type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request")


async def test_idempotency_key_header(client: AsyncTestClient) -> None:
    headers = {**auth(), "Idempotency-Key": "abc"}
    first = await client.post("/organs/build", json={"organ_template": VOICE}, headers=headers)
    again = await client.post("/organs/build", json={"organ_template": VOICE}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201) and first.json() == again.json()
    other = await client.post("/organs/build", json={"organ_template": "organ.echo.v1"}, headers=headers)
    assert (other.status_code, other.json()["code"]) == (409, "conflict")


async def test_idempotency_key_length_is_checked_like_the_factory(client: AsyncTestClient) -> None:
    for key in ("k" * 201, ""):
        headers = {**auth(), "Idempotency-Key": key}
        r = await client.post("/organs/build", json={"organ_template": VOICE}, headers=headers)
        assert (r.status_code, r.json()["code"]) == (400, "invalid_request")
        f = await client.post("/factory/cells", json={"template": "analysis.summarize.v1"}, headers=headers)
        assert (f.status_code, f.json()["reason"]) == (400, r.json()["reason"])
    assert (await client.get("/organs", headers=auth())).json() == []
    r = await client.post("/organs/build", json={"organ_template": VOICE}, headers={**auth(), "Idempotency-Key": "k" * 200})
    assert r.status_code == 201


async def test_builds_sent_together_are_each_a_plan_of_their_own(client: AsyncTestClient) -> None:
    """Builds of one template sent at once (committed together): the first plan creates the draft record of the
    cell the catalog lacks and the others reuse it; every organ.build is audited with its own gate decision, and
    the record with the gate decision that let the factory create it. A repeated Idempotency-Key is one organ."""
    template = {"id": "organ.together.v1", "version": "1.0.0", "cells": ["analysis.together.v1"], "metadata": {"schema": "v1"}}
    keyed = {**auth(), "Idempotency-Key": "together"}
    answers = await asyncio.gather(
        *(client.post("/organs/build", json={"organ_template": template}, headers=auth()) for _ in range(6)),
        *(client.post("/organs/build", json={"organ_template": template}, headers=keyed) for _ in range(3)))
    assert [r.status_code for r in answers] == [201] * 9, [r.text for r in answers]
    ids = [r.json()["organ_id"] for r in answers]
    assert len(set(ids[:6])) == 6 and len(set(ids[6:])) == 1 and ids[6] not in ids[:6]
    statuses = [(await client.get(f"/organs/{i}/status", headers=auth())).json() for i in set(ids)]
    records = {c["record_id"] for s in statuses for c in s["cells"]}
    assert len(records) == 1, statuses
    [record_id] = records
    record = (await client.get(f"/factory/cells/{record_id}", headers=auth())).json()
    assert record["template_id"] == "analysis.together.v1"
    assert record["history"][0]["reason"].startswith("not in the catalog: a generated adapter template 0.1.0; created for organ organ-")
    audit = (await client.get("/api/neira/audit?limit=1000", headers=auth())).json()
    builds = [a for a in audit if a["action"] == "organ.build"]
    assert sorted(a["subject"] for a in builds) == sorted(f"organ:{i}" for i in set(ids))
    gate_ids = [a["decision_ids"][0] for a in builds]
    assert len(set(gate_ids)) == 7 and all(g.startswith("dec-") for g in gate_ids)
    created = [a for a in audit if a["subject"] == f"cell:{record_id}"]
    assert created and created[0]["decision_ids"], created


async def hold(client: AsyncTestClient, organ_id: str) -> str:
    """An operator holds the build where it is (a manual move to its own state); returns that state."""
    while True:  # the build may step on between the read and the move: then it is held one stage later
        state = await status_of(client, organ_id)
        r = await client.post(f"/organs/{organ_id}/status", json={"state": state, "reason": "hold"}, headers=auth("operator"))
        if r.status_code == 200:
            assert r.json() == {"id": organ_id, "state": state}
            return state
        assert (r.status_code, r.json()["code"]) == (409, "invalid_transition"), r.text


async def status_of(client: AsyncTestClient, organ_id: str) -> str:
    return (await client.get(f"/organs/{organ_id}/status", headers=auth())).json()["state"]


async def test_manual_status_cancel_rebuild(client: AsyncTestClient) -> None:
    organ_id = await build(client)
    held = await hold(client, organ_id)
    rebuilds = 0
    while held == "stable":  # the whole build finished before the hold (a loaded machine): start it again
        await client.post(f"/organs/{organ_id}/rebuild", headers=auth())
        rebuilds += 1
        held = await hold(client, organ_id)
    r = await client.post(f"/organs/{organ_id}/status", json={"state": "retired"}, headers=auth())
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request")
    r = await client.delete(f"/organs/{organ_id}/build", headers=auth())
    assert (r.status_code, r.json()) == (200, {"id": organ_id, "state": "failed"})
    r = await client.delete(f"/organs/{organ_id}/build", headers=auth())
    assert (r.status_code, r.json()["code"], r.json()["from"], r.json()["to"]) == (409, "invalid_transition", "failed", "failed")
    r = await client.post(f"/organs/{organ_id}/rebuild", headers=auth())
    assert (r.status_code, r.json()) == (200, {"organ_id": organ_id, "state": "draft"})
    await until(client, organ_id, "stable")
    status = (await client.get(f"/organs/{organ_id}/status", headers=auth())).json()
    actions = [a["action"] for a in (await client.get("/api/neira/audit", headers=auth())).json() if a["subject"] == f"organ:{organ_id}"]
    assert status["metrics"]["attempts"] == 2 + rebuilds
    first = ["organ.build", "organ.status", *(["organ.rebuild", "organ.status"] * rebuilds)]
    assert actions == [*first, "organ.cancel", "organ.rebuild"]


async def test_a_disabled_cell_refuses_build_rebuild_and_fails_the_dryrun(client: AsyncTestClient) -> None:
    organ_id = await build(client, "organ.echo.v1")
    await until(client, organ_id, "stable")
    record_id = (await client.get(f"/organs/{organ_id}/status", headers=auth())).json()["cells"][0]["record_id"]
    r = await client.post(f"/factory/cells/{record_id}/disable", headers=auth())
    assert r.json()["state"] == "disabled"
    r = await client.post(f"/organs/{organ_id}/rebuild", headers=auth())
    assert (r.status_code, r.json()["code"], r.json()["cell"], r.json()["record_id"]) == (409, "conflict", "action.echo.v1", record_id)
    assert f"only a disabled record ({record_id})" in r.json()["reason"]
    assert await state(client, organ_id) == "stable"  # the refused rebuild changed nothing
    r = await client.post("/organs/build", json={"organ_template": "organ.echo.v1"}, headers=auth())
    assert (r.status_code, r.json()["code"]) == (409, "conflict")
    r = await client.post("/organs/build", json={"organ_template": "organ.echo.v1", "dryrun": True}, headers=auth())
    assert r.status_code == 200 and r.json()["ok"] is False
    [risk] = r.json()["report"]["risks"]
    assert (risk["code"], risk["severity"], risk["id"]) == ("conflict", "error", "action.echo.v1")
    assert f"only a disabled record ({record_id})" in risk["message"]
    assert [o["id"] for o in (await client.get("/organs", headers=auth())).json()] == [organ_id]


@pytest.mark.parametrize(
    ("method", "path", "json"),
    [
        ("GET", "/organs/organ-77/status", None),
        ("POST", "/organs/organ-77/status", {"state": "stable"}),
        ("DELETE", "/organs/organ-77/build", None),
        ("POST", "/organs/organ-77/rebuild", None),
    ],
)
async def test_unknown_organ_is_404(client: AsyncTestClient, method: str, path: str, json: Any) -> None:
    r = await client.request(method, path, json=json, headers=auth())
    assert (r.status_code, r.json()["code"]) == (404, "not_found")


ROUTES = [
    ("POST", "/organs/build", {"organ_template": VOICE}),
    ("POST", "/organs/build", {"organ_template": VOICE, "dryrun": True}),
    ("GET", "/organs", None),
    ("GET", "/organs/organ-1/status", None),
    ("POST", "/organs/organ-1/status", {"state": "stable"}),
    ("DELETE", "/organs/organ-1/build", None),
    ("POST", "/organs/organ-1/rebuild", None),
]


@pytest.mark.parametrize(("method", "path", "json"), [r for r in ROUTES if r[1] != "/organs/organ-1/status" or r[0] != "GET"])
async def test_closed_gate_on_every_route(client: AsyncTestClient, method: str, path: str, json: Any) -> None:
    await build(client)
    r = await client.post("/api/neira/capabilities/organs_builder", json={"state": "disabled"}, headers=auth())
    assert r.status_code == 200
    r = await client.request(method, path, json=json, headers=auth())
    assert r.status_code == 403
    assert r.json() == {"code": "capability_disabled", "reason": r.json()["reason"], "capability": "organs_builder"}


@pytest.mark.parametrize(("method", "path", "json"), [r for r in ROUTES if r[0] != "GET"])
async def test_viewer_cannot_write(client: AsyncTestClient, method: str, path: str, json: Any) -> None:
    await build(client)
    r = await client.request(method, path, json=json, headers=auth("viewer"))
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")


async def test_no_token_is_401(client: AsyncTestClient) -> None:
    for method, path, json in ROUTES:
        r = await client.request(method, path, json=json)
        assert (r.status_code, r.json()["code"]) == (401, "unauthorized")


@pytest.mark.parametrize("bad,status", [("organ-0", 404), ("organ-x", 404), ("ORGAN-1", 404), ("organ-01", 404),
                                        ("organ-1.json", 404), ("%2e%2e", 400), ("organ-1%2Fx", 400)])
async def test_organ_ids_that_name_nothing_are_404_impossible_ones_400(client: AsyncTestClient, bad: str, status: int) -> None:
    code = {404: "not_found", 400: "invalid_request"}[status]
    for method, path in (("GET", f"/organs/{bad}/status"), ("DELETE", f"/organs/{bad}/build"), ("POST", f"/organs/{bad}/rebuild")):
        r = await client.request(method, path, headers=auth())
        assert (r.status_code, r.json()["code"]) == (status, code), (method, path)


async def test_the_dryrun_checks_each_pathway_type_chain(client: AsyncTestClient) -> None:
    cells = ["analysis.image_decode.v1", "analysis.reverse.v1"]
    template = {"id": "organ.broken.v1", "version": "1.0.0", "cells": cells, "pathways": [{"name": "main", "cells": cells}],
                "metadata": {"schema": "v1"}}
    body = (await client.post("/organs/build", json={"organ_template": template, "dryrun": True}, headers=auth())).json()
    assert body["ok"] is False
    breaks = [r for r in body["report"]["risks"] if r["code"] == "type_mismatch"]
    assert breaks == [{"code": "type_mismatch", "severity": "error", "id": "analysis.reverse.v1", "cells": cells,
                       "message": "pathway main: analysis.image_decode.v1 gives image; analysis.reverse.v1 takes text"}]
    assert body["plan"]["risks"] == breaks
    voice = (await client.post("/organs/build", json={"organ_template": "organ.voice.v1", "dryrun": True}, headers=auth())).json()
    assert voice["ok"] is True and not [r for r in voice["report"]["risks"] if r["code"] in ("type_mismatch", "no_implementation")]


async def test_the_status_body_keeps_its_fields_in_order(client: AsyncTestClient) -> None:
    """The status is typed in the core; its JSON is what clients have always read, field for field and in order
    (a held build: its hold, and the figures of its runs)."""
    organ_id = await build(client)
    r = await client.post(f"/organs/{organ_id}/hold", json={"reason": "look first"}, headers=auth("operator"))
    assert r.status_code == 200, r.text
    body = (await client.get(f"/organs/{organ_id}/status", headers=auth("viewer"))).json()
    assert list(body) == ["id", "state", "template_id", "auto", "waiting_for", "held_by", "hold", "analysis",
                          "override", "cells", "metrics", "updated_at"]
    assert list(body["metrics"]) == ["attempts", "stage_times", "build_started_at", "build_finished_at",
                                     "build_duration_ms", "elapsed_ms", "next_stage", "next_stage_at", "held_left_ms", "runs"]
    assert list(body["metrics"]["runs"]) == ["total", "ok", "failed", "window", "last_at"]
    assert list(body["metrics"]["runs"]["window"]) == ["runs", "error_rate", "p50_ms", "p99_ms"]
    assert [list(c) for c in body["cells"]] == [["id", "record_id", "state"]] * 3
    assert (body["waiting_for"], body["hold"]["actor"], body["hold"]["reason"]) == ("approval", "operator", "look first")
    assert list(body["hold"]) == ["since", "actor", "reason"]
