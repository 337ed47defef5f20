"""check_chain: the type chain of a pathway, as risks for the dry-run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neira.catalog import parse_cell
from neira.runtime import builtin_registry, check_chain
from neira.runtime.backends import AdapterBackend
from neira.runtime.chain import Risk
from neira.templates import CellTemplate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BACKENDS = {"adapter": AdapterBackend(builtin_registry())}


def example(cell_id: str) -> CellTemplate:
    return parse_cell(json.loads((EXAMPLES / "cells" / f"{cell_id}.json").read_text()))


def test_every_example_organ_chains() -> None:
    for path in sorted((EXAMPLES / "organs").glob("*.json")):
        organ = json.loads(path.read_text())
        for pathway in organ["pathways"]:
            assert check_chain([example(c) for c in pathway["cells"]], BACKENDS) == [], path.name


@pytest.mark.parametrize(("cells", "expected"), [
    (["analysis.text_to_phonemes.v1", "analysis.reverse.v1"],
     [Risk(code="type_mismatch", severity="error", id="analysis.reverse.v1",
           cells=["analysis.text_to_phonemes.v1", "analysis.reverse.v1"],
           message="analysis.text_to_phonemes.v1 gives phonemes; analysis.reverse.v1 takes text")]),
    (["analysis.image_decode.v1", "action.echo.v1", "analysis.summarize.v1"],
     [Risk(code="type_mismatch", severity="error", id="analysis.summarize.v1",
           cells=["action.echo.v1", "analysis.summarize.v1"],
           message="action.echo.v1 gives image; analysis.summarize.v1 takes text")]),
    (["action.echo.v1", "analysis.speak_adapter.v1"], []),  # echo passes text through
])
def test_breaks_name_both_cells(cells: list[str], expected: list[Risk]) -> None:
    assert check_chain([example(c) for c in cells], BACKENDS) == expected


def test_a_cell_without_implementation() -> None:
    odd = parse_cell({"id": "analysis.odd.v1", "version": "1.0.0", "analysis_type": "odd", "links": [],
                      "metadata": {"schema": "v1"}})
    assert check_chain([example("analysis.text_normalize.v1"), odd, example("analysis.reverse.v1")], BACKENDS) == [
        Risk(code="no_implementation", severity="error", id="analysis.odd.v1",
             message="analysis.odd.v1: no implementation 'odd' on the adapter backend")]
    assert [r.code for r in check_chain([odd], BACKENDS, backend="wasm")] == ["no_implementation"]
