"""Sandboxed cells over HTTP on a real `neira serve`: gates opened at start, create → approve → run of the
worked examples, an organ of both, a runaway that never stalls the other routes, and the locked default."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import Server
from tests.sandbox.cases import example, scripted

pytestmark = pytest.mark.e2e
GATES = "factory_script=experimental,factory_wasm=experimental"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"NEIRA_CAPABILITIES": GATES, "NEIRA_RUN_WORKERS": "2", "NEIRA_SANDBOX_FUEL": str(10**13),
           "NEIRA_SANDBOX_TIMEOUT_MS": "1500"}
    with Server(tmp_path_factory.mktemp("sandbox") / "data", env=env) as s:
        yield s


def created(http: httpx.Client, template: dict[str, Any], backend: str) -> str:
    r = http.post("/factory/cells", json={"template": template, "backend": backend})
    assert r.status_code in (200, 201), r.text
    record = r.json()["id"]
    if r.status_code == 201:  # a new draft: approve it into canary (a record an earlier test made is reused as it is)
        approved = http.post(f"/factory/cells/{record}/approve")
        assert approved.status_code == 200, approved.text
    return record


def test_the_worked_examples_run_end_to_end(server: Server) -> None:
    with server.client() as http:
        words = created(http, example("analysis.word_count_script.v1"), "script")
        r = http.post(f"/factory/cells/{words}/run", json={"input": "to be or not to be"})
        assert r.status_code == 200 and r.json()["ok"], r.text
        assert r.json()["output"] == {"type": "json", "data": {"words": 6, "distinct": 4,
                                                              "counts": {"to": 2, "be": 2, "or": 1, "not": 1}}}
        assert r.json()["trace"][0]["impl"] == "script"
        reverse = created(http, example("analysis.reverse_wasm.v1"), "wasm")
        r = http.post(f"/factory/cells/{reverse}/run", json={"input": "привет, мир"})
        assert r.json()["output"] == {"type": "text", "text": "рим ,тевирп"}, r.text
        assert r.json()["trace"][0]["impl"] == "wasm"


def test_an_organ_of_both_builds_and_runs(server: Server) -> None:
    with server.client() as http:
        created(http, example("analysis.word_count_script.v1"), "script")
        created(http, example("analysis.reverse_wasm.v1"), "wasm")
        organ = {"id": "organ.sandboxed.v1", "version": "1.0.0", "roles": ["demo"],
                 "cells": ["analysis.reverse_wasm.v1", "analysis.word_count_script.v1"],
                 "pathways": [{"name": "main", "cells": ["analysis.reverse_wasm.v1", "analysis.word_count_script.v1"]}],
                 "policies": {"stage": "draft", "hitl": False}}
        dry = http.post("/organs/build", json={"organ_template": organ, "dryrun": True}).json()
        assert not [r for r in dry["report"]["risks"] if r["code"] in ("no_implementation", "type_mismatch")], dry
        r = http.post("/organs/build", json={"organ_template": organ})
        assert r.status_code == 201, r.text
        organ_id = r.json()["organ_id"]
        r = http.post(f"/organs/{organ_id}/run", json={"input": "ab ab cd"})
        assert r.status_code == 200 and r.json()["ok"], r.text
        assert r.json()["output"]["data"] == {"words": 3, "distinct": 2, "counts": {"dc": 1, "ba": 2}}
        assert [t["impl"] for t in r.json()["trace"]] == ["wasm", "script"]


def test_a_runaway_never_stalls_the_server(server: Server) -> None:
    with server.client() as http:
        spin = created(http, scripted("function run(input) while true do end end"), "script")
        organ_id = http.get("/organs").json()[0]["id"] if http.get("/organs").json() else None
        outcome: dict[str, Any] = {}

        def run() -> None:
            with server.client() as other:
                outcome["r"] = other.post(f"/factory/cells/{spin}/run", json={"input": "x"}, timeout=10)

        worker = threading.Thread(target=run)
        started = time.monotonic()
        worker.start()
        time.sleep(0.2)  # the run has a worker by now
        health: list[float] = []
        status: list[float] = []
        while worker.is_alive() and time.monotonic() - started < 1.2:
            t = time.perf_counter()
            assert http.get("/healthz").status_code == 200
            health.append((time.perf_counter() - t) * 1000)
            if organ_id:
                t = time.perf_counter()
                assert http.get(f"/organs/{organ_id}/status").status_code == 200
                status.append((time.perf_counter() - t) * 1000)
        worker.join(10)
        body = outcome["r"].json()
        assert body["ok"] is False
        assert (body["error"]["code"], body["error"]["limit"]) == ("sandbox_limit", "time"), body
        assert 1.4 < time.monotonic() - started < 5
        print(f"while spinning: healthz median {statistics.median(health):.1f} ms, max {max(health):.1f} ms; "
              f"status median {statistics.median(status or [0]):.1f} ms")
        assert len(health) > 10 and statistics.median(health) < 20, health
        if status:
            assert statistics.median(status) < 20, status
        r = http.post(f"/factory/cells/{spin}/run", json={"input": "x"})  # the pool is whole again
        assert r.json()["error"]["code"] == "sandbox_limit"


def test_a_closed_gate_makes_a_record_not_runnable(server: Server) -> None:
    with server.client() as http:
        words = created(http, example("analysis.word_count_script.v1"), "script")
        assert http.post("/api/neira/capabilities/factory_script", json={"state": "disabled"}).status_code == 200
        try:
            r = http.post(f"/factory/cells/{words}/run", json={"input": "a"})
            assert (r.status_code, r.json()["code"], r.json()["capability"]) == (409, "not_runnable", "factory_script")
        finally:
            http.post("/api/neira/capabilities/factory_script", json={"state": "experimental"})


def test_the_gates_are_locked_by_default(tmp_path: Path) -> None:
    with Server(tmp_path / "data") as s, s.client() as http:
        for name, backend in (("analysis.word_count_script.v1", "script"), ("analysis.reverse_wasm.v1", "wasm")):
            r = http.post("/factory/cells", json={"template": example(name), "backend": backend})
            assert (r.status_code, r.json()["code"], r.json()["capability"]) == (403, "capability_disabled", f"factory_{backend}")
            dry = http.post("/factory/cells/dryrun", json={"template": example(name), "backend": backend}).json()
            assert dry["ok"] is False and dry["report"]["sandbox"]["gate"]["action"] == "deny"
        r = http.post("/api/neira/capabilities/factory_script", json={"state": "experimental"})
        assert (r.status_code, r.json()["code"]) == (403, "capability_locked")
