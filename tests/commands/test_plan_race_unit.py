"""Two plans for the same new organ version with different cells: whichever is applied second is stale,
never a silent build of the other plan's organ."""

from __future__ import annotations

import pytest

from neira.core import Core
from neira.errors import PlanStale


async def test_the_second_of_two_plans_for_one_new_version_is_stale(core: Core) -> None:
    svc = core.commands
    v1 = await svc.handle("создай зрительный орган v1", "setup", "admin")
    await svc.apply(v1["plan"]["id"], "admin")
    a = await svc.handle("обнови зрение до v2 (grayscale)", "session-a", "admin")
    b = await svc.handle("обнови зрение до v2", "session-b", "admin")
    assert a["spec"]["template"]["cells"] != b["spec"]["template"]["cells"]
    await svc.apply(a["plan"]["id"], "admin")
    with pytest.raises(PlanStale):
        await svc.apply(b["plan"]["id"], "admin")
    built = [o for o in await core.organs.list() if o["template_id"] == "organ.vision.v2"]
    assert len(built) == 1


async def test_a_viewer_may_ask_but_not_change(client) -> None:
    from tests.conftest import auth

    r = await client.post("/api/neira/commands", json={"text": "покажи органы"}, headers=auth("viewer"))
    assert r.status_code == 200 and r.json()["understood"] and "error" not in r.json()
    r = await client.post("/api/neira/commands", json={"text": "создай голосовой орган v1"}, headers=auth("viewer"))
    assert (r.status_code, r.json()["error"]["code"], r.json()["plan"]) == (200, "forbidden", None)
    await client.post("/api/neira/safe-mode", json={"enabled": True}, headers=auth())
    r = await client.post("/api/neira/commands", json={"text": "approve organ-1"}, headers=auth("operator"))
    assert r.json()["error"]["code"] == "safe_mode"
    r = await client.post("/api/neira/commands", json={"text": "help"}, headers=auth("operator"))
    assert "error" not in r.json()


async def test_apply_in_a_session_applies_only_the_callers_own_plan(core: Core) -> None:
    svc = core.commands
    await svc.handle("создай голосовой орган v1", "shared-session", "admin")
    other = await svc.handle("apply", "shared-session", "operator")
    assert "applied" not in other and other["plan"] is None
    mine = await svc.handle("apply", "shared-session", "admin")
    assert next(a for a in mine["applied"] if a["kind"] == "organ")["id"] == "organ.voice.v1"


async def test_a_plan_over_a_disabled_cell_is_denied_before_apply(core: Core) -> None:
    """The plan says what apply would say: a build over a cell whose only record is disabled is refused."""
    svc = core.commands
    first = await svc.handle("создай голосовой орган v1", "s1", "admin")
    await svc.apply(first["plan"]["id"], "admin")
    record = next(r for r in await core.factory.list() if r["template_id"] == "analysis.text_normalize.v1")
    await core.factory.disable(record["id"], "admin")
    again = await svc.handle("собери speak-pipeline normalize→phonemes→adapter", "s2", "admin")
    assert again["policy"]["allowed"] is False
    [violation] = again["policy"]["violations"]
    assert violation["rule"] == "cell.live_record" and record["id"] in violation["reason"]
    applied = await svc.handle("apply", "s2", "admin")
    assert applied["error"]["code"] == "policy_denied"
