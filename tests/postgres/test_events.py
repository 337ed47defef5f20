"""Events across replicas on one PostgreSQL database (contract §9): what any replica commits reaches every
replica's subscribers — the writer's too — in seq order, each event once, even while several replicas
write at the same moment."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from neira.core import Core
from neira.events import Event, Subscription
from tests.postgres.cores import cores

TOPIC = "probe"


@pytest.fixture
async def three(tmp_path: Path, pg_url: str) -> AsyncIterator[list[Core]]:
    async with cores(tmp_path, pg_url) as made:
        yield made


async def emit(core: Core, name: str, n: int) -> None:
    """`n` one-event transactions and one of `n` events, as the builder's batches are."""
    for i in range(n):
        async with core.db.transaction() as tx:
            await core.events.emit(tx, "probe.one", TOPIC, {"by": name, "i": i})
    async with core.db.transaction() as tx:
        await core.events.emit_many(tx, [("probe.many", TOPIC, {"by": name, "i": i}) for i in range(n)])


async def drain(sub: Subscription, n: int) -> list[Event]:
    got = []
    async with asyncio.timeout(10):
        while len(got) < n:
            got.append(await sub.get())
    return got


async def test_every_replica_sees_every_replicas_events_in_seq_order_once(three: list[Core]) -> None:
    subs = [c.events.subscribe(TOPIC, maxsize=1_000) for c in three]
    n = 40
    await asyncio.gather(*[emit(c, name, n) for c, name in zip(three, "abc", strict=True)])
    total = 3 * 2 * n
    stored = await three[0].events.list(0, 1_000)
    assert len([e for e in stored if e.subject == TOPIC]) == total
    for core, sub in zip(three, subs, strict=True):
        got = await drain(sub, total)
        seqs = [e.seq for e in got]
        assert seqs == sorted(seqs) and len(set(seqs)) == total, f"{core.db.replica}: out of order or repeated"
        assert {(e.data["by"], e.type) for e in got} == {(b, t) for b in "abc" for t in ("probe.one", "probe.many")}
        assert sub.queue.empty() and not sub.lagged


async def test_a_rolled_back_transaction_delivers_nothing(three: list[Core]) -> None:
    a, b, _ = three
    sub = b.events.subscribe(TOPIC)
    with pytest.raises(RuntimeError):
        async with a.db.transaction() as tx:
            await a.events.emit(tx, "probe.one", TOPIC, {"by": "a", "i": 0})
            raise RuntimeError("changed my mind")
    async with a.db.transaction() as tx:
        await a.events.emit(tx, "probe.one", TOPIC, {"by": "a", "i": 1})
    got = await drain(sub, 1)
    assert got[0].data == {"by": "a", "i": 1}
    assert not a.events._mine  # the rolled-back one is not kept waiting for a notification
