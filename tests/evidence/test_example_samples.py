"""Every example template's samples pass on its real implementation (cells on a record, organs on a build)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neira.core import EXAMPLES_DIR, Core
from neira.sample_runs import run_samples
from neira.samples import samples_of

CELLS = sorted((EXAMPLES_DIR / "cells").glob("*.json"))
ORGANS = sorted((EXAMPLES_DIR / "organs").glob("*.json"))


def body(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", CELLS + ORGANS, ids=lambda p: p.stem)
def test_every_example_has_three_samples_with_expect(path: Path) -> None:
    samples = samples_of(body(path)["metadata"])
    assert len(samples) >= 3 and all(s.expect is not None for s in samples)


async def test_every_example_cell_passes_its_samples(core: Core) -> None:
    failures = {}
    for path in CELLS:
        template = body(path)
        _, record = await core.factory.create({"template": template}, "admin")
        results = await run_samples(lambda value: core.runs.run_cell(record["id"], {"input": value}), samples_of(template["metadata"]))
        failures.update({f"{template['id']}[{r.sample}]": r.reason for r in results if not r.passed})
    assert failures == {}


async def test_every_example_organ_passes_its_samples(core: Core) -> None:
    failures = {}
    for path in ORGANS:
        template = body(path)
        _, built = await core.organs.build({"organ_template": template["id"]}, "admin")
        organ_id = built["organ_id"]
        results = await run_samples(lambda value: core.runs.run_organ(organ_id, {"input": value}), samples_of(template["metadata"]))
        failures.update({f"{template['id']}[{r.sample}]": r.reason for r in results if not r.passed})
    assert failures == {}
