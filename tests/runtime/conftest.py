"""A started core whose registry has the fault doubles, with a short run timeout and two workers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from neira.core import Core
from tests.conftest import make_settings, started
from tests.runtime.doubles import with_doubles

TIMEOUT_MS = 600


def cell(impl: str, cell_id: str | None = None, **params: Any) -> dict[str, Any]:
    """A cell template bound to `impl` through `metadata.adapter`."""
    adapter: dict[str, Any] = {"impl": impl, **({"params": params} if params else {})}
    return {"id": cell_id or f"analysis.t_{impl}.v1", "version": "1.0.0", "analysis_type": impl, "links": [],
            "metadata": {"schema": "v1", "adapter": adapter}}


async def record_of(core: Core, template: dict[str, Any]) -> str:
    """A draft record of the template."""
    _, record = await core.factory.create({"template": template}, "admin")
    return record["id"]


@pytest.fixture
async def rcore(tmp_path: Path) -> AsyncIterator[Core]:
    async with started(Core(make_settings(tmp_path / "data", run_timeout_ms=TIMEOUT_MS, run_workers=2, run_queue=2), with_doubles())) as c:
        yield c
