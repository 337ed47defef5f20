"""The live stream of one organ: a snapshot, then one frame per change, never blocking the builder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from neira.events import Event, EventBus, Subscription
from neira.organs import store
from neira.storage.db import Database

QUEUE_SIZE = 64  # frames a slow client may fall behind before it gets a fresh snapshot instead


async def snapshot(db: Database, organ_id: str) -> dict[str, Any]:
    """`{id, state, seq}` read in one transaction, so the state and its event's seq agree (404 if unknown)."""
    async with db.read() as conn:
        row = await store.get_row(conn, organ_id)
        seq = await store.last_seq(conn, organ_id)
    return {"id": organ_id, "state": row.state, "seq": seq}


async def organ_stream(db: Database, events: EventBus, organ_id: str,
                       gate: Callable[[], None] | None = None, gate_topic: str | None = None) -> AsyncIterator[dict[str, Any]]:
    """Subscribe first, then read the snapshot: every later change is then either in the snapshot or in the
    queue, and seq filters the overlap, so no change is lost or repeated. The publisher never waits for us:
    when our bounded queue overflows we skip what we missed and send a fresh snapshot. When `gate_topic`
    announces a change, `gate()` is checked again: a gate closed under an open stream ends it (its error)."""
    topic = f"organ:{organ_id}"
    sub = events.subscribe(topic, maxsize=QUEUE_SIZE)
    gate_sub = events.subscribe(gate_topic, maxsize=4) if gate and gate_topic else None
    try:
        frame = await snapshot(db, organ_id)
        last = frame["seq"]
        yield frame
        while True:
            ev = await _next(sub, gate_sub)
            if ev is None:  # the gate changed
                assert gate is not None
                gate()
                continue
            if sub.lagged:
                sub.lagged = False
                while not sub.queue.empty():
                    sub.queue.get_nowait()
                frame = await snapshot(db, organ_id)
                if frame["seq"] > last:
                    last = frame["seq"]
                    yield frame
                continue
            if ev.type != "organ.stage" or ev.seq <= last:
                continue
            last = ev.seq
            yield {"id": organ_id, "state": ev.data["state"], "seq": ev.seq}
    finally:
        events.unsubscribe(topic, sub)
        if gate_sub is not None and gate_topic:
            events.unsubscribe(gate_topic, gate_sub)


async def _next(sub: Subscription, gate_sub: Subscription | None) -> Event | None:
    """The organ's next event, or None when the gate subscription heard something first."""
    if gate_sub is None:
        return await sub.get()
    if not gate_sub.queue.empty():
        gate_sub.queue.get_nowait()
        return None
    if not sub.queue.empty():
        return sub.queue.get_nowait()
    organ, flip = asyncio.ensure_future(sub.get()), asyncio.ensure_future(gate_sub.get())
    try:
        done, _ = await asyncio.wait({organ, flip}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for fut in (organ, flip):
            fut.cancel()
    if organ in done:
        if flip in done:  # both: keep neither lost — the gate is checked on the next call
            gate_sub.queue.put_nowait(flip.result())
        return organ.result()
    return None
