"""Template rules: valid templates decode; every broken rule is named with its JSON path."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from neira.errors import InvalidTemplate
from neira.templates import (
    find_cycle,
    parse_cell_template,
    parse_organ_template,
    semver_key,
    template_dict,
)

CELL = {"id": "analysis.summarize.v1", "version": "0.1.0", "analysis_type": "summary", "links": [], "metadata": {"schema": "v1"}}
ORGAN = {
    "id": "organ.voice.v1",
    "version": "1.0.0",
    "roles": ["speak"],
    "cells": ["a.x.v1", "a.y.v1"],
    "pathways": [{"name": "main", "cells": ["a.x.v1", "a.y.v1"]}],
    "policies": {"stage": "draft", "hitl": True},
}


def errors_of(fn, data) -> list[dict[str, str]]:
    with pytest.raises(InvalidTemplate) as info:
        fn(data)
    assert info.value.body()["code"] == "invalid_template"
    return info.value.errors


def test_valid_cell_round_trips() -> None:
    t = parse_cell_template(CELL)
    assert (t.kind, t.kind_value) == ("analysis", "summary")
    assert template_dict(t) == CELL


def test_schema_1_0_0_is_accepted() -> None:
    assert parse_cell_template({**CELL, "metadata": {"schema": "1.0.0"}}).metadata["schema"] == "1.0.0"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"id": "../etc/passwd"}, "$.id"),
        ({"id": "Upper"}, "$.id"),
        ({"id": "1abc"}, "$.id"),
        ({"id": "a" * 129}, "$.id"),
        ({"version": "1.0"}, "$.version"),
        ({"version": "01.0.0"}, "$.version"),
        ({"metadata": {}}, "$.metadata.schema"),
        ({"metadata": {"schema": "v2"}}, "$.metadata.schema"),
        ({"action_type": "run"}, "$"),
        ({"analysis_type": "  "}, "$.analysis_type"),
        ({"links": ["analysis.summarize.v1"]}, "$.links[0]"),
        ({"links": ["b.c", "b.c"]}, "$.links"),
        ({"links": ["../x"]}, "$.links[0]"),
        ({"confidence_threshold": 1.5}, "$.confidence_threshold"),
        ({"links": [1]}, "$.links[0]"),
        ({"metadata": {"schema": "v1", "aliases": {"ru": "голос"}}}, "$.metadata.aliases"),
    ],
)
def test_cell_rule_violations_name_their_path(change: dict, path: str) -> None:
    assert path in [e["path"] for e in errors_of(parse_cell_template, {**CELL, **change})]


def test_no_kind_field_is_an_error() -> None:
    data = {k: v for k, v in CELL.items() if k != "analysis_type"}
    assert errors_of(parse_cell_template, data) == [{"path": "$", "message": "exactly one of analysis_type, action_type, memory_type is required"}]


def test_unknown_field_is_an_error() -> None:
    assert errors_of(parse_cell_template, {**CELL, "colour": "red"})[0]["path"] == "$.colour"


def test_non_object_is_an_error() -> None:
    assert errors_of(parse_cell_template, ["x"]) == [{"path": "$", "message": "template must be a JSON object"}]


def test_valid_organ() -> None:
    t = parse_organ_template(ORGAN)
    assert [p.cells for p in t.pathways] == [["a.x.v1", "a.y.v1"]]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"id": "voice"}, "$.id"),
        ({"cells": []}, "$.cells"),
        ({"cells": ["a.x.v1", "a.x.v1", "a.y.v1"]}, "$.cells"),
        ({"pathways": [{"name": "main", "cells": ["a.z.v1"]}]}, "$.pathways[0].cells[0]"),
        ({"pathways": [{"name": "main", "cells": ["a.x.v1", "a.x.v1"]}]}, "$.pathways[0].cells"),
        ({"pathways": [{"name": "m", "cells": []}, {"name": "m", "cells": []}]}, "$.pathways"),
        ({"policies": {"stage": "gold", "hitl": True}}, "$.policies.stage"),
        ({"version": "v1"}, "$.version"),
    ],
)
def test_organ_rule_violations(change: dict, path: str) -> None:
    assert path in [e["path"] for e in errors_of(parse_organ_template, {**ORGAN, **change})]


def test_find_cycle() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) is None
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    chain = {f"n{i}": [f"n{i + 1}"] for i in range(5000)}
    assert find_cycle(chain) is None


def test_semver_ordering() -> None:
    versions = ["1.0.0", "1.0.0-alpha", "0.9.10", "1.0.0-alpha.1", "0.10.0", "2.0.0", "1.0.0-beta"]
    assert sorted(versions, key=semver_key) == ["0.9.10", "0.10.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta", "1.0.0", "2.0.0"]


cell_ids = st.from_regex(r"[a-z][a-z0-9_.\-]{0,40}", fullmatch=True)


@given(
    cell_id=cell_ids,
    version=st.tuples(st.integers(0, 99), st.integers(0, 99), st.integers(0, 99)).map(lambda v: ".".join(map(str, v))),
    kind=st.sampled_from(["analysis_type", "action_type", "memory_type"]),
    links=st.lists(cell_ids, unique=True, max_size=4),
)
def test_cell_encode_decode_round_trip(cell_id: str, version: str, kind: str, links: list[str]) -> None:
    data = {"id": cell_id, "version": version, kind: "x", "links": [l for l in links if l != cell_id], "metadata": {"schema": "v1"}}
    t = parse_cell_template(data)
    assert parse_cell_template(msgspec.json.decode(msgspec.json.encode(template_dict(t)))) == t


@pytest.mark.parametrize("field", ["id", "version"])
def test_trailing_newline_is_not_accepted(field: str) -> None:
    assert f"$.{field}" in [e["path"] for e in errors_of(parse_cell_template, {**CELL, field: CELL[field] + "\n"})]
