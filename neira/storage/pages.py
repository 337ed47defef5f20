"""Keyset pages over rows whose ids are `<prefix>-<n>` (organs, cell records): in the order of `n`, which is
the order they were made in, portably (no cast: a longer id has the larger number)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_


def by_number(col: Any) -> tuple[ColumnElement[Any], Any]:
    """ORDER BY terms: shorter ids first, then by text (`organ-9` < `organ-10`)."""
    return func.length(col), col


def after_id(col: Any, after: str) -> ColumnElement[bool]:
    """Rows that come after the id `after` in `by_number` order."""
    return or_(func.length(col) > len(after), and_(func.length(col) == len(after), col > after))
