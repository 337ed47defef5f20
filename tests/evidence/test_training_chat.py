"""The chat trains a cell at once and records reviews, replying wholly in the command's language."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from tests.conftest import auth


async def say(client: AsyncTestClient, text: str, session: str = "s-train", role: str = "admin") -> dict:
    r = await client.post("/api/neira/commands", json={"text": text, "session_id": session}, headers=auth(role))
    assert r.status_code == 200
    return r.json()


async def test_train_then_accept_in_russian_and_english(client: AsyncTestClient) -> None:
    r = await client.post("/factory/cells", json={"template": (await client.get("/cells/analysis.summarize.v1", headers=auth())).json()}, headers=auth())
    record = r.json()["id"]
    ru = await say(client, "обучи клетку summarize")
    assert (ru["intent"], ru["target"], ru["plan"], ru["training"]["iteration"]) == ("train", {"kind": "cell", "id": record}, None, 1)
    assert ru["reply"].startswith(f"{record}: итерация 1, прошло 3 из 3 примеров (100%)") and "прими итерацию 1" in ru["reply"]
    en = await say(client, "train the summarize cell")
    assert en["reply"].startswith(f"{record}: iteration 2, 3 of 3 samples passed (100%)")
    accepted = await say(client, "прими итерацию 1")
    assert (accepted["intent"], accepted["review"]["verdict"], accepted["reply"]) == ("review", "accept", f"{record}: итерация 1 принята.")
    assert (await say(client, "accept iteration 2"))["reply"] == f"{record}: iteration 2 accepted."
    await say(client, "train summarize")
    done = await say(client, "accept iteration 3")
    assert (done["review"]["converged"], done["reply"]) == (True, f"{record}: iteration 3 accepted. Training has converged.")
    training = (await client.get(f"/factory/cells/{record}/training", headers=auth())).json()
    assert training["converged"] and training["iterations"][0]["review"]["comment"] == "прими итерацию 1"
    assert (await client.get(f"/factory/cells/{record}", headers=auth())).json()["state"] == "draft"  # no lifecycle move


async def test_what_training_cannot_do_is_said_in_the_commands_language(client: AsyncTestClient) -> None:
    assert (await say(client, "прими итерацию 3", session="fresh"))["reply"] == \
        "Какой клетки итерация 3? Например: «прими итерацию 3 клетки summarize»."
    assert (await say(client, "accept iteration 3", session="fresh"))["reply"].startswith("Iteration 3 of which cell?")
    assert (await say(client, "обучи голосовой орган"))["reply"].startswith("Обучаются клетки, а organ.voice.v1 — орган.")
    await client.post("/factory/cells", json={"template": (await client.get("/cells/analysis.reverse.v1", headers=auth())).json()}, headers=auth())
    assert (await say(client, "отклони итерацию 9 клетки reverse"))["reply"] == "У cell-1 нет итерации обучения 9."
    viewer = await say(client, "train the reverse cell", role="viewer")
    assert viewer["policy"]["allowed"] is False and "training" not in viewer
