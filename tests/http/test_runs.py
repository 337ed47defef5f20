"""The run routes over HTTP: bodies, every error status, roles, the queue limit, and status while busy."""

from __future__ import annotations

import asyncio
import base64
import io
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from litestar.testing import AsyncTestClient

from api.app import create_app
from neira.core import Core
from tests.conftest import auth, make_settings
from tests.e2e.server import free_port
from tests.http.test_organs import build, until
from tests.runtime.conftest import cell
from tests.runtime.doubles import with_doubles
from tests.runtime.media import image_payload, png_bomb


async def stable(client: AsyncTestClient, template: str) -> str:
    organ_id = await build(client, template)
    await until(client, organ_id, "stable")
    return organ_id


async def test_the_reverse_organ_by_id_and_by_name(client: AsyncTestClient) -> None:
    organ_id = await stable(client, "organ.reverse.v1")
    r = await client.post(f"/organs/{organ_id}/run", json={"input": "hello world"}, headers=auth("operator"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["ok"], body["output"], body["organ_id"], body["pathway"]) == (True, {"type": "text", "text": "dlrow olleh"}, organ_id, "main")
    assert [(t["cell"], t["impl"], t["ok"], t["output_type"]) for t in body["trace"]] == [
        ("analysis.reverse.v1", "reverse", True, "text"), ("action.echo.v1", "echo", True, "text")]
    assert all(t["record_id"].startswith("cell-") and t["ms"] >= 0 for t in body["trace"])
    assert body["run_id"].startswith("run-") and "error" not in body
    for name in ("reverse", "обратный", "organ.reverse", "organ.reverse.v1", "Organ.Reverse.V1"):
        r = await client.post("/organs/run", json={"organ": name, "input": "abc"}, headers=auth())
        assert (r.status_code, r.json().get("output"), r.json().get("organ_id")) == (200, {"type": "text", "text": "cba"}, organ_id), name
    status = (await client.get(f"/organs/{organ_id}/status", headers=auth("viewer"))).json()
    runs = status["metrics"]["runs"]
    assert (runs["total"], runs["ok"], runs["failed"], runs["window"]["runs"]) == (6, 6, 0, 6)


async def test_voice_speaks_a_wav(client: AsyncTestClient) -> None:
    organ_id = await stable(client, "organ.voice.v1")
    r = await client.post(f"/organs/{organ_id}/run", json={"input": "Привет, мир"}, headers=auth())
    body = r.json()
    assert body["ok"], body
    out = body["output"]
    with wave.open(io.BytesIO(base64.b64decode(out["data_b64"]))) as w:
        assert (w.getnchannels(), w.getframerate()) == (1, 22050)
        assert out["duration_ms"] == round(w.getnframes() * 1000 / 22050)
    assert 500 <= out["duration_ms"] <= 2000 and out["media_type"] == "audio/wav"
    assert [t["output_type"] for t in body["trace"]] == ["text", "phonemes", "audio"]


async def test_names_that_run_nothing(client: AsyncTestClient) -> None:
    r = await client.post("/organs/run", json={"organ": "voice", "input": "x"}, headers=auth())
    assert (r.status_code, r.json()["code"]) == (404, "not_found")  # no organ built yet
    organ_id = await build(client, "organ.voice.v1")
    await client.post(f"/organs/{organ_id}/status", json={"state": "failed"}, headers=auth())
    r = await client.post("/organs/run", json={"organ": "voice", "input": "x"}, headers=auth())
    assert (r.status_code, r.json()["code"]) == (409, "not_runnable")
    assert r.json()["reason"] == "no organ named 'voice' is stable yet"
    r = await client.post(f"/organs/{organ_id}/run", json={"input": "x"}, headers=auth())
    assert (r.status_code, r.json()["code"], r.json()["reason"]) == (409, "not_runnable", f"organ {organ_id} is failed")


@pytest.mark.parametrize(("body", "status", "code", "reason"), [
    ({"input": {"type": "video", "data": 1}}, 400, "invalid_request", "Invalid value 'video' - at `$.input.type`"),
    ({"input": {"type": "image", "data_b64": "@@not base64@@"}}, 400, "invalid_request", "Invalid base64 encoded string - at `$.input.data_b64`"),
    ({"input": ""}, 400, "invalid_request", "text is empty"),
    ({"input": {"type": "text", "text": "   "}}, 400, "invalid_request", "text is empty"),
    ({"inputs": "x"}, 400, "invalid_request", "unknown field `inputs`"),
    ({"input": "x", "pathway": "nope"}, 400, "invalid_request", "has no pathway 'nope'; it has main"),
])
async def test_bad_requests(client: AsyncTestClient, body: object, status: int, code: str, reason: str) -> None:
    organ_id = await build(client, "organ.vision.v1")
    r = await client.post(f"/organs/{organ_id}/run", json=body, headers=auth())
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert reason in r.json()["reason"]


@pytest.mark.parametrize(("payload", "code", "cell", "reason"), [
    ("some text", "type_mismatch", "analysis.image_decode.v1", "analysis.image_decode.v1 (image_decode) takes image, not text"),
    (image_payload(png_bomb()), "input_invalid", "analysis.image_decode.v1", "image has more pixels than the limit of 16000000"),
    (image_payload(b"GIF89a not really"), "input_invalid", "analysis.image_decode.v1", "data is not a PNG, JPEG or WebP image"),
])
async def test_inputs_a_cell_refuses(client: AsyncTestClient, payload: object, code: str, cell: str, reason: str) -> None:
    organ_id = await build(client, "organ.vision.v1")
    r = await client.post(f"/organs/{organ_id}/run", json={"input": payload}, headers=auth())
    assert r.status_code == 200
    body = r.json()
    assert (body["ok"], body["output"], body["error"]) == (False, None, {"code": code, "cell": cell, "reason": reason})
    assert body["trace"][-1]["error"] == body["error"]


async def test_ten_megabytes_of_text_is_too_large(client: AsyncTestClient) -> None:
    organ_id = await build(client, "organ.reverse.v1")
    r = await client.post(f"/organs/{organ_id}/run", json={"input": "a" * 10_000_000}, headers=auth())
    assert (r.status_code, r.json()["code"]) == (413, "payload_too_large")
    assert (await client.post(f"/organs/{organ_id}/run", json={"input": "ab"}, headers=auth())).json()["output"]["text"] == "ba"


async def test_cell_record_runs_and_roles(client: AsyncTestClient) -> None:
    r = await client.post("/factory/cells", json={"template": "analysis.summarize.v1"}, headers=auth())
    record_id = r.json()["id"]
    text = "Cats sleep. Cats hunt mice at night. Dogs bark."
    r = await client.post(f"/factory/cells/{record_id}/run", json={"input": text}, headers=auth("operator"))
    assert r.json()["output"] == {"type": "text", "text": "Cats sleep. Cats hunt mice at night."}
    r = await client.post(f"/factory/cells/{record_id}/run", json={"input": text}, headers=auth("viewer"))
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    assert (await client.post(f"/factory/cells/{record_id}/run", json={"input": text})).status_code == 401
    for bad, status in (("cell-999", 404), ("Bad%20Id", 400)):
        r = await client.post(f"/factory/cells/{bad}/run", json={"input": text}, headers=auth())
        assert r.status_code == status, r.text
    await client.post(f"/factory/cells/{record_id}/disable", headers=auth())
    r = await client.post(f"/factory/cells/{record_id}/run", json={"input": text}, headers=auth())
    assert (r.status_code, r.json()["code"]) == (409, "not_runnable")


async def test_a_closed_backend_gate_is_not_runnable(client: AsyncTestClient) -> None:
    organ_id = await build(client, "organ.echo.v1")
    await client.post("/api/neira/capabilities/factory_adapter", json={"state": "disabled"}, headers=auth())
    r = await client.post(f"/organs/{organ_id}/run", json={"input": "x"}, headers=auth())
    assert (r.status_code, r.json()["code"], r.json()["capability"]) == (409, "not_runnable", "factory_adapter")


async def test_metrics_count_runs(client: AsyncTestClient) -> None:
    organ_id = await build(client, "organ.reverse.v1")
    await client.post(f"/organs/{organ_id}/run", json={"input": "ab"}, headers=auth())
    await client.post(f"/organs/{organ_id}/run", json={"input": {"type": "json", "data": {}}}, headers=auth())
    text = (await client.get("/metrics")).text
    assert 'organ_runs_total{outcome="ok"} 1.0' in text
    assert 'organ_runs_total{outcome="type_mismatch"} 1.0' in text
    assert 'cell_runs_total{impl="reverse",outcome="ok"} 1.0' in text
    assert 'cell_runs_total{impl="reverse",outcome="type_mismatch"} 1.0' in text
    assert 'cell_run_duration_ms_count{impl="echo"} 1.0' in text
    assert 'factory_exec_errors_total{operation="run"} 1.0' in text


@pytest.fixture
async def busy_live(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Core, Path]]:
    """A served app with the doubles, two workers and a queue of one; and the file that ends `spin_until` runs
    (made at teardown too, so a failing test does not leave runs spinning under the server's shutdown)."""
    release = tmp_path / "release"
    core = Core(make_settings(tmp_path / "data", run_workers=2, run_queue=1, run_timeout_ms=30_000), with_doubles())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(core), host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "server exited"
        await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=auth(), timeout=40) as http:
            yield http, core, release
    finally:
        release.touch()
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_status_answers_while_every_worker_spins_and_the_queue_is_full(
        busy_live: tuple[httpx.AsyncClient, Core, Path]) -> None:
    http, core, release = busy_live  # the spinning runs burn CPU until `release` exists
    r = await http.post("/factory/cells", json={"template": cell("spin_until")})
    spin = r.json()["id"]
    organ_id = (await http.post("/organs/build", json={"organ_template": "organ.echo.v1"})).json()["organ_id"]
    runs = [asyncio.create_task(http.post(f"/factory/cells/{spin}/run", json={"input": str(release)}))
            for _ in range(3)]
    async with asyncio.timeout(30):  # until the three runs hold both workers (both started) and the queue's place
        while (core.runs.pool.busy_workers, core.runs.pool.waiting) != (2, 1):
            await asyncio.sleep(0.01)
    r = await http.post(f"/factory/cells/{spin}/run", json={"input": str(release)})
    assert (r.status_code, r.json()["code"], r.headers["retry-after"]) == (429, "busy", "1")
    for _ in range(20):
        assert (await http.get(f"/organs/{organ_id}/status")).status_code == 200
    # every status answer came while the spinning runs held every worker: the loop never waited for them
    # (how fast it answers is bench/runs.py's business, not a unit test's)
    assert (core.runs.pool.busy_workers, core.runs.pool.waiting) == (2, 1) and not any(t.done() for t in runs)
    release.touch()
    answers = [(await t).json() for t in runs]
    assert [(a["ok"], a["output"]["text"]) for a in answers] == [(True, str(release))] * 3


async def test_chat_runs_at_once_and_replies_in_the_commands_language(client: AsyncTestClient) -> None:
    reverse = await stable(client, "organ.reverse.v1")
    voice = await stable(client, "organ.voice.v1")
    r = await client.post("/api/neira/commands", json={"text": "run the reverse organ on hello world"}, headers=auth("operator"))
    body = r.json()
    assert (body["intent"], body["plan"], body["reply"]) == ("run", None, f"{reverse}: dlrow olleh")
    assert body["run"]["ok"] and body["run"]["output"] == {"type": "text", "text": "dlrow olleh"}
    r = await client.post("/api/neira/commands", json={"text": "запусти голосовой орган: привет, мир"}, headers=auth())
    body = r.json()
    seconds = body["run"]["output"]["duration_ms"] / 1000
    assert (body["lang"], body["reply"]) == ("ru", f"{voice} говорит: {seconds:.1f} с речи.")
    assert body["run"]["output"]["type"] == "audio"
    r = await client.post("/api/neira/commands", json={"text": "запусти голосовой орган"}, headers=auth())
    assert (r.json()["run"], r.json()["reply"]) == (None, "Что подать на вход? Например: «запусти голосовой орган: привет, мир».")
    r = await client.post("/api/neira/commands", json={"text": f"run {reverse} with «текст»"}, headers=auth("viewer"))
    assert r.json()["error"]["code"] == "forbidden" and "run" not in r.json()
