"""The change feed across processes on one PostgreSQL database (contract §9): what one replica commits reaches
the caches of another within a second — gates, safe mode, catalog registrations, cell records, organ rows —
and a replica whose listener lost its connection reloads what it missed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from neira.core import Core
from neira.policy import GateState
from tests.postgres.cluster import Cluster
from tests.postgres.cores import cores, seen


@pytest.fixture
async def replicas(tmp_path: Path, pg_url: str) -> AsyncIterator[tuple[Core, Core]]:
    async with cores(tmp_path, pg_url, "ab") as (a, b):
        yield a, b


async def test_a_gate_flip_and_safe_mode_reach_the_other_replica(replicas: tuple[Core, Core]) -> None:
    a, b = replicas
    assert b.policy.capabilities["factory_adapter"] is not GateState.DISABLED
    await a.policy.set_capability("admin", "factory_adapter", "disabled", "maintenance")

    async def flipped() -> bool:
        return b.policy.capabilities["factory_adapter"] is GateState.DISABLED

    await seen(flipped)
    await a.policy.set_safe_mode("admin", True, "incident")

    async def safe() -> bool:
        return b.policy.safe_mode and b.policy.safe_mode_reason == "incident"

    await seen(safe)


async def test_registrations_records_and_organs_reach_the_other_replica(replicas: tuple[Core, Core]) -> None:
    a, b = replicas
    template = {"id": "analysis.shared.v1", "version": "1.0.0", "analysis_type": "reverse", "links": [],
                "metadata": {"schema": "v1", "adapter": {"impl": "reverse"}}}
    assert "analysis.shared.v1" not in await b.catalog.latest_view()  # B's index is loaded before A registers
    assert await b.factory.newest_record_id("analysis.shared.v1") is None
    _, record = await a.factory.create({"template": template}, "admin")

    async def registered() -> bool:
        return "analysis.shared.v1" in await b.catalog.latest_view()

    async def recorded() -> bool:
        return await b.factory.newest_record_id("analysis.shared.v1") == record["id"]

    await seen(registered)
    await seen(recorded)
    _, built = await a.organs.build({"organ_template": "organ.echo.v1"}, "admin")
    organ = built["organ_id"]
    assert (await b.organs.status(organ))["state"] == "draft"  # now in B's organ rows
    await a.organs.set_status(organ, "failed", "test", "admin")

    async def moved() -> bool:
        return (await b.organs.status(organ))["state"] == "failed"

    await seen(moved)


async def test_a_listener_that_lost_its_connection_reloads_what_it_missed(
        replicas: tuple[Core, Core], pg_cluster: Cluster, pg_url: str) -> None:
    a, b = replicas
    listener = b.db._listener
    assert listener is not None
    pid = listener._conn.get_server_pid()
    pg_cluster.psql(f"SELECT pg_terminate_backend({pid})")
    # Committed while B hears nothing: its notification is gone for B.
    await a.policy.set_capability("admin", "factory_adapter", "disabled", "while b was away")

    async def back_and_reloaded() -> bool:
        return listener.reconnects == 1 and b.policy.capabilities["factory_adapter"] is GateState.DISABLED

    await seen(back_and_reloaded, within=5.0)
    assert listener._conn.get_server_pid() != pid


def test_a_large_transaction_is_told_in_notifications_under_the_limit() -> None:
    from neira.storage.feed import Changed
    from neira.storage.notify import Note, payloads

    changes = [Changed(table="organs", key=f"organ-{i}", value="organ.echo.v1" if i % 2 else None) for i in range(2000)]
    changes.append(Changed(table="catalog", key="cell:x@1", value=("cell", "x", "1", {"big": "body"}, "digest")))
    sent = payloads("r1", changes)
    assert len(sent) > 1 and all(len(p.encode()) < 8000 for p in sent)
    notes = [msgspec.json.decode(p, type=Note) for p in sent]
    assert {n.replica for n in notes} == {"r1"}
    told = [c for n in notes for c in n.changes]
    assert told == [(c.table, c.key, c.value if isinstance(c.value, str) else None) for c in changes]  # ids and short hints only, in order
