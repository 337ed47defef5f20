"""A real `neira serve` with canary analysis on is SIGKILLed while an organ's experimental stint is being measured
(its canary verdict already passed and promoted it): after the restart every verdict and measurement is still
there, the analysis goes on where it was, and each promotion happened exactly once."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import Server
from tests.reliability.conftest import Store, make_server

pytestmark = pytest.mark.e2e

SAMPLES = [{"input": "abc", "expect": {"equals": "cba"}}, {"input": "hello", "expect": {"equals": "olleh"}},
           {"input": "xy", "expect": {"equals": "yx"}}, {"input": "level", "expect": {"type": "text"}}]
MIN_RUNS = 1000  # enough runs that the kill lands mid-stint (a fill is stored 20 runs at a time), loaded machine or not
CELL = {"id": "analysis.g_crash.v1", "version": "1.0.0", "analysis_type": "reverse", "links": [],
        "metadata": {"schema": "v1", "adapter": {"impl": "reverse"}, "samples": SAMPLES},
        "policies": {"analysis": {"min_runs": 4}}}
ORGAN = {"id": "organ.g_crash.v1", "version": "1.0.0", "roles": [], "cells": ["analysis.g_crash.v1"],
         "pathways": [{"name": "main", "cells": ["analysis.g_crash.v1"]}], "metadata": {"schema": "v1", "samples": SAMPLES},
         "policies": {"stage": "draft", "hitl": False, "analysis": {"min_runs": MIN_RUNS, "max_wait_ms": 120_000}}}


def wait(c: httpx.Client, path: str, ok, timeout: float = 60) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        body = c.get(path).json()
        if ok(body):
            return body
        assert time.monotonic() < deadline, f"timed out on {path}: {body}"
        time.sleep(0.02)  # polling a condition


def trail(c: httpx.Client, organ_id: str) -> tuple[list[dict], list[dict]]:
    events = [e for e in c.get("/api/neira/events?limit=1000").json() if e["subject"] == f"organ:{organ_id}"]
    audit = [a for a in c.get("/api/neira/audit?limit=1000").json() if a["subject"] == f"organ:{organ_id}"]
    return events, audit


def test_sigkill_mid_analysis_keeps_every_verdict_and_promotes_once(tmp_path: Path, store: Store) -> None:
    server: Server = make_server(tmp_path / "data", store, NEIRA_ANALYSIS_INTERVAL_MS="100", ORGANS_BUILDER_STAGE_DELAYS="50,50,50")
    server.start(timeout=60)
    try:
        with server.client() as c:
            assert c.post("/cells", json=CELL).status_code in (200, 201)
            r = c.post("/organs/build", json={"organ_template": ORGAN})
            assert r.status_code == 201, r.text
            organ_id = r.json()["organ_id"]
            wait(c, f"/organs/{organ_id}/status", lambda s: s["state"] == "experimental")
            mid = wait(c, f"/organs/{organ_id}/analysis", lambda a: a["stage"] == "experimental" and a["runs"] >= 8)
            assert mid["verdict"] == "running", mid  # the kill lands mid-stint
            events_before, audit_before = trail(c, organ_id)
    finally:
        server.kill()
    verdicts_before = [e for e in events_before if e["type"] == "analysis.verdict"]
    assert [e["data"]["verdict"] for e in verdicts_before] == ["pass"]  # the canary stint's

    server.start(timeout=60)
    try:
        with server.client() as c:
            after_kill = c.get(f"/organs/{organ_id}/analysis").json()
            assert after_kill["stage"] == "experimental" and after_kill["runs"] >= mid["runs"]  # measurements kept
            done = wait(c, f"/organs/{organ_id}/status", lambda s: s["state"] == "stable", timeout=120)
            assert all(cell["state"] == "stable" for cell in done["cells"])
            events, audit = trail(c, organ_id)
    finally:
        server.stop()
    seqs = {e["seq"] for e in events}
    assert all(e["seq"] in seqs for e in verdicts_before)  # every verdict announced before the kill is kept
    stages = [e["data"]["state"] for e in events if e["type"] == "organ.stage"]
    assert stages == ["draft", "canary", "experimental", "stable"]  # each stage exactly once across the restart
    promotions = [(a["before"]["state"], a["after"]["state"]) for a in audit if a["action"] == "organ.promote"]
    assert promotions == [("canary", "experimental"), ("experimental", "stable")]
    assert all(a["reason"].startswith("verdict pass: ") for a in audit if a["action"] == "organ.promote")
    assert len([a for a in audit_before if a["action"] == "organ.promote"]) == 1
