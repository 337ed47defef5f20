"""The shipped catalog in examples/ keeps the contract's template rules (§3)."""

import json
import re
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ID_RE = re.compile(r"^[a-z][a-z0-9_.\-]{0,127}$")
SEMVER_RE = re.compile(r"^\d+\.\d+\.\d+$")
CELLS = {p.stem: json.loads(p.read_text()) for p in sorted((EXAMPLES / "cells").glob("*.json"))}
ORGANS = {p.stem: json.loads(p.read_text()) for p in sorted((EXAMPLES / "organs").glob("*.json"))}


def test_required_files_exist():
    assert {"organ.echo.v1", "organ.reverse.v1", "organ.voice.v1", "organ.vision.v1"} <= set(ORGANS)
    assert {"analysis.grayscale.v1", "analysis.summarize.v1", "memory.context.v1"} <= set(CELLS)


@pytest.mark.parametrize("stem", sorted(CELLS))
def test_cell_template_rules(stem):
    cell = CELLS[stem]
    assert cell["id"] == stem and ID_RE.match(cell["id"])
    assert SEMVER_RE.match(cell["version"])
    kinds = [k for k in ("analysis_type", "action_type", "memory_type") if k in cell]
    assert len(kinds) == 1
    assert all(link in CELLS for link in cell["links"])
    assert cell["metadata"]["schema"] == "v1"
    assert cell["metadata"]["aliases"]["ru"] and cell["metadata"]["aliases"]["en"]


def test_cell_links_are_acyclic():
    state: dict[str, int] = {}

    def visit(cid: str) -> None:
        assert state.get(cid) != 1, f"cycle through {cid}"
        if state.get(cid) == 2:
            return
        state[cid] = 1
        for link in CELLS[cid]["links"]:
            visit(link)
        state[cid] = 2

    for cid in CELLS:
        visit(cid)


@pytest.mark.parametrize("stem", sorted(ORGANS))
def test_organ_template_rules(stem):
    organ = ORGANS[stem]
    assert organ["id"] == stem and re.match(r"^organ\.[a-z0-9_\-]+\.v\d+$", organ["id"])
    assert len(set(organ["cells"])) == len(organ["cells"])
    assert all(c in CELLS for c in organ["cells"])
    for pathway in organ["pathways"]:
        assert set(pathway["cells"]) <= set(organ["cells"])
    assert organ["policies"] == {"stage": "draft", "hitl": True}
    assert organ["metadata"]["aliases"]["ru"] and organ["metadata"]["aliases"]["en"]


def test_voice_pathway_order():
    assert ORGANS["organ.voice.v1"]["pathways"][0]["cells"] == [
        "analysis.text_normalize.v1", "analysis.text_to_phonemes.v1", "analysis.speak_adapter.v1"]
