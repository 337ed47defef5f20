"""The per-organ stream: snapshot first, one frame per change, and a fresh snapshot after falling behind."""

from __future__ import annotations

import asyncio

import pytest

from neira.core import Core
from neira.errors import InvalidTransition, NotFound
from neira.organs import stream as organ_stream_module

VOICE = "organ.voice.v1"


async def held_organ(core: Core) -> str:
    _, body = await core.organs.build({"organ_template": VOICE}, "admin")
    await hold_in_draft(core, body["organ_id"])
    return body["organ_id"]


async def hold_in_draft(core: Core, organ_id: str) -> None:
    """Back to draft (a rebuild, if it moved on) and held there: no timer moves it again."""
    while True:
        state = (await core.organs.status(organ_id, query=False))["state"]
        if state != "draft":
            await core.organs.rebuild(organ_id, "admin")
            continue
        try:
            await core.organs.set_status(organ_id, "draft", None, "admin")
            return
        except InvalidTransition:  # it took its next step between the read and the move
            continue


async def test_snapshot_then_changes(core: Core) -> None:
    organ_id = await held_organ(core)
    frames = core.organs.stream(organ_id)
    first = await anext(frames)
    assert (first["id"], first["state"]) == (organ_id, "draft") and first["seq"] > 0
    await core.organs.set_status(organ_id, "canary", None, "admin")
    await core.organs.cancel(organ_id, "admin")
    second, third = await anext(frames), await anext(frames)
    assert [(f["state"], f["seq"] > first["seq"]) for f in (second, third)] == [("canary", True), ("failed", True)]
    await frames.aclose()
    assert not core.events._subs  # unsubscribed


async def test_unknown_organ(core: Core) -> None:
    with pytest.raises(NotFound):
        await anext(core.organs.stream("organ-1"))
    assert not core.events._subs


async def test_lagging_subscriber_gets_a_fresh_snapshot(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(organ_stream_module, "QUEUE_SIZE", 4)
    organ_id = await held_organ(core)
    frames = core.organs.stream(organ_id)
    await anext(frames)
    for _ in range(5):  # 15+ changes into a queue of 4: publisher never waits
        await core.organs.set_status(organ_id, "canary", None, "admin")
        await core.organs.set_status(organ_id, "experimental", None, "admin")
        await hold_in_draft(core, organ_id)
    frame = await anext(frames)
    latest = [e for e in await core.events.list(0, 1000) if e.subject == f"organ:{organ_id}"][-1]
    assert frame == {"id": organ_id, "state": "draft", "seq": latest.seq}
    await core.organs.set_status(organ_id, "stable", None, "admin")
    assert (await asyncio.wait_for(anext(frames), 5))["state"] == "stable"
    await frames.aclose()


async def test_gate_flip_is_checked_and_an_open_gate_keeps_streaming(core: Core) -> None:
    from neira.errors import CapabilityDisabled

    organ_id = await held_organ(core)
    frames = core.organs.stream(organ_id)
    await anext(frames)
    await core.policy.set_capability("admin", "organs_builder", "stable")  # still open: stream goes on
    await core.organs.set_status(organ_id, "canary", None, "admin")
    assert (await asyncio.wait_for(anext(frames), 5))["state"] == "canary"
    await core.policy.set_capability("admin", "organs_builder", "disabled")
    with pytest.raises(CapabilityDisabled):
        await asyncio.wait_for(anext(frames), 5)
    assert not core.events._subs
