"""Each replica keeps the catalog's files in its own data dir (contract §9, §7): a template registered on one
replica is copied into the others' data dirs, and the immune system's file check on them is not fooled
either way — another replica's new registration is not a missing file, a file removed here still is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from neira.core import Core
from tests.postgres.cores import cores, seen

TEMPLATE = {"id": "analysis.copied.v1", "version": "1.0.0", "analysis_type": "reverse", "links": [],
            "metadata": {"schema": "v1", "adapter": {"impl": "reverse"}}}


@pytest.fixture
async def pair(tmp_path: Path, pg_url: str) -> AsyncIterator[tuple[Core, Core]]:
    async with cores(tmp_path, pg_url, "ab", integrity_interval_s=0) as (a, b):
        yield a, b


async def copied_to(b: Core, record: dict) -> Path:
    """The path of the template's file in B's data dir, once B has copied it."""
    copy = b.catalog.path_for("cell", TEMPLATE["id"], TEMPLATE["version"])

    async def there() -> bool:
        return copy.is_file()

    await seen(there)
    return copy


async def test_a_registration_on_one_replica_is_copied_and_checks_clean_on_the_other(pair: tuple[Core, Core]) -> None:
    a, b = pair
    _, record = await a.factory.create({"template": TEMPLATE}, "admin")
    await copied_to(b, record)
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
    (await copied_to(b, record)).unlink()
    check = await b.immune.check_integrity()
    assert [(f.id, f.problem) for f in check.failed] == [(TEMPLATE["id"], "missing")]
    assert (await a.factory.get(record["id"]))["state"] in {"quarantined", "healing"}  # on every replica: one record
