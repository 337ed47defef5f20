"""A real `neira serve` is killed (SIGKILL) or stopped (SIGTERM) in the middle of an organ build and started
again on the same data dir: every organ keeps its exact state, and the build in flight finishes with the
delay it had left, without starting over."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import Server

pytestmark = pytest.mark.e2e

DELAY_MS = 3000  # long enough that three more builds and two moves on a loaded machine stay inside one stage
STAGES = ["draft", "canary", "experimental", "stable"]


def status(c: httpx.Client, organ_id: str) -> dict:
    r = c.get(f"/organs/{organ_id}/status")
    assert r.status_code == 200, r.text
    return r.json()


def wait_state(c: httpx.Client, organ_id: str, wanted: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while (body := status(c, organ_id))["state"] != wanted:
        assert time.monotonic() < deadline, f"{organ_id} stuck in {body['state']}"
        time.sleep(0.02)  # polling a condition
    return body


def build(c: httpx.Client) -> str:
    r = c.post("/organs/build", json={"organ_template": "organ.voice.v1"})
    assert r.status_code == 201, r.text
    return r.json()["organ_id"]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_build_in_flight_survives_restart(tmp_path: Path, sig: int) -> None:
    delays = f"{DELAY_MS},{DELAY_MS},{DELAY_MS}"
    server = Server(tmp_path / "data", env={"ORGANS_BUILDER_STAGE_DELAYS": delays, "NEIRA_LOG_LEVEL": "debug"})
    server.start()
    try:
        with server.client() as c:
            flying = build(c)
            failed = build(c)
            assert c.delete(f"/organs/{failed}/build").json() == {"id": failed, "state": "failed"}
            stable = build(c)
            assert c.post(f"/organs/{stable}/status", json={"state": "stable"}).status_code == 200
            paused = build(c)
            assert c.post(f"/organs/{paused}/status", json={"state": "canary", "reason": "hold"}).status_code == 200
            before = wait_state(c, flying, "canary")  # mid-build: one stage done, two to go
            listed_before = c.get("/organs").json()
    finally:
        server.stop(sig)
    assert "organ build started" in server.log() and flying in server.log()

    server.start()
    try:
        with server.client() as c:
            states = {o["id"]: o["state"] for o in c.get("/organs").json()}
            assert states[failed] == "failed" and states[stable] == "stable" and states[paused] == "canary"
            assert states[flying] in ("canary", "experimental")  # never back to draft, never stable early
            after = wait_state(c, flying, "stable")
            times = after["metrics"]["stage_times"]
            assert list(times) == STAGES
            assert times["draft"] == before["metrics"]["stage_times"]["draft"]
            assert times["canary"] == before["metrics"]["stage_times"]["canary"]  # resumed, not restarted
            assert times["experimental"] - times["canary"] >= DELAY_MS / 1000 - 1e-3
            assert times["stable"] - times["experimental"] >= DELAY_MS / 1000 - 1e-3
            assert after["metrics"]["attempts"] == 1
            events = [e["data"]["state"] for e in c.get("/api/neira/events?limit=1000").json()
                      if e["subject"] == f"organ:{flying}" and e["type"] == "organ.stage"]
            assert events == STAGES  # every stage exactly once across the restart
            for organ_id in (failed, stable, paused):  # nothing moved the others
                assert status(c, organ_id)["state"] == {o["id"]: o["state"] for o in listed_before}[organ_id]
            assert build(c) == "organ-5"  # ids are never reused
    finally:
        server.stop()
