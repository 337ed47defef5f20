"""A real `neira serve` with the `organs_builder` gate closed holds every build in flight, across SIGKILL and
restarts: no stage moves while it is closed (at run time or by `NEIRA_CAPABILITIES` at start), the status
says why, and each build goes on, every stage exactly once, when the gate opens at run time or at a start
with it open."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import Server
from tests.e2e.test_organs_restart import STAGES, build, status, wait_state

pytestmark = pytest.mark.e2e

DELAY_MS = 700
DELAYS = {"ORGANS_BUILDER_STAGE_DELAYS": f"{DELAY_MS},{DELAY_MS},{DELAY_MS}"}
CLOSED = {**DELAYS, "NEIRA_CAPABILITIES": "organs_builder=disabled"}
OPEN = {**DELAYS, "NEIRA_CAPABILITIES": "organs_builder=experimental"}


def stages(c: httpx.Client, organ_id: str) -> list[str]:
    events = c.get("/api/neira/events?limit=1000").json()
    return [e["data"]["state"] for e in events if e["subject"] == f"organ:{organ_id}" and e["type"] == "organ.stage"]


def assert_held(server: Server, organ_id: str, state: str) -> None:
    with server.client() as c:
        time.sleep(3 * DELAY_MS / 1000)  # longer than any delay it had left: a free build would have moved
        body = status(c, organ_id)
        assert (body["state"], body["waiting_for"], body["held_by"]) == (state, "gate", "organs_builder")
        assert stages(c, organ_id) == STAGES[: STAGES.index(state) + 1]
        assert c.get("/organs").status_code == 403  # the gate itself stays closed for the other routes


def test_closed_at_run_time_then_killed_stays_held_until_opened(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", env=DELAYS)
    server.start()
    try:
        with server.client() as c:
            organ_id = build(c)
            wait_state(c, organ_id, "canary")
            assert c.post("/api/neira/capabilities/organs_builder", json={"state": "disabled"}).status_code == 200
            state = status(c, organ_id)["state"]
    finally:
        server.kill()
    server.env.update(CLOSED)
    server.start()  # closed by the environment too
    try:
        assert_held(server, organ_id, state)
    finally:
        server.kill()
    server.env.update(DELAYS)
    server.env.pop("NEIRA_CAPABILITIES")
    server.start()  # the stored run-time flip keeps it closed
    try:
        assert_held(server, organ_id, state)
        with server.client() as c:
            assert c.post("/api/neira/capabilities/organs_builder", json={"state": "experimental"}).status_code == 200
            assert status(c, organ_id)["waiting_for"] == "delay"
            wait_state(c, organ_id, "stable")
            assert stages(c, organ_id) == STAGES
    finally:
        server.stop()


def test_started_closed_then_started_open_goes_on(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", env=DELAYS)
    server.start()
    try:
        with server.client() as c:
            organ_id = build(c)
    finally:
        server.kill()  # in draft, its deadline only a few hundred ms away
    server.env.update(CLOSED)
    server.start()
    try:
        assert_held(server, organ_id, "draft")
    finally:
        server.kill()
    server.env.update(OPEN)
    server.start()
    try:
        with server.client() as c:
            body = wait_state(c, organ_id, "stable")
            times = body["metrics"]["stage_times"]
            assert list(times) == STAGES and stages(c, organ_id) == STAGES
            assert times["stable"] - times["experimental"] >= DELAY_MS / 1000 - 1e-3
    finally:
        server.stop()
