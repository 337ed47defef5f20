"""HTTP: POST /api/neira/commands and POST /api/neira/commands/plans/{id}/apply."""

from __future__ import annotations

from tests.conftest import auth

URL = "/api/neira/commands"
VOICE = ["analysis.text_normalize.v1", "analysis.text_to_phonemes.v1", "analysis.speak_adapter.v1"]


async def say(client, text: str, session: str | None = "s-test", role: str = "admin"):
    body = {"text": text} if session is None else {"text": text, "session_id": session}
    return await client.post(URL, json=body, headers=auth(role))


async def test_seed_create_voice_organ_plans_without_writing(client):
    r = await say(client, "создай голосовой орган v1")
    assert r.status_code == 200
    body = r.json()
    assert (body["understood"], body["lang"], body["intent"]) == (True, "ru", "create_organ")
    assert body["spec"]["kind"] == "organ_template" and body["spec"]["template"]["id"] == "organ.voice.v1"
    assert body["policy"] == {"allowed": True, "violations": []}
    plan = body["plan"]
    assert plan["id"].startswith("plan-") and len(plan["base"]) == 64
    assert [(c["action"], c["kind"], c["id"]) for c in plan["changes"]] == [
        ("create", "cell", VOICE[0]), ("create", "cell", VOICE[1]), ("create", "cell", VOICE[2]),
        ("create", "organ", "organ.voice.v1")]
    assert plan["summary"] == "создать 4, обновить 0, удалить 0, без изменений 0"
    assert plan["text"].splitlines()[-1] == "План: создать 4, обновить 0, удалить 0, без изменений 0."
    assert plan["text"].splitlines()[0] == (
        "+ клетка analysis.text_normalize.v1 — новая черновая запись analysis.text_normalize.v1 1.0.0")
    assert plan["text"].splitlines()[3] == "+ орган organ.voice.v1 — черновая сборка органа из шаблона organ.voice.v1"
    assert (await client.get("/organs/", headers=auth())).json() == []  # a plan writes nothing


async def test_seed_update_vision_shows_the_update_from_v1(client):
    body = (await say(client, "обнови зрение до v2 (grayscale)")).json()
    assert body["intent"] == "update_organ" and body["target"] == {"kind": "organ", "id": "organ.vision.v1"}
    template = body["spec"]["template"]
    assert template["id"] == "organ.vision.v2" and template["version"] == "2.0.0"
    assert "analysis.grayscale.v1" in template["cells"]
    template_change, build = body["plan"]["changes"][-2:]
    assert template_change == {
        "action": "update", "kind": "template", "id": "organ.vision.v2", "before": "organ.vision.v1",
        "after": "organ.vision.v2",
        "reason": "новый шаблон органа organ.vision.v2 на основе organ.vision.v1 (+ analysis.grayscale.v1)"}
    assert (build["action"], build["kind"], build["id"]) == ("create", "organ", "organ.vision.v2")
    assert "~ шаблон organ.vision.v2 — новый шаблон органа organ.vision.v2 на основе organ.vision.v1" in body["plan"]["text"]


async def test_seed_build_speak_pipeline(client):
    body = (await say(client, "собери speak-pipeline normalize→phonemes→adapter")).json()
    assert body["intent"] == "build_pipeline"
    assert [p["cells"] for p in body["spec"]["template"]["pathways"]] == [VOICE]


async def test_apply_in_session_builds_and_a_repeat_is_idempotent(client):
    await say(client, "create voice organ v1", session="s-apply")
    r = await say(client, "apply", session="s-apply")
    body = r.json()
    assert r.status_code == 200 and body["intent"] == "apply" and body["lang"] == "en"
    organ = next(a for a in body["applied"] if a["kind"] == "organ")
    organ_id = organ["organ_id"]
    assert organ["id"] == "organ.voice.v1"
    assert [(a["kind"], a["record_id"]) for a in body["applied"][:3]] == [("cell", "cell-1"), ("cell", "cell-2"), ("cell", "cell-3")]
    organs = (await client.get("/organs/", headers=auth())).json()
    assert [o["id"] for o in organs] == [organ_id]
    audit = (await client.get("/api/neira/audit", headers=auth())).json()
    entries = audit if isinstance(audit, list) else audit.get("items", audit.get("records", []))
    applied = [a for a in entries if a["action"] == "command.apply"]
    assert len(applied) == 1 and applied[0]["reason"] == "create voice organ v1" and applied[0]["actor"] == "admin"
    again = (await say(client, "применить", session="s-apply")).json()
    assert again["applied"] == body["applied"] and again["already_applied"] is True and again["lang"] == "ru"
    assert len((await client.get("/organs/", headers=auth())).json()) == 1


async def test_apply_route_and_stale_plan(client):
    first = (await say(client, "создай клетку анализа summarize v1", session="s-1")).json()
    second = (await say(client, "create cell summarize v1", session="s-2")).json()
    assert first["spec"]["kind"] == "factory_spec" and first["spec"]["spec"]["backend"] == "adapter"
    r = await client.post(f"{URL}/plans/{first['plan']['id']}/apply", headers=auth())
    assert r.status_code == 200 and r.json()["applied"][0]["record_id"] == "cell-1"
    assert r.json()["summary"] == "создать 1, обновить 0, удалить 0, без изменений 0"
    stale = await client.post(f"{URL}/plans/{second['plan']['id']}/apply", headers=auth())
    assert stale.status_code == 409 and stale.json()["code"] == "plan_stale"
    chat = (await say(client, "apply", session="s-2")).json()
    assert chat["error"]["code"] == "plan_stale" and chat["understood"] is True


async def test_unknown_plan_is_404(client):
    r = await client.post(f"{URL}/plans/plan-000000000000/apply", headers=auth())
    assert r.status_code == 404 and r.json()["code"] == "not_found"


async def test_not_understood_is_200_with_a_suggestion(client):
    r = await say(client, "создай голосовй орган v1")
    assert r.status_code == 200
    body = r.json()
    assert body["understood"] is False and body["lang"] == "ru"
    assert body["error"]["code"] == "unrecognized_word" and body["error"]["suggestions"] == ["голосовой"]
    assert body["error"]["position"] == 7 and "голосовой" in body["reply"]
    unknown = (await say(client, "make me a sandwich")).json()
    assert unknown["error"]["code"] == "unknown_command" and unknown["lang"] == "en"


async def test_lifecycle_by_chat_reaches_the_same_services(client):
    await say(client, "create cell summarize v1", session="s-life")
    await say(client, "apply", session="s-life")
    body = (await say(client, "одобри клетку analysis.summarize.v1", session="s-life")).json()
    assert body["intent"] == "approve"
    assert body["target"] == {"kind": "cell", "id": "cell-1", "template_id": "analysis.summarize.v1"}
    assert body["plan"]["changes"] == [{
        "action": "update", "kind": "cell", "id": "analysis.summarize.v1", "record_id": "cell-1",
        "before": "draft", "after": "canary", "reason": "одобрить cell-1: draft → canary"}]
    assert (await client.get("/factory/cells/cell-1", headers=auth())).json()["state"] == "draft"  # a plan only
    applied = (await say(client, "применить", session="s-life")).json()
    assert applied["applied"][0]["record_id"] == "cell-1" and applied["reply"] == "Готово: клетка cell-1 (analysis.summarize.v1): canary."
    record = (await client.get("/factory/cells/cell-1", headers=auth())).json()
    assert record["state"] == "canary"
    status = (await say(client, "status of cell analysis.summarize.v1")).json()
    assert status["result"]["state"] == "canary"
    missing = (await say(client, "approve organ-99")).json()
    assert missing["understood"] is True and missing["error"]["code"] == "not_found"


async def test_a_template_id_names_its_newest_record_or_organ(client):
    ids = []
    for version in ("1.0.0", "1.1.0"):
        template = {"id": "analysis.tally.v1", "version": version, "analysis_type": "tally", "links": [],
                    "metadata": {"schema": "v1"}}
        ids.append((await client.post("/factory/cells", json={"template": template}, headers=auth())).json()["id"])
    body = (await say(client, "approve cell analysis.tally.v1", session="s-tally")).json()
    assert body["target"]["id"] == ids[1] and body["plan"]["changes"][0]["after"] == "canary"
    await say(client, "apply", session="s-tally")
    assert (await client.get(f"/factory/cells/{ids[1]}", headers=auth())).json()["state"] == "canary"
    assert (await client.get(f"/factory/cells/{ids[0]}", headers=auth())).json()["state"] == "draft"
    organs = [(await client.post("/organs/build", json={"organ_template": "organ.echo.v1"}, headers=auth())).json()["organ_id"]
              for _ in range(2)]
    assert (await say(client, "status of organ organ.echo.v1")).json()["result"]["id"] == organs[1]
    assert (await say(client, "status of organ organ.vision.v1")).json()["error"]["code"] == "not_found"


async def test_closed_gate_shows_in_the_plan_and_blocks_apply(client):
    r = await client.post("/api/neira/capabilities/organs_builder", json={"state": "disabled"}, headers=auth())
    assert r.status_code == 200, r.text
    body = (await say(client, "create voice organ v1", session="s-gate")).json()
    assert body["policy"]["allowed"] is False
    assert [v["capability"] for v in body["policy"]["violations"]] == ["organs_builder"]
    r = await client.post(f"{URL}/plans/{body['plan']['id']}/apply", headers=auth())
    assert r.status_code == 403 and r.json()["code"] == "capability_disabled"


async def test_roles_and_bad_bodies(client):
    assert (await say(client, "help", role="viewer")).status_code == 200  # reads are open to viewers
    assert (await say(client, "создай голосовой орган v1", role="viewer")).json()["error"]["code"] == "forbidden"
    r = await client.post(URL, content=b"{not json", headers=auth())
    assert r.status_code == 400 and r.json()["code"] == "invalid_request"
    r = await client.post(URL, json={"text": "help", "extra": 1}, headers=auth())
    assert r.status_code == 400
    r = await client.post(URL, json={"text": "help"})
    assert r.status_code == 401
    r = await client.post(URL, json={"text": 5}, headers=auth())
    assert r.status_code == 400 and r.json()["code"] == "invalid_request"
    long = await client.post(URL, json={"text": "создай голосовой орган v1 " * 2000}, headers=auth())
    assert long.status_code == 200 and long.json()["understood"] is False
    empty = (await client.post(URL, json={"text": ""}, headers=auth())).json()
    assert empty["understood"] is False and empty["error"]["code"] == "empty"


async def test_metrics_count_commands(client):
    await say(client, "create voice organ v1")
    await say(client, "свари кофе")
    text = (await client.get("/metrics")).text
    assert 'neira_commands_total{intent="create_organ",outcome="planned"} 1.0' in text
    assert 'neira_commands_total{intent="unknown",outcome="not_understood"} 1.0' in text
    assert "neira_command_parse_seconds_count" in text and "neira_command_plan_seconds_count" in text


async def test_organ_named_by_kind_targets_the_built_organ(client):
    await say(client, "создай голосовой орган v1", session="s-alias")
    applied = (await say(client, "применить", session="s-alias")).json()["applied"]
    built = next(a["organ_id"] for a in applied if a["kind"] == "organ")
    body = (await say(client, "статус голосового органа", session="s-alias")).json()
    assert body["target"] == {"kind": "organ", "id": built, "template_id": "organ.voice.v1"}
    assert body["result"]["id"] == built


async def test_organs_built_since_the_last_command_count_for_the_next_version(client):
    """The Command Cell keeps the built organs in memory and re-reads them after organ or gate events."""
    before = (await say(client, "обнови голосовой орган", session="s-built")).json()
    assert before["spec"]["template"]["id"] == "organ.voice.v2"
    inline = before["spec"]["template"]  # built straight from the template: it never enters the catalog
    r = await client.post("/organs/build", json={"organ_template": inline}, headers=auth())
    assert r.status_code == 201
    after = (await say(client, "обнови голосовой орган", session="s-built")).json()
    assert after["spec"]["template"]["id"] == "organ.voice.v3"
    await client.post("/api/neira/capabilities/organs_builder", json={"state": "disabled"}, headers=auth())
    closed = (await say(client, "обнови голосовой орган", session="s-built")).json()
    assert closed["spec"]["template"]["id"] == "organ.voice.v2"  # builds unreadable: the catalog alone counts


async def test_a_fallback_reading_says_how_it_was_understood(client):
    body = (await say(client, "голосовой орган v1 — создай", session="s-frame")).json()
    assert (body["understood"], body["intent"]) == (True, "create_organ")
    assert body["spec"]["template"]["id"] == "organ.voice.v1"
    assert body["understood_as"] == "создать орган голосовой версия 1.0.0"
    assert body["reply"].startswith("Понял так: создать орган голосовой версия 1.0.0. План готов")
    en = (await say(client, "turn analysis.summarize.v1 off", session="s-frame")).json()
    assert en["intent"] == "disable" and en["reply"].startswith("I understood: disable analysis.summarize.v1.")
    grammar = (await say(client, "создай голосовой орган v1", session="s-frame")).json()
    assert "understood_as" not in grammar and not grammar["reply"].startswith("Понял так")


async def test_two_close_readings_ask_back(client):
    body = (await say(client, "одобри или отключи organ-1")).json()
    assert body["understood"] is False and body["error"]["code"] == "ambiguous"
    assert sorted(body["error"]["candidates"]) == ["одобрить organ-1", "отключить organ-1"]
    assert body["reply"].startswith("Не уверен, как понять: «")


async def test_the_apply_routes_answer_and_its_repeat_have_the_same_shape(client):
    plan_id = (await say(client, "create voice organ v1", session="s-shape")).json()["plan"]["id"]
    first = (await client.post(f"{URL}/plans/{plan_id}/apply", headers=auth())).json()
    again = (await client.post(f"{URL}/plans/{plan_id}/apply", headers=auth())).json()
    keys = ["plan_id", "plan", "already_applied", "applied", "summary", "reply"]
    assert list(first) == keys and list(again) == keys
    assert (first["already_applied"], again["already_applied"]) == (False, True)
    assert again["applied"] == first["applied"] and again["summary"] == first["summary"] == first["plan"]["summary"]
    assert first["plan"]["id"] == plan_id and first["plan"]["changes"][-1]["kind"] == "organ"
    organ = first["applied"][-1]
    assert set(organ) == {"action", "kind", "id", "reason", "after", "organ_id"} and "record_id" not in organ
