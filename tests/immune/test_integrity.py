"""Catalog integrity (contract §7): a changed or missing catalog file quarantines its template's records, at the
next check and at start; the heal writes the file again from the index and the records come back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from tests.conftest import auth
from tests.immune.conftest import audit, cell, events, immune, make_app, record, run_cell, until


def file_of(data: Path, cell_id: str, version: str = "1.0.0") -> Path:
    return data / "cells" / cell_id / f"{version}.json"


def tamper(path: Path) -> None:
    body = json.loads(path.read_text())
    body["description"] = "edited behind the catalog's back"
    path.write_text(json.dumps(body))


async def held(client: AsyncTestClient) -> list[dict[str, Any]]:
    return (await immune(client))["quarantined"]


async def released(client: AsyncTestClient) -> bool:
    return (await immune(client))["quarantined"] == []


async def test_a_missing_file_quarantines_its_records_at_the_next_check(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with AsyncTestClient(make_app(data, integrity_interval_s=1, canary_share=0.0)) as client:
        rid = await record(client, cell("brittle", cell_id="analysis.i_gone.v1"))
        path = file_of(data, "analysis.i_gone.v1")
        path.unlink()
        [q] = await until(lambda: held(client))
        assert (q["record_id"], q["reason"]) == (rid, "catalog file cells/analysis.i_gone.v1/1.0.0.json is missing")
        await until(lambda: released(client))
        assert path.is_file() and (await run_cell(client, rid, "ab")).json()["ok"] is True


async def test_a_changed_file_quarantines_its_records_at_the_next_check(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with AsyncTestClient(make_app(data, integrity_interval_s=1, canary_share=0.0)) as client:
        rid = await record(client, cell("brittle"))
        path = file_of(data, "analysis.i_brittle.v1")
        original = json.loads(path.read_text())
        tamper(path)
        [q] = await until(lambda: held(client))
        name = "cells/analysis.i_brittle.v1/1.0.0.json"
        assert (q["record_id"], q["cause"], q["measurement"]) == (rid, "integrity", {"metric": "file_digest", "file": name, "problem": "changed"})
        assert q["reason"].startswith(f"catalog file {name} has digest ")
        check = (await immune(client))["last_integrity_check"]
        assert [(f["file"], f["problem"]) for f in check["failed"]] == [(name, "changed")]
        r = await run_cell(client, rid, "ab")
        assert (r.status_code, r.json()["code"]) == (409, "not_runnable")

        await until(lambda: released(client))
        assert json.loads(path.read_text()) == original  # the heal wrote it again from the index
        assert (await client.get(f"/factory/cells/{rid}", headers=auth())).json()["state"] == "stable"
        assert (await run_cell(client, rid, "ab")).json()["ok"] is True
        trail = [(a["action"], a["subject"]) for a in await audit(client) if a["action"].startswith("immune.")]
        assert trail == [("immune.integrity", "catalog"), ("immune.quarantine", f"cell:{rid}"), ("immune.release", f"cell:{rid}")]
        release = next(a for a in await audit(client) if a["action"] == "immune.release")
        assert release["reason"] == "healed: the catalog file was restored from the index; back to stable"


async def test_changed_and_missing_files_are_found_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with AsyncTestClient(make_app(data, integrity_interval_s=0, canary_share=0.0)) as client:
        a = await record(client, cell("brittle", cell_id="analysis.i_a.v1"))
        b = await record(client, cell("brittle", cell_id="analysis.i_b.v1"))
        untouched = await record(client, cell("brittle", cell_id="analysis.i_c.v1"))
    tamper(file_of(data, "analysis.i_a.v1"))
    file_of(data, "analysis.i_b.v1").unlink()

    async with AsyncTestClient(make_app(data, integrity_interval_s=0, canary_share=0.0)) as client:
        found = [e for e in await events(client) if e["type"] == "immune.integrity"]
        assert [(f["id"], f["problem"]) for f in found[-1]["data"]["failed"]] == [("analysis.i_a.v1", "changed"), ("analysis.i_b.v1", "missing")]
        quarantined = {e["data"]["id"]: e["data"]["reason"] for e in await events(client) if e["type"] == "immune.quarantine"}
        assert set(quarantined) == {a, b}
        assert quarantined[b] == "catalog file cells/analysis.i_b.v1/1.0.0.json is missing"
        await until(lambda: released(client))
        for rid in (a, b, untouched):
            assert (await client.get(f"/factory/cells/{rid}", headers=auth())).json()["state"] == "stable"
        assert file_of(data, "analysis.i_b.v1").is_file()
        assert (await immune(client))["last_integrity_check"]["failed"] != []  # the start's check, as it found them
