"""Three real `neira serve` replicas on one PostgreSQL database behave as one server (contract §9, issue 16).

Everything goes through the public surface (HTTP and WebSocket) of whichever replica a load balancer would have
picked: builds spread across the replicas each reach the end once; a SIGKILLed replica's builds are finished by
the others; racing approves and one Idempotency-Key across replicas end as on one server; a plan made on one
replica applies on another and a stale one is refused on a third; a gate flip is seen everywhere within 1 s and
holds every replica's builds; a WebSocket on one replica carries what another one did; the catalog is one.

The tests share one trio, started at once on a fresh database (each test makes its own records and organs; the
one that kills a replica runs last); the catalog test, which turns the integrity check on, has replicas of its
own. A failure names what the replicas last logged. Tests run in file order: the first one needs the fresh
database."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.postgres.cluster import Cluster
from tests.postgres.replicas import Replicas, client, poll, replicas
from tests.reliability.conftest import apage_all

pytestmark = pytest.mark.e2e

STAGES = ["draft", "canary", "experimental", "stable"]
WITHIN_S = 1.0  # the contract's bound for a gate flip to be seen by every replica
BUILDS = 300
TAKE_OVER_S = 20  # a SIGKILLed replica's builds are all stable on the others within this
RACERS = 50
STAGE_S = 0.4  # each stage of the shared trio's builds: a build lasts long enough to be watched and held
DELAYS = ",".join([str(int(STAGE_S * 1000))] * 3)
_databases = itertools.count(1)


def fresh_database(cluster: Cluster, what: str) -> str:
    return cluster.create(f"replicas_{what}_{os.getpid()}_{next(_databases)}")


@pytest.fixture(scope="module")
def trio(pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    """Three replicas for the module, started at once on a fresh database, as a roll-out starts them (the first
    test then checks what that must give). The integrity check is off here: the catalog test has its own
    replicas, so that a quarantine there never spills into the tests here."""
    env = {"ORGANS_BUILDER_STAGE_DELAYS": DELAYS, "NEIRA_INTEGRITY_INTERVAL_S": "0"}
    with replicas(tmp_path_factory.mktemp("trio"), fresh_database(pg_cluster, "trio"), env=env, together=True) as group:
        yield group


@pytest.fixture
async def http(trio: Replicas) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One admin client per replica of the shared trio: [A, B, C]."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(c) for c in trio.clients(RACERS)]


def template(name: str) -> dict[str, Any]:
    return {"id": f"analysis.replica_{name}", "version": "1.0.0", "analysis_type": "race_probe", "links": [],
            "metadata": {"schema": "v1"}}


async def build(client: httpx.AsyncClient, template_id: str = "organ.echo.v1") -> str:
    r = await client.post("/organs/build", json={"organ_template": template_id})
    assert r.status_code == 201, r.text
    return r.json()["organ_id"]


async def states_of(client: httpx.AsyncClient, organ_ids: set[str]) -> dict[str, str]:
    return {o["id"]: o["state"] for o in await apage_all(client, "/organs") if o["id"] in organ_ids}


async def wait_stable(group: Replicas, clients: list[httpx.AsyncClient], organ_ids: set[str], timeout: float) -> None:
    """Every organ of `organ_ids` stable, asked of each live replica in turn."""
    turn = itertools.cycle(clients)
    last: dict[str, str] = {}

    async def done() -> bool:
        last.update(await states_of(next(turn), organ_ids))
        return all(last.get(o) == "stable" for o in organ_ids)

    def why() -> str:
        left = Counter(last.get(o, "<missing>") for o in organ_ids if last.get(o) != "stable")
        return f"{len(organ_ids)} builds to end stable; not yet: {dict(left)}\n{group.tails()}"

    await poll(done, timeout, why)


async def stage_events(client: httpx.AsyncClient, organ_ids: set[str]) -> list[dict[str, Any]]:
    """The stored organ.stage events of `organ_ids`, in seq order (the events table, through the API)."""
    return [e for e in await apage_all(client, "/api/neira/events")
            if e["type"] == "organ.stage" and e["subject"].removeprefix("organ:") in organ_ids]


def each_stage_once(events: list[dict[str, Any]], organ_ids: set[str]) -> list[str]:
    """What is wrong with the stage events of `organ_ids`: every organ must have draft, canary, experimental and
    stable exactly once each, in that order, and nothing else."""
    per: dict[str, list[str]] = {o: [] for o in organ_ids}
    for e in events:
        per[e["subject"].removeprefix("organ:")].append(e["data"]["state"])
    return [f"{o}: {s}" for o, s in sorted(per.items()) if s != STAGES]


async def audit_of(client: httpx.AsyncClient, subject: str) -> list[dict[str, Any]]:
    return [a for a in await apage_all(client, "/api/neira/audit") if a["subject"] == subject]


# --- start (first: the module's database is fresh only now) -----------------------------------------------------
async def test_three_replicas_started_together_serve_one_catalog_and_hand_out_the_first_ids_once(
        trio: Replicas, http: list[httpx.AsyncClient]) -> None:
    """The trio was started at once on a fresh database: it migrated once and registered the examples once (or
    a replica would not have started), every replica lists the same catalog, and the very first ids of the
    database (organs, records), asked of every replica at once, are all handed out, each once."""
    lists = [sorted((x["id"], x["version"]) for x in await apage_all(c, "/cells")) for c in http]
    assert lists[0] and lists[0] == lists[1] == lists[2]
    organs = [c.post("/organs/build", json={"organ_template": "organ.reverse.v1"}) for c in http for _ in range(5)]
    cells = [c.post("/factory/cells", json={"template": template(f"first_{i}_{j}")})
             for i, c in enumerate(http) for j in range(5)]
    answers = await asyncio.gather(*organs, *cells)
    assert Counter(r.status_code for r in answers) == {201: len(answers)}, (
        [r.text for r in answers if r.status_code != 201][:3], trio.tails())
    ids = [r.json().get("organ_id") or r.json()["id"] for r in answers]
    assert len(set(ids)) == len(ids), sorted(ids)


# --- builds ------------------------------------------------------------------------------------------------------
async def test_300_builds_spread_across_the_replicas_each_reach_the_end_once(trio: Replicas, http: list[httpx.AsyncClient]) -> None:
    gate = asyncio.Semaphore(30)  # thirty requests in flight at a time, round-robin over A, B, C

    async def one(i: int) -> httpx.Response | str:
        async with gate:
            try:
                return await http[i % 3].post("/organs/build", json={"organ_template": "organ.echo.v1"})
            except httpx.HTTPError as exc:  # a replica that dropped the connection: said with its logs below
                return f"replica {'ABC'[i % 3]}: {type(exc).__name__}"

    answers = await asyncio.gather(*(one(i) for i in range(BUILDS)))
    failed = [r if isinstance(r, str) else r.text for r in answers if isinstance(r, str) or r.status_code != 201]
    assert not failed, (len(failed), Counter(failed).most_common(3), trio.tails())
    answers = [r for r in answers if not isinstance(r, str)]
    organ_ids = {r.json()["organ_id"] for r in answers}
    assert len(organ_ids) == BUILDS, "two builds were given one organ id"
    await wait_stable(trio, http, organ_ids, timeout=60)
    seen = [await stage_events(c, organ_ids) for c in http]
    assert seen[0] == seen[1] == seen[2], "the replicas' event trails differ"
    seqs = [e["seq"] for e in seen[0]]
    assert seqs == sorted(set(seqs))
    wrong = each_stage_once(seen[0], organ_ids)
    assert not wrong, f"{len(wrong)} of {BUILDS} builds did not have each stage exactly once: {wrong[:5]}"


# --- races -------------------------------------------------------------------------------------------------------
async def test_fifty_concurrent_approves_across_replicas_make_exactly_the_three_legal_moves(http: list[httpx.AsyncClient]) -> None:
    r = await http[0].post("/factory/cells", json={"template": template("approve")})
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    answers = await asyncio.gather(*(http[i % 3].post(f"/factory/cells/{rid}/approve", json={"reason": f"r{i}"})
                                     for i in range(RACERS)))
    ok = sorted((r.json()["state"] for r in answers if r.status_code == 200), key=STAGES.index)
    assert ok == ["canary", "experimental", "stable"], [r.text for r in answers][:5]
    refused = Counter((r.status_code, r.json()["code"], r.json().get("from")) for r in answers if r.status_code != 200)
    assert refused == {(409, "invalid_transition", "stable"): RACERS - 3}
    moves = [("draft", "canary"), ("canary", "experimental"), ("experimental", "stable")]
    for peer in http:  # every replica tells the same story
        final = (await peer.get(f"/factory/cells/{rid}")).json()
        assert [(h["from"], h["to"]) for h in final["history"]] == [(None, "draft"), *moves]
    audited = await audit_of(http[2], f"cell:{rid}")
    assert [(a["action"], a["before"], a["after"]) for a in audited] == [
        ("cell.create", None, "draft"), *(("cell.approve", b, a) for b, a in moves)]
    assert len({a["reason"] for a in audited[1:]}) == 3  # three distinct winning requests


async def test_one_idempotency_key_across_replicas_makes_one_record(http: list[httpx.AsyncClient]) -> None:
    body, key = {"template": template("idem")}, {"Idempotency-Key": "replicas-cell-1"}
    answers = await asyncio.gather(*(http[i % 3].post("/factory/cells", json=body, headers=key) for i in range(RACERS)))
    other = await http[2].post("/factory/cells", json={"template": template("idem_other")}, headers=key)
    assert Counter(r.status_code for r in answers) == {201: RACERS}, [r.text for r in answers if r.status_code != 201][:3]
    assert len({r.text for r in answers}) == 1, "the replicas answered one key with different bodies"
    records = [x for x in await apage_all(http[1], "/factory/cells") if x["template_id"] == "analysis.replica_idem"]
    assert [x["id"] for x in records] == [answers[0].json()["id"]]
    assert (other.status_code, other.json()["code"]) == (409, "conflict")
    assert [a["action"] for a in await audit_of(http[0], f"cell:{records[0]['id']}")] == ["cell.create"]


async def test_one_idempotency_key_across_replicas_starts_one_build(http: list[httpx.AsyncClient]) -> None:
    key = {"Idempotency-Key": "replicas-build-1"}
    before = {o["id"] for o in await apage_all(http[0], "/organs")}
    answers = await asyncio.gather(*(http[i % 3].post("/organs/build", json={"organ_template": "organ.reverse.v1"},
                                                      headers=key) for i in range(RACERS)))
    after = {o["id"] for o in await apage_all(http[1], "/organs")}
    assert Counter(r.status_code for r in answers) == {201: RACERS}, [r.text for r in answers if r.status_code != 201][:3]
    assert len({r.text for r in answers}) == 1
    organ_id = answers[0].json()["organ_id"]
    assert after - before == {organ_id}
    assert [a["action"] for a in await audit_of(http[2], f"organ:{organ_id}")] == ["organ.build"]


# --- plans -------------------------------------------------------------------------------------------------------
async def test_a_plan_made_on_a_applies_on_b_and_a_stale_plan_is_refused_on_c(http: list[httpx.AsyncClient]) -> None:
    a, b, c = http
    text = {"text": "create cell summarize v1"}
    mine = (await a.post("/api/neira/commands", json={**text, "session_id": "replicas-a"})).json()
    theirs = (await c.post("/api/neira/commands", json={**text, "session_id": "replicas-c"})).json()
    assert mine["intent"] == "create_cell" and [x["action"] for x in mine["plan"]["changes"]] == ["create"], mine
    assert mine["plan"]["id"] != theirs["plan"]["id"] and theirs["plan"]["changes"] == mine["plan"]["changes"]
    applied = await b.post(f"/api/neira/commands/plans/{mine['plan']['id']}/apply")  # at once, as a script would
    assert applied.status_code == 200, applied.text
    assert applied.json()["already_applied"] is False
    record_id = applied.json()["applied"][0]["record_id"]
    for peer in (a, c):
        got = await peer.get(f"/factory/cells/{record_id}")
        assert (got.status_code, got.json()["template_id"]) == (200, "analysis.summarize.v1")
    stale = await c.post(f"/api/neira/commands/plans/{theirs['plan']['id']}/apply")
    assert (stale.status_code, stale.json()["code"]) == (409, "plan_stale"), stale.text
    again = await c.post(f"/api/neira/commands/plans/{mine['plan']['id']}/apply")
    assert (again.status_code, again.json()["already_applied"], again.json()["applied"]) == (
        200, True, applied.json()["applied"])
    assert [x["action"] for x in await audit_of(a, f"plan:{mine['plan']['id']}")] == ["command.apply"]
    assert await audit_of(a, f"plan:{theirs['plan']['id']}") == []
    mine_records = [x for x in await apage_all(c, "/factory/cells") if x["template_id"] == "analysis.summarize.v1"]
    assert [x["id"] for x in mine_records] == [record_id]


async def test_plans_said_on_one_replica_apply_on_the_next_at_once(trio: Replicas, http: list[httpx.AsyncClient]) -> None:
    """Clients behind a load balancer say a command and apply its plan right away: the two requests reach
    different replicas (said on A, applied on B; B to C; C to A), many at once, and every apply must find its
    plan and carry it out (each registers a new cell template: every replica registers while the others do)."""

    async def say_then_apply(i: int) -> tuple[int, str]:
        said = await http[i % 3].post("/api/neira/commands", json={"text": f"создай клетку replicaplan{i}"})
        assert said.status_code == 200 and said.json()["plan"]["changes"], said.text
        applied = await http[(i + 1) % 3].post(f"/api/neira/commands/plans/{said.json()['plan']['id']}/apply")
        return applied.status_code, applied.json().get("code", "")

    answers = await asyncio.gather(*(say_then_apply(i) for i in range(15)))
    assert Counter(answers) == {(200, ""): 15}, (Counter(answers), trio.tails())


# --- streams -----------------------------------------------------------------------------------------------------
async def test_a_websocket_on_c_receives_the_stages_of_a_build_made_on_a(trio: Replicas, http: list[httpx.AsyncClient]) -> None:
    async with connect(trio.ws_url(2, "/api/neira/events/stream")) as events:
        organ_id = await build(http[0], "organ.voice.v1")
        async with connect(trio.ws_url(2, f"/organs/{organ_id}/stream")) as organ:
            frames = await _until_stable(organ, lambda f: f, trio)
        stream = await _until_stable(events, lambda f: f["data"] if f["type"] == "organ.stage"
                                     and f["subject"] == f"organ:{organ_id}" else None, trio)
    states = [f["state"] for f in frames]
    assert states == STAGES[STAGES.index(states[0]):], states
    assert [f["seq"] for f in frames] == sorted({f["seq"] for f in frames})
    assert [f["state"] for f in stream] == STAGES, stream  # subscribed before the build: every stage


async def _until_stable(ws: Any, pick: Any, group: Replicas, wait: float = 10) -> list[dict[str, Any]]:
    """Frames (`pick(frame)`, when not None) until one says stable; fails after `wait` s without a frame."""
    out: list[dict[str, Any]] = []
    while not out or out[-1]["state"] not in ("stable", "failed"):
        try:
            frame = json.loads(await asyncio.wait_for(ws.recv(), wait))
        except TimeoutError:
            raise AssertionError(f"no frame for {wait}s; so far {out}\n{group.tails()}") from None
        if (picked := pick(frame)) is not None:
            out.append({**picked, **({"seq": frame["seq"]} if "seq" in frame else {})})
    return out


# --- gates (near the end: it closes the builder's gate for a while) ---------------------------------------
async def test_a_gate_flip_on_a_is_seen_on_b_and_c_within_a_second_and_holds_every_replicas_builds(
        trio: Replicas, http: list[httpx.AsyncClient]) -> None:
    a, b, c = http
    held = {await build(x) for x in (a, b, c, b, c)}  # A's too: reopened on C, A must let them go on
    closed = await a.post("/api/neira/capabilities/organs_builder", json={"state": "disabled", "reason": "drill"})
    assert closed.status_code == 200, closed.text
    try:
        await _seen_everywhere(trio, http, "disabled")
        seen_at = time.time()  # from here on every replica says the gate is closed: no build may move
        # (organ routes answer 403 while the gate is closed: the builds' stages are read from the events)
        in_flight = {e["subject"]: e["data"]["state"] for e in await stage_events(a, held)}
        assert set(in_flight.values()) - {"stable"}, f"the builds ended before the gate closed: {in_flight}"
        refused = await b.post("/organs/build", json={"organ_template": "organ.echo.v1"})
        assert (refused.status_code, refused.json().get("code")) == (403, "capability_disabled"), refused.text
        # the observation window: several stages long, had anything moved (this watches; it hides nothing)
        await asyncio.sleep(3 * STAGE_S)
    finally:
        opening_at = time.time()
        opened = await c.post("/api/neira/capabilities/organs_builder", json={"state": "experimental"})
    assert opened.status_code == 200, (opened.text, trio.tails())
    await _seen_everywhere(trio, http, "experimental")
    moved = [(e["subject"], e["data"]["state"], round(e["at"] - seen_at, 3)) for e in await stage_events(a, held)
             if seen_at < e["at"] < opening_at]
    assert not moved, f"builds moved while every replica said the gate was closed (s after): {moved}\n{trio.tails()}"
    await wait_stable(trio, http, held, timeout=20)  # released on every replica, wherever it was reopened
    wrong = each_stage_once(await stage_events(a, held), held)
    assert not wrong, wrong


async def _seen_everywhere(group: Replicas, clients: list[httpx.AsyncClient], state: str) -> None:
    """Every replica's /api/neira/capabilities says organs_builder is `state` within WITHIN_S of now."""
    views: dict[int, str] = {}

    async def all_see() -> bool:
        for i, peer in enumerate(clients):
            views[i] = (await peer.get("/api/neira/capabilities")).json()["organs_builder"]
        return all(v == state for v in views.values())

    await poll(all_see, WITHIN_S, lambda: f"every replica to see organs_builder={state}; they see {views}\n{group.tails()}")


# --- a replica dies (last of the module: it kills C, the replica that did nothing but reopen the gate) ----------
async def test_a_replica_killed_mid_build_has_its_builds_finished_by_the_others(
        trio: Replicas, http: list[httpx.AsyncClient]) -> None:
    a, b, c = http
    on_c = set(await asyncio.gather(*(build(c) for _ in range(20))))
    on_b = set(await asyncio.gather(*(build(b) for _ in range(5))))
    organ_ids = on_c | on_b

    async def moved() -> bool:  # mid-build: C has moved some of its builds on
        return any(s != "draft" for s in (await states_of(b, on_c)).values())

    await poll(moved, 10, lambda: f"a build of C to leave draft\n{trio.tails()}")
    assert trio.kill(2) == -9
    mid = await states_of(b, organ_ids)
    assert set(mid.values()) - {"stable"}, f"the builds ended before the kill, nothing was left to take over: {mid}"
    await wait_stable(trio, [a, b], organ_ids, timeout=TAKE_OVER_S)
    wrong = each_stage_once(await stage_events(a, organ_ids), organ_ids)
    assert not wrong, f"builds whose stages did not happen exactly once: {wrong[:5]}\n{trio.tails()}"


# --- the catalog ----------------------------------------------------------------------------------------------------
def test_a_cell_registered_on_a_is_one_catalog_for_every_replica(pg_cluster: Cluster, tmp_path: Path) -> None:
    """Each replica keeps catalog files in its own data dir and checks them against the shared index (every
    second here): a cell registered on A must be known on B, and its records must not be quarantined by B's
    check, nor by a replica C added later on a fresh data dir."""
    env = {"NEIRA_INTEGRITY_INTERVAL_S": "1"}
    with replicas(tmp_path, fresh_database(pg_cluster, "catalog"), n=2, env=env) as group:
        asyncio.run(_one_catalog(group))


async def _one_catalog(group: Replicas) -> None:
    async with AsyncExitStack() as stack:
        a, b = [await stack.enter_async_context(x) for x in group.clients()]
        made = await a.post("/factory/cells", json={"template": template("files")})
        assert made.status_code == 201, made.text
        example = await a.post("/factory/cells", json={"template": "analysis.reverse.v1"})
        assert example.status_code == 201, example.text
        registered_at = time.time()
        got = await b.get("/cells/analysis.replica_files")
        assert got.status_code == 200, got.text

        async def checked_since() -> bool:
            for peer in (a, b):
                last = (await peer.get("/api/neira/immune")).json()["last_integrity_check"]
                if last is None or last["at"] <= registered_at:
                    return False
            return True

        await poll(checked_since, 10, "an integrity check on A and B after the registration")
        c = await stack.enter_async_context(client(await asyncio.to_thread(group.add)))
        record_ids = {made.json()["id"], example.json()["id"]}
        for peer in (a, b, c):
            immune = (await peer.get("/api/neira/immune")).json()
            assert immune["quarantined"] == [], f"quarantined on {peer.base_url}: {immune}\n{group.tails()}"
            states = {r["id"]: r["state"] for r in await apage_all(peer, "/factory/cells") if r["id"] in record_ids}
            assert states == {rid: "draft" for rid in record_ids}, states
        # a quarantine healed since (the file written again from the index) still stopped the record's runs
        immune = [(x["action"], x["subject"], x["reason"][:90]) for x in await apage_all(a, "/api/neira/audit")
                  if x["action"].startswith("immune.")]
        assert immune == [], f"the immune system acted on catalog files of another replica: {len(immune)} {immune[:6]}"
