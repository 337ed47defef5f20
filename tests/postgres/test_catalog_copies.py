"""Each replica keeps the catalog's files in its own data dir (contract §9, §7): a template registered on one
replica is copied into the others' data dirs, and the immune system's file check on them is not fooled
either way — another replica's new registration is not a missing file, a file removed here still is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from neira.core import Core
from tests.conftest import make_settings
from tests.postgres.test_feed import seen

TEMPLATE = {"id": "analysis.copied.v1", "version": "1.0.0", "analysis_type": "reverse", "links": [],
            "metadata": {"schema": "v1", "adapter": {"impl": "reverse"}}}


@pytest.fixture
async def pair(tmp_path: Path, pg_url: str) -> AsyncIterator[tuple[Core, Core]]:
    slow = (600_000, 600_000, 600_000)
    a = Core(make_settings(tmp_path / "a", database_url=pg_url, stage_delays_ms=slow, integrity_interval_s=0))
    b = Core(make_settings(tmp_path / "b", database_url=pg_url, stage_delays_ms=slow, integrity_interval_s=0))
    await a.start()
    await b.start()
    try:
        yield a, b
    finally:
        await b.stop()
        await a.stop()


async def test_a_registration_on_one_replica_is_copied_and_checks_clean_on_the_other(pair: tuple[Core, Core]) -> None:
    a, b = pair
    _, record = await a.factory.create({"template": TEMPLATE}, "admin")
    copy = b.catalog.path_for("cell", TEMPLATE["id"], TEMPLATE["version"])

    async def copied() -> bool:
        return copy.is_file()

    await seen(copied)
    check = await b.immune.check_integrity()  # right after: nothing missing, nothing quarantined
    assert check.failed == []
    assert (await b.factory.get(record["id"]))["state"] == "draft"


async def test_a_new_registration_checked_before_its_copy_arrived_is_copied_not_quarantined(pair: tuple[Core, Core]) -> None:
    a, b = pair
    b.db.feed._subscribers["catalog"].remove(b.catalog.changed)  # B does not hear of it (a delayed notification)
    _, record = await a.factory.create({"template": TEMPLATE}, "admin")
    copy = b.catalog.path_for("cell", TEMPLATE["id"], TEMPLATE["version"])
    assert not copy.is_file()
    check = await b.immune.check_integrity()
    assert check.failed == [] and copy.is_file()
    assert (await b.factory.get(record["id"]))["state"] == "draft"


async def test_a_file_removed_from_a_replicas_data_dir_is_still_a_fault(pair: tuple[Core, Core]) -> None:
    a, b = pair
    _, record = await a.factory.create({"template": TEMPLATE}, "admin")
    copy = b.catalog.path_for("cell", TEMPLATE["id"], TEMPLATE["version"])

    async def copied() -> bool:
        return copy.is_file()

    await seen(copied)
    copy.unlink()
    check = await b.immune.check_integrity()
    assert [(f.id, f.problem) for f in check.failed] == [(TEMPLATE["id"], "missing")]
    assert (await a.factory.get(record["id"]))["state"] in {"quarantined", "healing"}  # on every replica: one record
