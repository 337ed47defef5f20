"""The first run on a fresh server: its workers start warm (eSpeak NG and the other implementations are
initialised before a worker is given a run), so the first voice run fits a deadline far shorter than a cold
worker's start-up."""

from __future__ import annotations

import base64
import io
import time
import wave
from pathlib import Path

import pytest

from tests.e2e.server import Server

pytestmark = pytest.mark.e2e
TIMEOUT_MS = 600  # a warm worker speaks «Привет, мир» in tens of ms; a cold one needs its engine started first


def test_the_first_voice_run_after_start_succeeds_within_a_short_timeout(tmp_path: Path) -> None:
    env = {"NEIRA_RUN_WORKERS": "2", "NEIRA_RUN_TIMEOUT_MS": str(TIMEOUT_MS)}
    with Server(tmp_path / "data", env=env) as server, server.client() as http:
        started = time.monotonic()
        r = http.post("/organs/run", json={"organ": "organ.voice.v1", "input": "Привет, мир"})
        if r.status_code == 404:  # no organ of that template yet: build one, then run it at once
            organ = http.post("/organs/build", json={"organ_template": "organ.voice.v1"}).json()["organ_id"]
            r = http.post(f"/organs/{organ}/run", json={"input": "Привет, мир"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["ok"], body.get("error")
        with wave.open(io.BytesIO(base64.b64decode(body["output"]["data_b64"]))) as w:
            assert w.getnframes() > 0
        assert time.monotonic() - started < 30  # waited for warm workers, never past them
