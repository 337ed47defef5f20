"""A started core (and an HTTP client on it) whose registry holds the evidence doubles."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from api.app import create_app
from neira.core import Core
from tests.conftest import make_settings, started
from tests.evidence.doubles import evidence_registry


def cell(impl: str, samples: list[dict[str, Any]], cell_id: str | None = None, **policies: Any) -> dict[str, Any]:
    """A cell template on `impl` with samples (and `policies`, if given)."""
    body: dict[str, Any] = {"id": cell_id or f"analysis.e_{impl}.v1", "version": "1.0.0", "analysis_type": impl,
                            "links": [], "metadata": {"schema": "v1", "adapter": {"impl": impl}, "samples": samples}}
    if policies:
        body["policies"] = policies
    return body


GOOD = [{"input": "ab", "expect": {"equals": "AB"}}, {"input": "cd", "expect": {"equals": "CD"}},
        {"input": "ef", "expect": {"equals": "EF"}}, {"input": "gh", "expect": {"contains": "G"}}]
HALF_BAD = [{"input": "ab", "expect": {"equals": "AB"}}, {"input": "bad one"},
            {"input": "cd", "expect": {"equals": "nope"}}, {"input": "ef"}]


async def record_of(core: Core, template: dict[str, Any]) -> str:
    """A draft record of the template."""
    _, record = await core.factory.create({"template": template}, "admin")
    return record["id"]


@pytest.fixture
async def ecore(tmp_path: Path) -> AsyncIterator[Core]:
    async with started(Core(make_settings(tmp_path / "data", run_workers=1, analysis_interval_ms=50), evidence_registry())) as c:
        yield c


@pytest.fixture
async def eclient(tmp_path: Path) -> AsyncIterator[AsyncTestClient]:
    app = create_app(Core(make_settings(tmp_path / "data", run_workers=1, analysis_interval_ms=50), evidence_registry()))
    async with AsyncTestClient(app) as c:
        yield c
