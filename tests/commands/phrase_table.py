"""Loads tests/commands/phrases.tsv (public.tsv's rows plus ours) and checks one row's expectations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

TABLE = Path(__file__).with_name("phrases.tsv")


class Row(NamedTuple):
    text: str
    intent: str
    expect: dict[str, Any]
    line: int


def load_rows() -> list[Row]:
    rows = []
    for n, line in enumerate(TABLE.read_text(encoding="utf-8").split("\n"), 1):
        if not line or line.startswith("#"):
            continue
        text, intent, expect = line.split("\t")
        rows.append(Row(text, intent, json.loads(expect), n))
    return rows


def _same_id(a: str, b: str) -> bool:
    return a.replace("-", "_") == b.replace("-", "_")


def check(row: Row, result: dict[str, Any]) -> None:
    """Assert every expectation of the row against a result shaped like the HTTP reply."""
    exp = row.expect
    understood = exp.get("understood", True)
    assert result["understood"] is understood, result
    if not understood:
        err = result["error"]
        if "error_code" in exp:
            assert err["code"] == exp["error_code"], err
        if "suggest" in exp:
            assert any(exp["suggest"] in s for s in err.get("suggestions", [])), err
        if "candidates" in exp:
            assert list(err["candidates"]) == exp["candidates"], err
        return
    assert result["intent"] == row.intent, result
    template = _template(result)
    if "template_id" in exp:
        assert template is not None and _same_id(template["id"], exp["template_id"]), template
    if "version" in exp:
        assert template["version"] == exp["version"], template
    if "pathway" in exp:
        assert template["pathways"][0]["cells"] == exp["pathway"], template
    if "cells_include" in exp:
        cells = template.get("cells") or []
        assert all(c in cells for c in exp["cells_include"]), cells
    if "update_from" in exp:
        assert result["update_from"] == exp["update_from"], result
    if "target" in exp:
        assert exp["target"] in result["target"]["id"], result
    if "target_is" in exp:
        assert result["target"] == exp["target_is"], result
    if "new_cells" in exp:
        assert [c["id"] for c in result["new_cells"]] == exp["new_cells"], result
    if "lang" in exp:
        assert result["lang"] == exp["lang"], result
    if "input" in exp:  # a run's input: the user's own text, whole
        assert result["input"] == exp["input"], result
    for key in ("iteration", "verdict"):  # a training review: which iteration, accepted or rejected
        if key in exp:
            assert result[key] == exp[key], result


def _template(result: dict[str, Any]) -> dict | None:
    spec = result.get("spec")
    if not spec:
        return None
    return spec["template"] if spec["kind"] == "organ_template" else spec["spec"]["template"]
