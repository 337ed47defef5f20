"""The status read model never shows a stale organ or cell state after a committed write."""

from __future__ import annotations

from neira.core import Core
from tests.unit.test_organs import build, until_state


async def test_status_follows_stages_manual_moves_and_cell_moves(core: Core) -> None:
    organ_id = await build(core)
    await until_state(core, organ_id, "stable")  # automatic moves (batched) invalidate the cached row
    first = await core.organs.status(organ_id, query=False)
    assert first == await core.organs.status(organ_id, query=False)  # served from the cache
    await core.organs.set_status(organ_id, "failed", "by hand", "admin")
    assert (await core.organs.status(organ_id, query=False))["state"] == "failed"
    record_id = first["cells"][0]["record_id"]
    assert first["cells"][0]["state"] == "stable"  # it went to stable with its organ
    await core.organs.rebuild(organ_id, "admin")
    assert (await core.organs.status(organ_id, query=False))["metrics"]["attempts"] == 2
    await until_state(core, organ_id, "stable")
    await core.factory.disable(record_id, "admin")  # a cell move still shows on the settled organ's status
    cells = (await core.organs.status(organ_id, query=False))["cells"]
    assert cells[0]["state"] == "disabled" and cells[0]["record_id"] == record_id


async def test_a_load_that_raced_a_write_is_not_kept(core: Core) -> None:
    organ_id = await build(core)
    await until_state(core, organ_id, "stable")
    rows = core.organs.rows
    rows.forget([organ_id])
    writes = rows._writes  # noqa: SLF001 - the race is simulated by a write landing during the load
    real_get_row = rows.db.read

    def racing_read():  # a commit lands while the row is being read
        rows.forget(["organ-other"])
        return real_get_row()

    rows.db.read = racing_read  # type: ignore[method-assign]
    try:
        await rows.get(organ_id)
    finally:
        rows.db.read = real_get_row  # type: ignore[method-assign]
    assert rows._writes == writes + 1  # noqa: SLF001
    assert organ_id not in rows._rows  # noqa: SLF001
