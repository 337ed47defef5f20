"""The SelectorCell: reuse an existing cell record or create a new one, always with the reason."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from neira.lifecycle import SERVING_CELL_STATES, CellState
from neira.structs import Base
from neira.templates import body_kind, semver_key

LIVE_STATES = SERVING_CELL_STATES
version_key = lru_cache(maxsize=4096)(semver_key)  # SemVer sort key, memoised: dry-runs compare the same few
_PREFERENCE = {CellState.STABLE: 3, CellState.EXPERIMENTAL: 2, CellState.CANARY: 1}


class Candidate(Base, frozen=True):
    """What the selector needs to know about an existing record."""

    id: str
    template_id: str
    version: str
    kind: str
    state: str
    digest: str
    backend: str = "adapter"
    previous_state: str | None = None  # where a `healing` record came from (it returns there, or fails)

    @property
    def number(self) -> int:
        """The numeric part of `cell-<n>` (newer records have larger numbers)."""
        tail = self.id.rpartition("-")[2]
        return int(tail) if tail.isdigit() else 0


class Selection(Base, frozen=True):
    """The selector's answer: `reuse` a record (its id and state) or `create` a new one."""

    action: str  # reuse | create
    reason: str
    record_id: str | None = None
    state: str | None = None


def candidate(row: Any) -> Candidate:
    """A Candidate from a `cell_records` row (or any object with the same attributes and a `template`)."""
    template = row.template or {}
    kind = body_kind(template)[0]
    return Candidate(
        id=row.id, template_id=row.template_id, version=row.version, kind=kind, state=row.state,
        digest=row.digest, backend=row.backend, previous_state=getattr(row, "previous_state", None),
    )


def _major(version: str) -> int:
    return version_key(version)[0]


def _record_order(c: Candidate) -> tuple:
    # best first: stable over experimental over canary, then the highest version, then the newest record
    return (_PREFERENCE.get(c.state, 0), version_key(c.version), c.number)  # type: ignore[call-overload]


def select(template_id: str, version: str, kind: str, digest: str, records: Iterable[Candidate]) -> Selection:
    """Reuse a live record of the same template with a compatible version (same major) and kind, or a draft
    with the same content; otherwise create. Pure: the caller hands in the records of `template_id`."""
    same = [r for r in records if r.template_id == template_id]
    live = [r for r in same if r.state in LIVE_STATES]
    compatible = sorted((r for r in live if r.kind == kind and _major(r.version) == _major(version)), key=_record_order, reverse=True)
    if compatible:
        best = compatible[0]
        return Selection(
            action="reuse", record_id=best.id, state=best.state,
            reason=f"{best.id} runs {template_id} {best.version} ({best.state}), compatible with {version}",
        )
    drafts = sorted((r for r in same if r.state == CellState.DRAFT and r.digest == digest), key=_record_order, reverse=True)
    if drafts:
        best = drafts[0]
        return Selection(
            action="reuse", record_id=best.id, state=best.state,
            reason=f"{best.id} is a draft of the same template content",
        )
    return Selection(action="create", reason=_why_create(template_id, version, kind, same, live))


def _why_create(template_id: str, version: str, kind: str, same: list[Candidate], live: list[Candidate]) -> str:
    if not same:
        return f"no record of {template_id} yet"
    if not live:
        states = ", ".join(sorted({r.state for r in same}))
        return f"no live record of {template_id} (existing: {states})"
    other_kind = [r for r in live if r.kind != kind]
    if len(other_kind) == len(live):
        return f"live records of {template_id} are of kind {other_kind[0].kind}, not {kind}"
    versions = ", ".join(sorted({r.version for r in live}, key=version_key))
    return f"live records of {template_id} have incompatible versions ({versions}) for {version}"
