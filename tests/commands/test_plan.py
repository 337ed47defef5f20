"""Plans as a user meets them: what is shown is what apply does, plans and policy agree, nothing dead is
picked silently, repeated phrases are no-ops, and every reply speaks the command's language."""

from __future__ import annotations

import re

import msgspec
from neira.core import Core
from tests.conftest import make_settings

LATIN_WORD = re.compile(r"(?<![\w.\-])[A-Za-z]{3,}(?![\w.\-])")  # an English word, not an id like organ.voice.v1


async def say(core: Core, text: str, session: str = "s-plan", actor: str = "admin") -> dict:
    """The reply as its JSON (what a client reads)."""
    return msgspec.to_builtins(await core.commands.handle(text, session, actor))


def marks(body: dict) -> list[tuple[str, str, str]]:
    return [(c["action"], c["kind"], c["id"]) for c in body["plan"]["changes"]]


async def test_apply_returns_every_planned_change_with_its_ids(core: Core) -> None:
    said = await say(core, "create voice organ v1")
    applied = await say(core, "apply")
    assert [(a["action"], a["kind"], a["id"]) for a in applied["applied"]] == marks(said)
    assert all(a["record_id"].startswith("cell-") for a in applied["applied"] if a["kind"] == "cell")
    organ = applied["applied"][-1]
    assert organ["organ_id"].startswith("organ-")
    status = await core.organs.status(organ["organ_id"], query=False)
    assert [c["record_id"] for c in status["cells"]] == [a["record_id"] for a in applied["applied"][:3]]


async def test_a_repeated_seed_phrase_is_a_no_op_plan(core: Core) -> None:
    await say(core, "создай голосовой орган v1")
    first = await say(core, "применить")
    again = await say(core, "создай голосовой орган v1")
    assert {c["action"] for c in again["plan"]["changes"]} <= {"reuse", "no-op"}
    assert again["plan"]["text"].splitlines()[-1] == "План: создать 0, обновить 0, удалить 0, без изменений 4."
    organ = again["plan"]["changes"][-1]
    assert organ["record_id"] == first["applied"][-1]["organ_id"]
    done = await say(core, "применить")
    assert done["reply"] == "Готово: ничего не изменилось." and len(await core.organs.list()) == 1


async def test_the_update_said_again_after_apply_is_a_no_op(core: Core) -> None:
    await say(core, "обнови зрение до v2 (grayscale)")
    await say(core, "применить")
    again = await say(core, "обнови зрение до v2 (grayscale)")
    assert again["understood"] is True and "error" not in again, again
    assert again["spec"]["template"]["id"] == "organ.vision.v2"
    assert {c["action"] for c in again["plan"]["changes"]} <= {"reuse", "no-op"}


async def test_a_repeated_pipeline_reuses_its_template(core: Core) -> None:
    said = await say(core, "собери speak-pipeline normalize→phonemes→adapter")
    assert said["spec"]["template"]["id"] == "organ.speak.v1"
    assert ("create", "template", "organ.speak.v1") in marks(said)
    await say(core, "применить")
    again = await say(core, "собери speak-pipeline normalize→phonemes→adapter")
    assert again["spec"]["template"]["id"] == "organ.speak.v1"
    assert {c["action"] for c in again["plan"]["changes"]} <= {"reuse", "no-op"}


async def test_a_stale_plan_names_what_moved_and_asking_again_works(core: Core) -> None:
    mine = await say(core, "create cell summarize v1", session="s-a")
    other = await say(core, "create cell summarize v1", session="s-b")
    assert (await say(core, "apply", session="s-a"))["applied"][0]["record_id"] == "cell-1"
    stale = await say(core, "apply", session="s-b")
    assert stale["error"]["code"] == "plan_stale" and "identity:analysis.summarize.v1@" in stale["reply"]
    fresh = await say(core, "create cell summarize v1", session="s-b")
    assert marks(fresh) == [("no-op", "cell", "analysis.summarize.v1")] and mine["plan"]["id"] != other["plan"]["id"]


async def test_a_dead_record_is_shown_as_blocked_and_the_policy_agrees(core: Core) -> None:
    await say(core, "create voice organ v1")
    applied = await say(core, "apply")
    record_id = applied["applied"][0]["record_id"]
    await core.factory.disable(record_id, "admin")
    body = await say(core, "create voice organ v1")
    blocked = body["plan"]["changes"][0]
    assert (blocked["action"], blocked["record_id"]) == ("no-op", record_id) and "disabled" in blocked["reason"]
    assert body["policy"]["allowed"] is False
    assert [v["rule"] for v in body["policy"]["violations"]] == ["cell.live_record"]


async def test_refusals_say_allowed_false(core: Core) -> None:
    viewer = await say(core, "create voice organ v1", actor="viewer")
    assert viewer["policy"]["allowed"] is False and viewer["error"]["code"] == "forbidden"
    await core.policy.set_safe_mode("admin", True, "drill")
    operator = await say(core, "создай голосовой орган v1", actor="operator")
    assert operator["policy"] == {"allowed": False, "violations": [operator["policy"]["violations"][0]]}
    assert operator["policy"]["violations"][0]["rule"] == "safe_mode"
    assert operator["reply"] == "Нельзя: включён безопасный режим: менять может только администратор."


async def test_chat_lifecycle_commands_are_one_change_plans_on_the_active_record(core: Core) -> None:
    _, first = await core.factory.create({"template": "analysis.grayscale.v1"}, "admin")
    for _ in range(3):
        await core.factory.approve(first["id"], "admin")
    newer = dict(await core.catalog.get_cell("analysis.grayscale.v1"), version="1.1.0")
    _, second = await core.factory.create({"template": newer}, "admin")
    await core.factory.approve(second["id"], "admin")
    await core.factory.rollback(second["id"], "admin")  # the newest record is dead; the stable one is active
    body = await say(core, "approve grayscale", session="s-life")  # the stable one: nothing left to approve
    assert body["error"]["target"] == first["id"] and first["id"] in body["reply"]
    disable = await say(core, "отключи клетку grayscale", session="s-life")
    assert disable["target"] == {"kind": "cell", "id": first["id"], "template_id": "analysis.grayscale.v1"}
    assert disable["plan"]["changes"] == [{
        "action": "update", "kind": "cell", "id": "analysis.grayscale.v1", "record_id": first["id"],
        "before": "stable", "after": "disabled", "reason": f"отключить {first['id']}: stable → disabled"}]
    assert (await core.factory.get(first["id"]))["state"] == "stable"  # nothing happens before apply
    done = await say(core, "применить", session="s-life")
    assert done["applied"][0]["record_id"] == first["id"]
    assert (await core.factory.get(first["id"]))["state"] == "disabled"


async def test_approving_a_stable_record_is_refused_with_states(core: Core) -> None:
    _, record = await core.factory.create({"template": "analysis.grayscale.v1"}, "admin")
    for _ in range(3):
        await core.factory.approve(record["id"], "admin")
    body = await say(core, "approve grayscale")
    assert (body["error"]["code"], body["error"]["from"], body["error"]["to"]) == ("invalid_transition", "stable", "stable")
    assert record["id"] in body["reply"]


async def test_organ_lifecycle_by_chat(tmp_path) -> None:
    core = Core(make_settings(tmp_path / "slow", stage_delays_ms=(600_000, 600_000, 600_000)))  # nothing moves by itself
    await core.start()
    try:
        await _organ_lifecycle(core)
    finally:
        await core.stop()


async def _organ_lifecycle(core: Core) -> None:
    await say(core, "create echo organ v1", session="s-o")
    organ_id = (await say(core, "apply", session="s-o"))["applied"][-1]["organ_id"]
    cancel = await say(core, f"cancel build {organ_id}", session="s-o")
    assert cancel["plan"]["changes"][0] | {"reason": ""} == {
        "action": "update", "kind": "organ", "id": "organ.echo.v1", "record_id": organ_id,
        "before": cancel["plan"]["changes"][0]["before"], "after": "failed", "reason": ""}
    await say(core, "apply", session="s-o")
    assert (await core.organs.status(organ_id, query=False))["state"] == "failed"
    rebuild = await say(core, "rebuild organ.echo.v1", session="s-o")  # a failed organ is named when it is mended
    assert rebuild["target"]["id"] == organ_id and rebuild["plan"]["changes"][0]["after"] == "draft"
    again = await say(core, f"cancel build {organ_id}", session="s-o")
    assert again["understood"] is True and again["error"]["code"] == "invalid_transition"


async def test_replies_are_wholly_in_the_command_language(core: Core) -> None:
    for text in ("создай голосовой орган v1", "применить", "обнови зрение до v2 (grayscale)", "отключи клетку grayscale",
                 "создай клетку анализа summarize v1"):
        body = await say(core, text, session="s-ru")
        words = LATIN_WORD.findall(body["reply"].replace("adapter", ""))
        assert not [w for w in words if w not in {"draft", "canary", "experimental", "stable", "disabled", "failed",
                                                    "rolled_back", "deprecated"}], (text, body["reply"])


async def test_a_break_in_the_type_chain_shows_before_apply_and_blocks_it(core: Core) -> None:
    broken = await say(core, "собери test-pipeline edges → reverse", session="s-chain")
    [risk] = broken["plan"]["risks"]
    assert (risk["code"], risk["severity"], risk["cells"]) == ("type_mismatch", "error",
                                                               ["analysis.edge_detect.v1", "analysis.reverse.v1"])
    assert "! analysis.edge_detect.v1 → analysis.reverse.v1: типы не совпадают" in broken["plan"]["text"]
    assert broken["policy"]["allowed"] is False and broken["policy"]["violations"][0]["rule"] == "compat.type_mismatch"
    refused = await say(core, "применить", session="s-chain")
    assert refused["error"]["code"] == "policy_denied" and await core.organs.list() == []
    fine = await say(core, "build x-pipeline normalize -> frobnicate", session="s-chain")
    assert [(r["code"], r["severity"], r["id"]) for r in fine["plan"]["risks"]] == [
        ("no_implementation", "warning", "analysis.frobnicate.v1")]
    assert fine["policy"]["allowed"] is True
    assert (await say(core, "создай голосовой орган v1", session="s-chain"))["plan"]["risks"] == []


async def test_a_remembered_plan_gets_its_own_id_and_decisions_and_follows_every_change(core: Core) -> None:
    first = await say(core, "create voice organ v1", session="s-memo")
    again = await say(core, "create voice organ v1", session="s-memo")
    assert again["plan"]["id"] != first["plan"]["id"] and again["plan"]["changes"] == first["plan"]["changes"]
    ids = lambda body: [d["decision_id"] for d in core.commands.store._pending[body["plan"]["id"]].body["plan"]["decisions"]]  # noqa: E731
    assert set(ids(first)).isdisjoint(ids(again))  # each plan's gate decisions are its own
    await core.policy.set_capability("admin", "factory_adapter", "disabled")  # a gate flip: asked again
    closed = await say(core, "create voice organ v1", session="s-memo")
    assert closed["policy"]["allowed"] is False
    await core.policy.set_capability("admin", "factory_adapter", "experimental")
    applied = await say(core, "apply", session="s-memo")  # the denied plan: the gate moved since, so it is stale
    assert applied["error"]["code"] == "plan_stale" and "gate:factory_adapter" in applied["reply"]
    await say(core, "create voice organ v1", session="s-memo")
    await say(core, "apply", session="s-memo")
    after = await say(core, "create voice organ v1", session="s-memo")  # records and an organ moved: planned anew
    assert {c["action"] for c in after["plan"]["changes"]} <= {"reuse", "no-op"}


async def test_a_run_that_cannot_happen_says_why_in_the_commands_language(tmp_path) -> None:
    """Runs by name serve the stable organ; before there is one, the reply says what there is and how to run
    it, wholly in the command's language (ids and states aside)."""
    core = Core(make_settings(tmp_path / "slow", stage_delays_ms=(600_000, 600_000, 600_000)))  # nothing moves by itself
    await core.start()
    try:
        await say(core, "создай голосовой орган v1", session="s-run")
        organ_id = (await say(core, "применить", session="s-run"))["applied"][-1]["organ_id"]
        replies = {text: (await say(core, text, session="s-run"))["reply"] for text in (
            "запусти голосовой орган: привет", "запусти зрение: привет", "запусти organ-9: привет")}
        assert replies == {
            "запусти голосовой орган: привет": f"organ.voice.v1 ещё не стабилен: его последняя сборка {organ_id} сейчас "
                                                f"в состоянии draft. Её можно запустить по номеру: «запусти {organ_id}: …».",
            "запусти зрение: привет": "Органа organ.vision.v1 нет. Соберите его сначала: «создай орган organ.vision.v1».",
            "запусти organ-9: привет": "Органа organ-9 нет. Скажите «покажи органы», чтобы увидеть все.",
        }
        assert (await say(core, "статус cell-99", session="s-run"))["reply"] == "Записи клетки cell-99 нет."
        assert (await say(core, "запусти клетку реверс: привет", session="s-run"))["reply"] == (
            "У клетки analysis.reverse.v1 ещё нет записи. Создайте её: «создай клетку analysis.reverse.v1».")
        english = await say(core, "run the voice organ on hello", session="s-run")
        assert english["reply"].startswith(f"organ.voice.v1 is not stable yet: its newest build {organ_id} is draft.")
        assert english["error"]["code"] == "not_runnable"  # the JSON keeps the service's own error
        await say(core, f"cancel build {organ_id}", session="s-run")
        await say(core, "применить", session="s-run")
        failed = await say(core, f"запусти {organ_id}: привет", session="s-run")
        assert failed["reply"] == f"{organ_id} провален, запустить его нельзя. Скажите «пересобери {organ_id}»."
        assert (await say(core, "запусти голосовой орган: привет", session="s-run"))["reply"] == (
            "У organ.voice.v1 нет ни одной живой сборки: все провалены. Скажите «пересобери organ.voice.v1».")
        for reply in replies.values():
            assert not LATIN_WORD.findall(reply.replace("draft", "")), reply
    finally:
        await core.stop()
