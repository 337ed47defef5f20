"""A real server is stopped (SIGTERM) or killed (SIGKILL) and started again on the same data dir:
every record, state, gate, safe-mode setting, event and audit record is still there, unchanged."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.e2e.server import Server

pytestmark = pytest.mark.e2e

CELL = {"id": "analysis.restart_probe.v1", "version": "1.0.0", "analysis_type": "probe", "links": [], "metadata": {"schema": "v1"}}


def snapshot(server: Server) -> dict:
    with server.client() as c:
        records = c.get("/factory/cells").json()
        return {
            "records": records,
            "details": [c.get(f"/factory/cells/{r['id']}").json() for r in records],
            "cells": c.get("/cells").json(),
            "capabilities": c.get("/api/neira/capabilities").json(),
            "safe_mode": c.get("/api/neira/safe-mode").json(),
            "events": c.get("/api/neira/events?limit=1000").json(),
            "audit": c.get("/api/neira/audit").json(),
        }


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_state_survives_restart(tmp_path: Path, sig: int) -> None:
    server = Server(tmp_path / "data")
    server.start()
    try:
        with server.client() as c:
            created = c.post("/factory/cells", json={"template": CELL})
            assert created.status_code == 201, created.text
            rec = created.json()["id"]
            assert c.post(f"/factory/cells/{rec}/approve", json={"reason": "looks fine"}).json()["state"] == "canary"
            second = c.post("/factory/cells", json={"template": {**CELL, "version": "1.1.0"}}).json()["id"]
            assert c.post(f"/factory/cells/{second}/disable").json()["state"] == "disabled"
            assert c.post("/api/neira/capabilities/organs_builder", json={"state": "stable"}).status_code == 200
            assert c.post("/api/neira/safe-mode", json={"enabled": True, "reason": "restart test"}).status_code == 200
        before = snapshot(server)
    finally:
        server.stop(sig)
    server.start()
    try:
        after = snapshot(server)
        assert after == before
        assert {r["state"] for r in after["records"]} == {"canary", "disabled"}
        with server.client() as c:
            nxt = c.post("/factory/cells", json={"template": {**CELL, "version": "1.2.0"}}).json()["id"]
        assert nxt not in {r["id"] for r in before["records"]}
    finally:
        server.stop()


def test_generated_admin_token_is_stored_private_and_never_printed(tmp_path: Path) -> None:
    server = Server(tmp_path / "data")
    server.env.pop("NEIRA_ADMIN_TOKEN")
    server.start()
    try:
        token_file = tmp_path / "data" / "admin_token"
        token = token_file.read_text().strip()
        assert oct(token_file.stat().st_mode & 0o777) == "0o600"
        assert token not in server.log() and f"stored in {token_file}" in server.log()
        server.token = token
        with server.client() as c:
            assert c.get("/api/neira/capabilities").status_code == 200
    finally:
        server.stop()
    server.start()  # the stored token is reused, not regenerated
    try:
        assert (tmp_path / "data" / "admin_token").read_text().strip() == token
        with server.client() as c:
            assert c.get("/api/neira/capabilities").status_code == 200
    finally:
        server.stop()


def test_tokens_never_appear_in_the_log(tmp_path: Path) -> None:
    with Server(tmp_path / "data", token="very-secret-admin-token-123") as server:
        with server.client() as c:
            c.get("/api/neira/capabilities")
            c.get("/api/neira/capabilities", headers={"Authorization": "Bearer wrong-secret-token-456"})
            c.post("/factory/cells", json={"template": {"id": "bad"}})
    log = server.log()
    assert "very-secret-admin-token-123" not in log
    assert "wrong-secret-token-456" not in log
