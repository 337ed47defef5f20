"""Plans without storage: changes from the factory's dry-run, `+ ~ - =` text, and the base hash."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from neira.commands import parse, resolve
from neira.commands.plan import base_hash, make_plan, render
from neira.errors import NotFound


class FakeFactory:
    """factory.plan(): a live record for the cells in `live`, a new draft otherwise."""

    def __init__(self, live: dict[str, tuple[str, str]]) -> None:
        self.live = live

    async def plan(self, template, backend="adapter", hitl=True):
        cid = template if isinstance(template, str) else template["id"]
        if cid in self.live:
            rid, state = self.live[cid]
            selector = {"action": "reuse", "reason": f"{rid} is {state}", "record_id": rid, "state": state}
            change = {"action": "create", "kind": "cell", "id": cid, "after": "1.0.0", "reason": "x"}
        else:
            selector = {"action": "create", "reason": f"no record of {cid} yet", "record_id": None, "state": None}
            change = {"action": "create", "kind": "cell", "id": cid, "after": "1.0.0", "reason": f"new draft record of {cid}"}
        gate = {"decision_id": "dec-1", "rule": "capability.factory_adapter", "action": "allow", "reason": "open",
                "capability": "factory_adapter"}
        return {"ok": True, "report": {"selector": selector, "policy": {"decisions": [gate]}}, "plan": {"changes": [change]}}

    async def dead_cells(self, cell_ids):
        return []  # every record here is live or absent


class FakeCatalog:
    def __init__(self, organs: dict[str, dict]) -> None:
        self.organs = organs

    async def get_organ_template(self, template_id):
        if template_id not in self.organs:
            raise NotFound(template_id)
        return self.organs[template_id]


def _gate(state: str):
    return lambda name: SimpleNamespace(decision_id="dec-2", rule=f"capability.{name}", action=state,
                                        reason=f"{name} {state}", capability=name)


def services(examples, live=None, gate="allow"):
    organs = {o["id"]: o for o in examples[1]}
    return SimpleNamespace(factory=FakeFactory(live or {}), catalog=FakeCatalog(organs),
                           policy=SimpleNamespace(gate=_gate(gate)))


async def test_update_plan_orders_cells_then_organ(examples, lexicon, known):
    res = resolve(parse("обнови зрение до v2 (grayscale)", lexicon), known)
    plan = await make_plan(res, services(examples, live={"analysis.image_decode.v1": ("cell-1", "stable")}))
    assert [(c["action"], c["id"]) for c in plan["changes"]] == [
        ("reuse", "analysis.image_decode.v1"), ("create", "analysis.grayscale.v1"), ("create", "analysis.edge_detect.v1"),
        ("create", "analysis.vision_adapter.v1"), ("update", "organ.vision.v2")]
    summary, text = render(plan["changes"], "ru")
    assert summary == "создать 3, обновить 1, удалить 0, без изменений 1"
    assert text.splitlines() == [
        "= cell analysis.image_decode.v1 [cell-1, stable]: используется cell-1 (stable)",
        "+ cell analysis.grayscale.v1: новая черновая запись клетки",
        "+ cell analysis.edge_detect.v1: новая черновая запись клетки",
        "+ cell analysis.vision_adapter.v1: новая черновая запись клетки",
        "~ organ organ.vision.v2 (organ.vision.v1 → organ.vision.v2): новая версия organ.vision.v1 → organ.vision.v2"
        " (+ analysis.grayscale.v1)",
        "План: создать 3, обновить 1, удалить 0, без изменений 1.",
    ]
    assert plan["policy"]["allowed"] is True


async def test_base_moves_with_the_state_it_was_made_against(examples, lexicon, known):
    res = resolve(parse("create voice organ v1", lexicon), known)
    a = await make_plan(res, services(examples))
    b = await make_plan(res, services(examples))
    c = await make_plan(res, services(examples, live={"analysis.text_normalize.v1": ("cell-9", "draft")}))
    d = await make_plan(res, services(examples, gate="deny"))
    assert a["base"] == b["base"] and len({a["base"], c["base"], d["base"]}) == 3
    assert d["policy"]["allowed"] is False and d["policy"]["violations"][0]["rule"] == "capability.organs_builder"


async def test_unknown_step_is_a_draft_with_its_own_reason(examples, lexicon, known):
    res = resolve(parse("build speak-pipeline normalize -> phonemes -> vocoder", lexicon), known)
    plan = await make_plan(res, services(examples))
    assert plan["changes"][2] | {"policy": []} == {
        "action": "create", "kind": "cell", "id": "analysis.vocoder.v1", "after": "1.0.0",
        "reason": "new adapter cell draft for 'vocoder'", "policy": []}
    assert plan["changes"][-1]["action"] == "create" and plan["changes"][-1]["id"] == "organ.speak.v1"


def test_base_hash_ignores_decision_ids(lexicon, known):
    res = resolve(parse("create voice organ v1", lexicon), known)
    one = [{"rule": "capability.organs_builder", "action": "allow", "decision_id": "dec-a"}]
    two = [{"rule": "capability.organs_builder", "action": "allow", "decision_id": "dec-b"}]
    assert base_hash(res, [], one) == base_hash(res, [], two)


def test_plan_needs_a_spec(lexicon, known):
    with pytest.raises(ValueError):
        import asyncio

        asyncio.run(make_plan(resolve(parse("help", lexicon), known), SimpleNamespace()))
