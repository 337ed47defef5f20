"""What a real server writes to its log (issue 14, points 4 and 11): no token in any encoding of the query, and at
INFO no line per build or per WebSocket."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.server import Server

pytestmark = pytest.mark.e2e

TOKEN = "log-probe-token-0123456789abcdef"
QUERIES = [f"%74oken={TOKEN}", f"token%3D{TOKEN}", f"tok%65n={TOKEN}", f"token={TOKEN}", f"since=0&%2574oken={TOKEN}",
           f"token={TOKEN[:-1]}%{TOKEN[-1]}"]


async def open_streams(server: Server, organ_id: str) -> dict[str, str]:
    """Open the organ and event streams with each query form; what each answered (a frame or a close code)."""
    seen = {}
    for path, tail in ((f"/organs/{organ_id}/stream", ""), ("/api/neira/events/stream", "&since=0")):
        for query in QUERIES:  # the event stream replays from since=0, so an accepted one sends a frame at once
            try:
                async with connect(f"ws://127.0.0.1:{server.port}{path}?{query}{tail}") as ws:
                    seen[path + "?" + query] = str(await asyncio.wait_for(ws.recv(), 10))[:20]
            except ConnectionClosed as exc:
                seen[path + "?" + query] = f"closed {exc.rcvd.code if exc.rcvd else None}"
    return seen


def probe(tmp_path: Path, level: str) -> tuple[Server, dict[str, str]]:
    server = Server(tmp_path / "data", token=TOKEN, env={"NEIRA_LOG_LEVEL": level})
    with server, server.client() as c:
        organ_id = c.post("/organs/build", json={"organ_template": "organ.voice.v1"}).json()["organ_id"]
        for query in QUERIES:
            assert c.get(f"/organs?{query}").status_code in (200, 400)
            assert c.get(f"/nowhere?{query}").status_code == 404
        seen = asyncio.run(open_streams(server, organ_id))
    return server, seen


def test_no_token_in_the_log_whatever_the_query_encoding(tmp_path: Path) -> None:
    server, seen = probe(tmp_path, "debug")  # DEBUG: the WebSocket lines are written too
    assert seen[f"/organs/organ-1/stream?%74oken={TOKEN}"].startswith('{"id"')  # it did authenticate
    assert seen[f"/organs/organ-1/stream?token%3D{TOKEN}"] == "closed 4401"
    assert seen[f"/api/neira/events/stream?%74oken={TOKEN}"].startswith('{"seq"')
    log = server.log()
    assert '"WebSocket /organs/organ-1/stream?[query hidden]" [accepted]' in log
    for needle in (TOKEN, TOKEN[:16], TOKEN[8:24], TOKEN[-16:]):
        assert needle not in log, log


def test_info_has_no_line_per_build_or_websocket(tmp_path: Path) -> None:
    server, _ = probe(tmp_path, "info")
    log = server.log()
    assert "WebSocket" not in log and "connection open" not in log and "connection closed" not in log, log
    assert "organ build started" not in log
    assert "Uvicorn running on" in log  # what an operator needs stays
