"""Samples: their rules as part of the template (errors with JSON paths) and the judge of one run."""

from __future__ import annotations

from typing import Any

import pytest

from neira.errors import InvalidTemplate
from neira.samples import Expect, judge
from neira.templates import parse_cell_template, parse_organ_template


def cell(samples: Any) -> dict[str, Any]:
    return {"id": "analysis.s.v1", "version": "1.0.0", "analysis_type": "reverse", "metadata": {"schema": "v1", "samples": samples}}


def errors_of(samples: Any) -> list[dict[str, str]]:
    with pytest.raises(InvalidTemplate) as info:
        parse_cell_template(cell(samples))
    return [{"path": e["path"], "message": e["message"]} for e in info.value.extra["errors"]]


def test_good_samples_are_kept_as_given() -> None:
    samples = [{"input": "abc", "expect": {"equals": "cba"}}, {"input": {"type": "json", "data": {}}},
               {"input": "x", "expect": {"type": "text", "max_ms": 100, "contains": "x"}}]
    assert parse_cell_template(cell(samples)).metadata["samples"] == samples


@pytest.mark.parametrize(("samples", "path"), [
    ("abc", "$.metadata.samples"),
    ([{"expect": {"equals": "x"}}], "$.metadata.samples[0]"),
    ([{"input": "a", "expect": {}}], "$.metadata.samples[0].expect"),
    ([{"input": "a", "expect": {"type": "video"}}], "$.metadata.samples[0].expect.type"),
    ([{"input": "a", "expect": {"max_ms": 0}}], "$.metadata.samples[0].expect.max_ms"),
    ([{"input": "a", "expect": {"equals": 3}}], "$.metadata.samples[0].expect.equals"),
    ([{"input": "a"}, {"input": {"type": "video"}}], "$.metadata.samples[1].input"),
    ([{"input": ""}], "$.metadata.samples[0].input"),
    ([{"input": "a", "expect": {"equal": "a"}}], "$.metadata.samples[0].expect"),
])
def test_broken_samples_are_invalid_templates_naming_the_path(samples: Any, path: str) -> None:
    assert path in [e["path"] for e in errors_of(samples)]


def test_organ_samples_are_checked_too() -> None:
    organ = {"id": "organ.s.v1", "version": "1.0.0", "cells": ["a"], "metadata": {"samples": [{"input": 1}]}}
    with pytest.raises(InvalidTemplate) as info:
        parse_organ_template(organ)
    assert [e["path"] for e in info.value.extra["errors"]] == ["$.metadata.samples[0].input"]


TEXT = {"type": "text", "text": "hello world"}


@pytest.mark.parametrize(("expect", "ok", "output", "ms", "failed"), [
    (None, True, TEXT, 1.0, False),
    (None, False, None, 1.0, True),
    (Expect(equals="hello world"), True, TEXT, 1.0, False),
    (Expect(equals="hello"), True, TEXT, 1.0, True),
    (Expect(equals=TEXT), True, TEXT, 1.0, False),
    (Expect(contains="lo wo"), True, TEXT, 1.0, False),
    (Expect(contains="bye"), True, TEXT, 1.0, True),
    (Expect(contains={"data": {"w": 2}}), True, {"type": "json", "data": {"w": 2, "h": 3}}, 1.0, False),
    (Expect(contains={"data": {"w": 3}}), True, {"type": "json", "data": {"w": 2}}, 1.0, True),
    (Expect(type="text"), True, TEXT, 1.0, False),
    (Expect(type="audio"), True, TEXT, 1.0, True),
    (Expect(max_ms=10), True, TEXT, 9.5, False),
    (Expect(max_ms=10), True, TEXT, 10.5, True),
])
def test_the_judge(expect: Expect | None, ok: bool, output: Any, ms: float, failed: bool) -> None:
    assert (judge(expect, ok, output, ms, "cell_failed: boom") is not None) is failed


def test_a_failing_judgement_says_why() -> None:
    assert judge(Expect(max_ms=10), True, TEXT, 12.0) == "took 12.0 ms, more than max_ms 10"
    assert judge(Expect(type="audio"), True, TEXT, 1.0) == "type 'text' is not 'audio'"


def test_expect_types_are_the_payload_types() -> None:
    from neira.runtime.payloads import TYPES
    from neira.samples import PAYLOAD_TYPES

    assert PAYLOAD_TYPES == TYPES
