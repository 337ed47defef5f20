"""The immune system's answer (contract §7): what is quarantined, and the last catalog integrity check."""

from __future__ import annotations

from typing import Any

from api.wire.base import Wire


class QuarantinedRecord(Wire):
    """A record out of traffic: `cause` error_rate | integrity, `reason` naming the measurement, `state` now."""

    record_id: str
    template_id: str
    version: str
    cause: str
    reason: str
    measurement: dict[str, Any]
    since: float
    state: str


class FileCheck(Wire):
    """A catalog file that failed the check (`file` relative to the data dir; `problem` missing | changed | unreadable)."""

    family: str
    id: str
    version: str
    file: str
    problem: str
    reason: str


class IntegrityCheck(Wire):
    """One pass over the catalog's files: when, how many, which failed."""

    at: float
    checked: int
    failed: list[FileCheck]


class Immune(Wire):
    """`GET /api/neira/immune`."""

    quarantined: list[QuarantinedRecord]
    last_integrity_check: IntegrityCheck | None
