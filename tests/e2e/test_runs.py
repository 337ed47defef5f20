"""Every pathway of the example organs, end to end over HTTP on a real `neira serve`, and bad payloads that
leave the server answering."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.e2e.server import REPO, Server
from tests.runtime.media import image_bytes, image_payload, png_bomb

pytestmark = pytest.mark.e2e
ORGANS = sorted((REPO / "examples" / "organs").glob("*.json"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(tmp_path_factory.mktemp("runs") / "data", env={"NEIRA_RUN_WORKERS": "2"}) as s:
        yield s


def built(http: httpx.Client, template: str) -> str:
    r = http.post("/organs/build", json={"organ_template": template})
    assert r.status_code == 201, r.text
    return r.json()["organ_id"]


def check_output(template: str, body: dict) -> None:
    out = body["output"]
    if template == "organ.voice.v1":
        with wave.open(io.BytesIO(base64.b64decode(out["data_b64"]))) as w:
            assert out["duration_ms"] == round(w.getnframes() * 1000 / w.getframerate())
        assert 400 <= out["duration_ms"] <= 3000
    elif template == "organ.vision.v1":
        assert out["type"] == "json"
        assert (out["data"]["width"], out["data"]["height"], out["data"]["mode"]) == (48, 32, "L")
        assert 0 < out["data"]["edge_density"] < 1
    elif template == "organ.reverse.v1":
        assert out == {"type": "text", "text": "ьлоб ,тевирп"}
    else:
        assert out == {"type": "text", "text": "привет, боль"}


INPUTS = {"organ.vision.v1": image_payload(image_bytes((48, 32))), "organ.voice.v1": "Привет, мир"}


@pytest.mark.parametrize("path", ORGANS, ids=[p.stem for p in ORGANS])
def test_every_pathway_runs(server: Server, path: Path) -> None:
    template = json.loads(path.read_text())
    with server.client() as http:
        organ_id = built(http, template["id"])
        for pathway in template["pathways"]:
            r = http.post(f"/organs/{organ_id}/run", json={"input": INPUTS.get(template["id"], "привет, боль"),
                                                            "pathway": pathway["name"]})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["ok"], json.dumps(body.get("error"))
            assert [t["cell"] for t in body["trace"]] == pathway["cells"]
            check_output(template["id"], body)


def test_each_vision_cell_on_its_own(server: Server) -> None:
    """decode, grayscale and edges as records: size, mode and a known pixel of each output."""
    with server.client() as http:
        outputs = {}
        for cell_id in ("analysis.image_decode.v1", "analysis.grayscale.v1", "analysis.edge_detect.v1"):
            record = http.post("/factory/cells", json={"template": cell_id}).json()["id"]
            r = http.post(f"/factory/cells/{record}/run", json={"input": image_payload(image_bytes((40, 20), fmt="JPEG"), "image/jpeg")})
            out = r.json()["output"]
            outputs[cell_id] = Image.open(io.BytesIO(base64.b64decode(out["data_b64"])))
            assert (out["media_type"], out["width"], out["height"]) == ("image/png", 40, 20)
        assert outputs["analysis.image_decode.v1"].mode == "RGB"
        assert outputs["analysis.grayscale.v1"].mode == "L" and outputs["analysis.grayscale.v1"].getpixel((20, 10)) >= 240
        assert outputs["analysis.edge_detect.v1"].mode == "L" and outputs["analysis.edge_detect.v1"].getpixel((20, 10)) <= 5


BAD = [
    ({"input": {"type": "sound", "data_b64": ""}}, 400, "invalid_request"),
    ({"input": {"type": "image", "data_b64": "!!!"}}, 400, "invalid_request"),
    ({"input": ""}, 400, "invalid_request"),
    ({"input": image_payload(png_bomb())}, 200, "input_invalid"),
    ({"input": "x" * 10_000_000}, 413, "payload_too_large"),
    ({"input": "text for the eyes"}, 200, "type_mismatch"),
]


def test_bad_payloads_are_answered_and_the_server_goes_on(server: Server) -> None:
    with server.client() as http:
        organ_id = built(http, "organ.vision.v1")
        for body, status, code in BAD:
            r = http.post(f"/organs/{organ_id}/run", json=body)
            assert r.status_code == status, (code, r.text)
            got = r.json()["error"]["code"] if status == 200 else r.json()["code"]
            assert got == code
            assert "Traceback" not in r.text and "/work/" not in r.text
        assert http.get("/healthz").status_code == 200
        r = http.post(f"/organs/{organ_id}/run", json={"input": INPUTS["organ.vision.v1"]})
        assert r.json()["ok"], r.text


def test_a_crash_inside_espeak_ng_costs_one_worker_not_the_server(server: Server) -> None:
    # eSpeak NG 1.52.0 (the wheel's) aborts its process on a word of many stacked `'s` suffixes (a stack
    # overflow, espeak-ng/espeak-ng#2495): this is why its steps run on the workers, not on a thread
    crash = "s'" * 220
    with server.client() as http:
        organ_id = built(http, "organ.voice.v1")
        r = http.post(f"/organs/{organ_id}/run", json={"input": crash})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["ok"], body["error"]["code"], body["error"]["cell"]) == (False, "cell_failed", "analysis.text_to_phonemes.v1")
        assert body["error"]["reason"] == "the worker process running the cell died"
        assert http.get("/healthz").status_code == 200
        r = http.post(f"/organs/{organ_id}/run", json={"input": INPUTS["organ.voice.v1"]})
        assert r.json()["ok"], r.text
        check_output("organ.voice.v1", r.json())


def cli(server: Server, *argv: str) -> tuple[int, str, str]:
    """`neira run ...` against the server: exit code, stdout, stderr."""
    from api.cli import build_parser
    from api.run_cli import run

    out, err = io.StringIO(), io.StringIO()
    args = build_parser().parse_args(["run", *argv, "--url", server.url])
    return run(args, server.token, server.url, out, err), out.getvalue(), err.getvalue()


def test_cli_writes_text_wav_and_png(server: Server, tmp_path: Path) -> None:
    grey = {"id": "organ.grey.v1", "version": "1.0.0", "cells": ["analysis.image_decode.v1", "analysis.grayscale.v1"],
            "pathways": [{"name": "main", "cells": ["analysis.image_decode.v1", "analysis.grayscale.v1"]}]}
    with server.client() as http:
        reverse, voice, grey_id = built(http, "organ.reverse.v1"), built(http, "organ.voice.v1"), built(http, grey)
    code, out, err = cli(server, reverse, "hello world")
    assert (code, out) == (0, "dlrow olleh\n")
    assert err.startswith("analysis.reverse.v1 ") and "action.echo.v1" in err
    wav_path = tmp_path / "hello.wav"
    code, out, _ = cli(server, voice, "Привет, мир", "--out", str(wav_path))
    with wave.open(str(wav_path)) as w:
        ms = round(w.getnframes() * 1000 / w.getframerate())
    assert (code, out) == (0, f"audio written to {wav_path}, {ms} ms\n")
    photo, png_path = tmp_path / "photo.jpg", tmp_path / "grey.png"
    photo.write_bytes(image_bytes((30, 20), fmt="JPEG"))
    code, out, _ = cli(server, grey_id, str(photo), "--image", "--out", str(png_path))
    assert (code, out) == (0, f"image written to {png_path}, 30×20\n")
    assert Image.open(png_path).mode == "L"
    code, _, err = cli(server, voice, "Привет")  # audio with nowhere to go
    assert (code, err.splitlines()[-1]) == (1, "neira: the answer is audio; give --out FILE.wav to keep it")
    code, _, err = cli(server, "nosuchorgan", "x")
    assert (code, err) == (1, "error 404: not_found: no organ is named 'nosuchorgan'\n")
    # The console script finds the server as `neira say` does: here from NEIRA_URL and NEIRA_TOKEN.
    done = subprocess.run([sys.executable, "-m", "api.cli", "run", reverse, "abc"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "NEIRA_URL": server.url, "NEIRA_TOKEN": server.token})
    assert (done.returncode, done.stdout) == (0, "cba\n"), done.stderr
