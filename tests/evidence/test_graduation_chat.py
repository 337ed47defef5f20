"""The chat and graduation: «почему organ-1 ждёт?» is answered with the evidence, «придержи»/"hold" and
«одобри»/"promote" are one-change plans, and an organ waiting for approval is announced in both languages."""

from __future__ import annotations

import re

import msgspec
from neira.core import Core
from tests.evidence.conftest import GOOD
from tests.evidence.test_graduation import organ_with, wait_for


async def say(core: Core, text: str, session: str = "s-grad") -> dict:
    """The reply as its JSON (what a client reads)."""
    return msgspec.to_builtins(await core.commands.handle(text, session, "admin"))


async def test_why_hold_and_approve_in_the_chat(ecore: Core) -> None:
    organ_id = await organ_with(ecore, "picky", GOOD, hitl=True, name="chatty")
    status = await wait_for(ecore, organ_id, lambda s: s["waiting_for"] == "approval")
    runs, p99 = status["analysis"]["runs"], status["analysis"]["p99_ms"]

    ru = await say(ecore, f"почему {organ_id} ждёт?")
    assert (ru["intent"], ru["lang"], ru["plan"]) == ("why", "ru", None)
    assert re.fullmatch(rf"{organ_id} ждёт одобрения: \d+ прогон(а|ов)?, 0 ошибок, p99 [\d.]+ мс\. Скажите «одобри {organ_id}»\.", ru["reply"]), ru["reply"]
    assert f"p99 {p99:.1f} мс" in ru["reply"] or f"p99 {p99:.0f} мс" in ru["reply"]
    en = await say(ecore, f"why is {organ_id} waiting?")
    assert en["intent"] == "why" and en["reply"].startswith(f"{organ_id} waits for approval: ") and "0 errors" in en["reply"]
    assert int(re.search(r"(\d+) runs", en["reply"]).group(1)) >= runs  # type: ignore[union-attr]

    announced = [e for e in await ecore.events.list(0, 10_000) if e.type == "organ.waiting" and e.subject == f"organ:{organ_id}"]
    assert announced[0].data["text"]["ru"].startswith(f"{organ_id} ждёт одобрения: ")
    assert announced[0].data["text"]["en"].startswith(f"{organ_id} waits for approval: ")

    held = await say(ecore, f"придержи {organ_id}")
    assert held["intent"] == "hold" and held["plan"]["changes"][0]["before"] == held["plan"]["changes"][0]["after"] == "canary"
    assert "придержать" in held["plan"]["text"] and (await ecore.organs.status(organ_id, query=False))["hold"] is None
    applied = await say(ecore, "применить")
    assert applied["applied"][0]["organ_id"] == organ_id
    assert (await ecore.organs.status(organ_id, query=False))["hold"]["actor"] == "admin"
    why_held = await say(ecore, f"why is {organ_id} waiting?", "s-en")
    assert why_held["reply"].startswith(f"{organ_id} is on hold (admin: ") and "): it waits for approval. " in why_held["reply"]

    promote = await say(ecore, f"promote {organ_id}", "s-en")
    assert promote["intent"] == "approve" and promote["plan"]["changes"][0]["after"] == "experimental"
    assert (await say(ecore, "apply", "s-en"))["applied"][0]["organ_id"] == organ_id
    status = await ecore.organs.status(organ_id, query=False)
    assert (status["state"], status["hold"]) == ("experimental", None)
