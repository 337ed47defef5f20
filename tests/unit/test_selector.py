"""The selector: reuse a live compatible record or an identical draft, otherwise create — with the reason."""

from __future__ import annotations

import pytest

from neira.selector import Candidate, Selection, select

T = "analysis.summarize.v1"


def rec(n: int, state: str, version: str = "1.0.0", kind: str = "analysis", digest: str = "d1", template_id: str = T) -> Candidate:
    return Candidate(id=f"cell-{n}", template_id=template_id, version=version, kind=kind, state=state, digest=digest)


CASES = [
    ("nothing yet", [], Selection(action="create", reason=f"no record of {T} yet")),
    ("other template only", [rec(1, "stable", template_id="analysis.other.v1")], Selection(action="create", reason=f"no record of {T} yet")),
    ("stable same major", [rec(1, "stable", "1.4.0")],
     Selection(action="reuse", record_id="cell-1", state="stable", reason=f"cell-1 runs {T} 1.4.0 (stable), compatible with 1.0.0")),
    ("canary", [rec(1, "canary")],
     Selection(action="reuse", record_id="cell-1", state="canary", reason=f"cell-1 runs {T} 1.0.0 (canary), compatible with 1.0.0")),
    ("stable preferred over newer experimental", [rec(1, "stable", "1.0.0"), rec(2, "experimental", "1.1.0")],
     Selection(action="reuse", record_id="cell-1", state="stable", reason=f"cell-1 runs {T} 1.0.0 (stable), compatible with 1.0.0")),
    ("highest version among equals", [rec(1, "canary", "1.0.0"), rec(2, "canary", "1.2.0"), rec(3, "canary", "1.1.0")],
     Selection(action="reuse", record_id="cell-2", state="canary", reason=f"cell-2 runs {T} 1.2.0 (canary), compatible with 1.0.0")),
    ("other major", [rec(1, "stable", "2.0.0")],
     Selection(action="create", reason=f"live records of {T} have incompatible versions (2.0.0) for 1.0.0")),
    ("other kind", [rec(1, "stable", kind="memory")],
     Selection(action="create", reason=f"live records of {T} are of kind memory, not analysis")),
    ("identical draft", [rec(1, "draft")],
     Selection(action="reuse", record_id="cell-1", state="draft", reason="cell-1 is a draft of the same template content")),
    ("draft with other content", [rec(1, "draft", digest="d2")],
     Selection(action="create", reason=f"no live record of {T} (existing: draft)")),
    ("only dead records", [rec(1, "disabled"), rec(2, "rolled_back"), rec(3, "failed"), rec(4, "deprecated")],
     Selection(action="create", reason=f"no live record of {T} (existing: deprecated, disabled, failed, rolled_back)")),
    ("healing is not live", [rec(1, "healing")],
     Selection(action="create", reason=f"no live record of {T} (existing: healing)")),
    ("live beats identical draft", [rec(1, "draft"), rec(2, "experimental")],
     Selection(action="reuse", record_id="cell-2", state="experimental", reason=f"cell-2 runs {T} 1.0.0 (experimental), compatible with 1.0.0")),
]


@pytest.mark.parametrize(("name", "records", "expected"), CASES, ids=[c[0] for c in CASES])
def test_select(name: str, records: list[Candidate], expected: Selection):
    assert select(T, "1.0.0", "analysis", "d1", records) == expected


def test_record_numbers_order_ties():
    assert select(T, "1.0.0", "analysis", "d1", [rec(10, "draft"), rec(9, "draft")]).record_id == "cell-10"
