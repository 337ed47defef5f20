"""Hostile input against a real server: oversized, deeply nested, non-UTF-8 and arbitrary JSON bodies on every
route that reads a body, path-traversal ids on every id-taking route, and any text up to 10 KB as a command.
The server never answers 5xx, every refusal is the contract's `{code, reason}` body, and nothing is
written outside the data dir."""

from __future__ import annotations

import json
import posixpath
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from neira.config import MAX_BODY_BYTES
from tests.conftest import ADMIN
from tests.e2e.server import REPO, Server
from tests.reliability.conftest import headers

pytestmark = pytest.mark.e2e

STATUS_OF = {"invalid_request": 400, "invalid_template": 400, "capability_disabled": 403, "policy_denied": 403,
             "not_found": 404, "conflict": 409, "invalid_transition": 409, "plan_stale": 409, "payload_too_large": 413}
FAST = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=headers(), timeout=30) as c:
        yield c


def operations(http: httpx.Client) -> list[tuple[str, str]]:
    schema = http.get("/schema/openapi.json").json()
    return [(m.upper(), p) for p, ops in schema["paths"].items() for m in ops if m in ("get", "post", "delete")]


NO_BODY = ("/rebuild", "/apply", "/logout", "/login-codes", "/train")  # these POSTs read no body: its content is never judged, only its declared size


def body_routes(http: httpx.Client) -> list[str]:
    """Every POST that reads a body (the moves' optional `{reason}` included)."""
    return [_concrete(p) for m, p in operations(http) if m == "POST" and not p.endswith(NO_BODY)]


def _concrete(path: str, value: str = "x1") -> str:
    return re.sub(r"\{[^}]+\}", value, path)


def assert_contract_error(r: httpx.Response, *codes: str) -> None:
    """A refusal in the contract's shape: status from the code table, `{code, reason}` (plus named extras)."""
    body = r.json()
    assert body["code"] in codes, (r.request.method, r.request.url, r.status_code, body)
    assert r.status_code == STATUS_OF[body["code"]], (r.request.url, r.status_code, body)
    assert isinstance(body["reason"], str) and body["reason"], body
    assert "Traceback" not in r.text and "/work/" not in r.text and "site-packages" not in r.text


def post_raw(http: httpx.Client, path: str, raw: bytes) -> httpx.Response:
    return http.post(path, content=raw, headers={"Content-Type": "application/json"})


# --- bodies -------------------------------------------------------------------------------------------


def test_bodies_over_the_limit_are_413(http: httpx.Client) -> None:
    big = b'{"text": "' + b"x" * MAX_BODY_BYTES + b'"}'
    routes = [_concrete(p) for m, p in operations(http) if m == "POST"]  # also those that never read a body
    assert len(routes) >= 14
    answers = {path: post_raw(http, path, big) for path in routes}
    assert {p: (r.status_code, r.json()) for p, r in answers.items()} == {
        p: (413, {"code": "payload_too_large", "reason": "request body is larger than the limit"}) for p in routes
    }
    # exactly at the limit is read and judged on its content (here: a dry-run body without a template)
    at_limit = b'{"text": "' + b"x" * (MAX_BODY_BYTES - 12) + b'"}'
    assert len(at_limit) == MAX_BODY_BYTES
    r = post_raw(http, "/factory/cells/dryrun", at_limit)
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request")


def test_streamed_bodies_over_the_limit_are_413(http: httpx.Client) -> None:
    """A chunked body declares no length: it is counted as it arrives and refused once past the limit."""
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(MAX_BODY_BYTES // 65536 + 1):
            yield b"x" * 65536
        yield b'"}'

    for path in body_routes(http):
        r = http.post(path, content=chunks(), headers={"Content-Type": "application/json"})
        assert "content-length" not in r.request.headers and r.request.headers["transfer-encoding"] == "chunked"
        assert (r.status_code, r.json()) == (413, {"code": "payload_too_large", "reason": "request body is larger than the limit"}), path


@pytest.mark.parametrize("raw", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    json.dumps({"template": {"metadata": {"schema": "v1", "x": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}}).encode(),
], ids=["array-100k", "object-5k", "template-70"])
def test_deeply_nested_bodies_are_400(http: httpx.Client, raw: bytes) -> None:
    for path in body_routes(http):
        assert_contract_error(post_raw(http, path, raw), "invalid_request")


@pytest.mark.parametrize("raw", [
    b'{"text": "\xff\xfe"}', b'{"template": {"id": "\xc3\x28"}}', b'{"state": "\xed\xa0\x80"}', b"\xff\xfe\xfa",
    b'{"reason": "ok \xe2\x82"}',
], ids=["ff-in-string", "bad-continuation", "surrogate", "top-level", "truncated"])
def test_invalid_utf8_is_400(http: httpx.Client, raw: bytes) -> None:
    for path in body_routes(http):
        assert_contract_error(post_raw(http, path, raw), "invalid_request")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
        ["template", "tpl", "spec", "backend", "hitl", "organ_template", "dryrun", "text", "session_id", "state",
         "reason", "enabled", "id", "version", "links", "metadata", "schema", "analysis_type", "x"]) | st.text(max_size=8),
        inner, max_size=5),
    max_leaves=20,
)


def test_arbitrary_json_bodies_never_5xx(http: httpx.Client) -> None:
    """Any JSON value on any body route: an answer or a contract refusal, never a server error."""
    routes = [p for p in body_routes(http) if "safe-mode" not in p and "capabilities" not in p]

    @settings(FAST, max_examples=40)
    @given(path=st.sampled_from(routes), body=JSON)
    def check(path: str, body: Any) -> None:
        r = http.post(path, json=body)
        assert r.status_code < 500, (path, body, r.text)
        if r.status_code >= 400:
            assert_contract_error(r, "invalid_request", "invalid_template", "not_found", "conflict", "invalid_transition",
                                  "capability_disabled", "policy_denied", "plan_stale")

    check()


def test_since_beyond_the_storage_range_is_400(http: httpx.Client, server: Server) -> None:
    for path in ("/api/neira/audit", "/api/neira/events"):
        for since in (2**63, 2**64, 10**30):
            assert_contract_error(http.get(path, params={"since": since}), "invalid_request")
        assert http.get(path, params={"since": 2**63 - 1}).json() == []
    with connect(f"ws://127.0.0.1:{server.port}/api/neira/events/stream?token={ADMIN}&since={10**30}", open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed) as info:  # refused like the HTTP routes refuse it, not a crash
            ws.recv(timeout=10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 4400
    assert http.get("/healthz").status_code == 200
    assert "Exception in ASGI application" not in server.log()


# --- ids ----------------------------------------------------------------------------------------------

TAG = f"pwned_{secrets.token_hex(4)}"
# encoded: they reach the router as one segment, so the id check must refuse them
ENCODED_IDS = ["%2e%2e", "%2E%2E", "%2e", f"..%2F..%2F{TAG}", f"%2e%2e%2f%2e%2e%2f{TAG}", f"a%2F{TAG}", f"..%5C..%5C{TAG}",
               f"{TAG}%00", f"..%252F{TAG}", f"{TAG}%0A", "..."]
# literal dot segments are URL syntax: resolved (RFC 3986) before routing, so they never reach a handler as an id
DOT_IDS = ["..", ".", f"../{TAG}", f"./{TAG}"]
BODIES = {"/status": {"state": "stable"}, "/capabilities/": {"state": "stable"}}


def traversal_requests(http: httpx.Client, bad_ids: list[str]) -> Iterator[tuple[str, str, Any]]:
    """Each id-taking operation with each bad id in each of its path parameters (the others valid-looking)."""
    for method, path in operations(http):
        for param in re.findall(r"\{[^}]+\}", path):
            for bad in bad_ids:
                body = next((b for k, b in BODIES.items() if k in path and method == "POST"), None)
                yield method, _concrete(path.replace(param, bad)), body


def send_raw_path(http: httpx.Client, method: str, raw_path: str, body: Any) -> httpx.Response:
    """Send the path exactly as written: no client-side dot-segment removal or re-encoding."""
    request = http.build_request(method, "/", json=body)
    request.url = request.url.copy_with(raw_path=raw_path.encode())
    return http.send(request)


def test_traversal_ids_on_the_organ_stream_are_refused(server: Server) -> None:
    """The WebSocket id route: a close with 4400/4404, or no route at all (handshake refused), never a 5xx."""
    outcomes = {}
    for bad in ENCODED_IDS:
        try:
            with connect(f"ws://127.0.0.1:{server.port}/organs/{bad}/stream?token={ADMIN}", open_timeout=10) as ws:
                ws.recv(timeout=10)
                outcomes[bad] = "frame"
        except ConnectionClosed as exc:
            outcomes[bad] = exc.rcvd.code if exc.rcvd else None
        except InvalidStatus as exc:
            outcomes[bad] = exc.response.status_code
    assert {bad: code for bad, code in outcomes.items() if code not in (4400, 4404, 403, 404)} == {}


def files_outside(root: Path, data_dir: Path) -> set[Path]:
    return {p for p in root.rglob("*") if data_dir not in p.parents and p.is_file() and not p.name.endswith(".log")}


def test_traversal_ids_are_refused_and_write_nothing_outside_the_data_dir(http: httpx.Client, server: Server) -> None:
    sandbox = server.data_dir.parent
    before = files_outside(sandbox, server.data_dir)
    requests = list(traversal_requests(http, ENCODED_IDS))
    assert len(requests) >= 15 * len(ENCODED_IDS)
    for method, raw_path, body in requests:
        r = send_raw_path(http, method, raw_path, body)
        assert r.status_code in (400, 404), (method, raw_path, r.status_code, r.text)
        assert_contract_error(r, "invalid_request", "not_found")
    for method, raw_path, body in traversal_requests(http, DOT_IDS):
        r = send_raw_path(http, method, raw_path, body)
        resolved = send_raw_path(http, method, posixpath.normpath(raw_path), body)
        assert (r.status_code, r.text) == (resolved.status_code, resolved.text), (method, raw_path)
        assert r.status_code < 500
    # ids inside bodies: templates and organ template references
    cell = {"version": "1.0.0", "analysis_type": "probe", "links": [], "metadata": {"schema": "v1"}}
    organ = {"version": "1.0.0", "roles": ["x"], "cells": ["action.echo.v1"], "pathways": [], "policies": {"stage": "draft", "hitl": True}}
    for bad in (f"../../{TAG}", f"analysis.x/../../{TAG}", f"/tmp/{TAG}", f"..\\..\\{TAG}"):
        for path, body in (
            ("/cells", {**cell, "id": bad}),
            ("/cells", {**cell, "id": "analysis.ok_probe", "version": f"1.0.0/../../{TAG}"}),
            ("/factory/cells", {"template": {**cell, "id": bad}}),
            ("/factory/cells/dryrun", {"template": {**cell, "id": bad}}),
            ("/factory/cells", {"template": bad}),
            ("/organs/build", {"organ_template": bad}),
            ("/organs/build", {"organ_template": {**organ, "id": bad}}),
            ("/organs/build", {"organ_template": {**organ, "id": bad}, "dryrun": True}),
        ):
            r = http.post(path, json=body)
            if r.status_code != 200:  # a dry-run reports a broken template with ok: false
                assert_contract_error(r, "invalid_request", "invalid_template", "not_found")
            else:
                assert r.json()["ok"] is False, r.text
    assert files_outside(sandbox, server.data_dir) == before
    leaked = [p for root in (sandbox.parent, REPO) for p in _walk(root) if TAG in p.name]
    assert leaked == []


def _walk(root: Path) -> Iterator[Path]:
    skip = {".venv", ".git", "node_modules", ".hypothesis"}
    stack = [root]
    while stack:
        for p in stack.pop().iterdir():
            yield p
            if p.is_dir() and not p.is_symlink() and p.name not in skip:
                stack.append(p)


# --- commands -----------------------------------------------------------------------------------------


def test_any_text_up_to_10kb_gets_a_well_formed_reply(http: httpx.Client) -> None:
    """Random Unicode (and command-like word salad) as a command: always 200 and the contract's shape."""
    words = st.sampled_from(["создай", "орган", "голосовой", "v1", "собери", "→", "->", "approve", "cell-1", "organ-1",
                             "status", "статус", "одобри", "version", "2.0.0", "apply", "применить", ",", "ё", "make"])
    salad = st.lists(words, max_size=30).map(" ".join)

    @settings(FAST, max_examples=60)
    @given(text=st.text(max_size=2_500) | salad | st.text(alphabet="аб в,→.v1ё", max_size=5_000))
    def check(text: str) -> None:
        assert len(text.encode()) <= 10_240
        r = http.post("/api/neira/commands", json={"text": text})
        assert r.status_code == 200, (text[:200], r.text[:500])
        body = r.json()
        assert isinstance(body["reply"], str) and body["reply"], body
        assert isinstance(body["session_id"], str) and body["lang"] in ("ru", "en"), body
        if body["understood"]:
            assert {"intent", "spec", "policy", "plan"} <= set(body), body
            assert isinstance(body["intent"], str) and set(body["policy"]) == {"allowed", "violations"}, body
        else:
            assert isinstance(body["error"]["code"], str), body

    check()
