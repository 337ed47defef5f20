"""The live stream of one organ: a snapshot, then one frame per change, never blocking the builder."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import select

from neira.events import EventBus
from neira.organs import store
from neira.storage import tables
from neira.storage.db import Database

FRAMED = frozenset({"organ.stage", "organ.waiting"})  # the organ's events a stream passes on
QUEUE_SIZE = 64  # frames a slow client may fall behind before it gets a fresh snapshot instead


async def snapshot(db: Database, organ_id: str) -> dict[str, Any]:
    """`{id, state, seq}` from one statement, so the state and its event's seq agree (404 if unknown); when the
    organ's newest framed event says it waits for approval in this state, the snapshot says so too, so a
    stream opened after that moment does not miss it."""
    e = tables.events.c
    async with db.read() as conn:
        state, seq = await store.state_and_seq(conn, organ_id)
        last = (await conn.execute(select(e.seq, e.type, e.data).where(
            e.subject == f"organ:{organ_id}", e.type.in_(FRAMED)).order_by(e.seq.desc()).limit(1))).first()
    frame: dict[str, Any] = {"id": organ_id, "state": state, "seq": seq}
    if last is not None and last.type == "organ.waiting" and last.data.get("state") == state:
        frame.update(waiting(last.seq, last.data))
    return frame


def waiting(seq: int, data: dict[str, Any]) -> dict[str, Any]:
    """The fields of a frame that says the organ waits for a human (`waiting_seq`: the event that said it)."""
    return {"waiting_for": data["waiting_for"], "waiting_seq": seq, "text": data.get("text") or {}}


async def organ_stream(db: Database, events: EventBus, organ_id: str,
                       gate: Callable[[], None] | None = None, gate_topic: str | None = None) -> AsyncIterator[dict[str, Any]]:
    """Subscribe first, then read the snapshot: every later change is then either in the snapshot or in the
    queue, and seq filters the overlap, so no change is lost or repeated. The publisher never waits for us:
    when our bounded queue overflows we skip what we missed and send a fresh snapshot. When `gate_topic`
    announces a change, `gate()` is checked again: a gate closed under an open stream ends it (its error).
    The organ's events and the gate's share one queue, so a waiting stream waits on one future."""
    topic = f"organ:{organ_id}"
    sub = events.subscribe(topic, maxsize=QUEUE_SIZE)
    if gate and gate_topic:
        events.subscribe(gate_topic, into=sub)
    try:
        frame = await snapshot(db, organ_id)
        last = frame["seq"]
        yield frame
        while True:
            ev = await sub.get()
            if sub.lagged:  # frames were dropped, a gate change perhaps among them
                sub.lagged = False
                while not sub.queue.empty():
                    sub.queue.get_nowait()
                if gate is not None:
                    gate()
                frame = await snapshot(db, organ_id)
                if frame["seq"] > last:
                    last = frame["seq"]
                    yield frame
                continue
            if ev.subject == gate_topic and gate is not None:
                gate()
                continue
            if ev.type not in FRAMED or ev.seq <= last:
                continue
            last = ev.seq
            if ev.type == "organ.waiting":  # it waits for a human: the evidence, in words, for the chat to say
                yield {"id": organ_id, "state": ev.data["state"], "seq": ev.seq, **waiting(ev.seq, ev.data)}
                continue
            yield {"id": organ_id, "state": ev.data["state"], "seq": ev.seq}
    finally:
        events.unsubscribe(topic, sub)
        if gate_topic:
            events.unsubscribe(gate_topic, sub)
