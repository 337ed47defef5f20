"""Catalog integrity (contract §7, the immune system): each file under `<data-dir>/cells/` is checked against the
digest of the body the catalog index holds for it (the index is the source of truth; the file is its copy).
A file that is missing, unreadable or whose content differs is a problem. Pure file work, run on a thread."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

import msgspec

from neira.structs import Base

Problem = Literal["missing", "changed", "unreadable"]


class FileProblem(Base):
    """One catalog file that does not hold what the index says: `file` is relative to the data dir."""

    family: str
    id: str
    version: str
    file: str
    problem: Problem
    reason: str


class IntegrityCheck(Base):
    """One pass over the catalog's files."""

    at: float
    checked: int
    failed: list[FileProblem]


def digest(body: Any) -> str:
    """The content digest of a template body: key order and layout do not matter, content does."""
    return hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()


def check_file(path: Path, expected: str) -> tuple[Problem, str] | None:
    """What is wrong with one file (None: it holds the indexed body)."""
    if not path.is_file():
        return "missing", "is missing"
    try:
        found = digest(json.loads(path.read_bytes()))
    except (OSError, ValueError):
        return "unreadable", "is not readable JSON"
    if found != expected:
        return "changed", f"has digest {found[:12]}…, the index holds {expected[:12]}…"
    return None


def check_files(rows: Iterable[Any], path_for: Callable[[str, str, str], Path], base: Path, at: float) -> IntegrityCheck:
    """Check the file of every `(family, id, version, body)` index row."""
    failed, checked = [], 0
    for row in rows:
        path = path_for(row.family, row.id, row.version)
        checked += 1
        found = check_file(path, digest(row.body))
        if found is not None:
            problem, reason = found
            rel = str(path.relative_to(base)) if path.is_relative_to(base) else path.name
            failed.append(FileProblem(family=row.family, id=row.id, version=row.version, file=rel, problem=problem,
                                      reason=f"catalog file {rel} {reason}"))
    return IntegrityCheck(at=at, checked=checked, failed=failed)
