"""Settings from the environment; stage delays; the core never imports the HTTP layer; token redaction."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

from neira.config import parse_capabilities, parse_stage_delays, settings_from_env
from neira.logs import RedactTokens

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, (50, 50, 50)),
        ("50,100,200", (50, 100, 200)),
        ("10", (10, 50, 50)),
        ("10,x,30", (10, 50, 30)),
        ("10,-5,30", (10, 50, 30)),
        (" 7 , 8 , 9 , 10", (7, 8, 9)),
        ("", (50, 50, 50)),
    ],
)
def test_stage_delays(raw: str | None, expected: tuple[int, int, int]) -> None:
    assert parse_stage_delays(raw) == expected


def test_deprecated_alias_is_honoured_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="neira.config"):
        s = settings_from_env({"ORGANS_BUILDER_STAGE_DELAYS_MS": "1,2,3"})
    assert s.stage_delays_ms == (1, 2, 3)
    assert "deprecated" in caplog.text
    assert settings_from_env({"ORGANS_BUILDER_STAGE_DELAYS_MS": "1,2,3", "ORGANS_BUILDER_STAGE_DELAYS": "4,5,6"}).stage_delays_ms == (4, 5, 6)


def test_env_and_overrides() -> None:
    env = {"NEIRA_PORT": "9001", "NEIRA_DATA_DIR": "/srv/x", "NEIRA_SAFE_MODE": "1",
           "NEIRA_CAPABILITIES": "factory_script=experimental, organs_builder=disabled,broken"}
    s = settings_from_env(env, port=9002)
    assert (s.port, s.data_dir, s.safe_mode) == (9002, "/srv/x", True)
    assert s.capabilities == {"factory_script": "experimental", "organs_builder": "disabled"}
    assert s.db_url == "sqlite+aiosqlite:////srv/x/neira.db"
    assert parse_capabilities("") == {}


def test_core_never_imports_api() -> None:
    for path in (ROOT / "neira").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n == "api" or n.startswith("api.") or n.startswith("litestar") for n in names), path


@pytest.mark.parametrize(
    "message",
    ["Authorization: Bearer abcdef123456", "GET /organs/organ-1/stream?token=abcdef123456 HTTP/1.1", 'token="abcdef123456"',
     '"WebSocket /organs/organ-1/stream?%74oken=abcdef123456" [accepted]', "/api/neira/events/stream?token%3Dabcdef123456",
     "/x?since=1&%2574oken=abcdef123456"],
)
def test_tokens_are_redacted(message: str) -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, message, None, None)
    RedactTokens().filter(record)
    assert "abcdef123456" not in record.getMessage()
    assert "***" in record.getMessage() or "?[query hidden]" in record.getMessage()
