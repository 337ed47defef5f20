"""The base of every answer shape, and the error body every route shares."""

from __future__ import annotations

from typing import Any

import msgspec


class Wire(msgspec.Struct, kw_only=True):
    """An answer body: keyword-only, named fields, other fields tolerated (clients keep working as it grows)."""


class Error(Wire):
    """Every error: `{code, reason, ...}` (api/errors.py). `capability` names a closed gate; `errors` lists a
    template's broken rules (`{path, message}`); `from`/`to` are the states of a refused lifecycle move;
    `violations` the policy rules that denied it."""

    code: str
    reason: str
    capability: str | None = None
    errors: list[dict[str, Any]] | None = None
    from_: str | None = msgspec.field(default=None, name="from")
    to: str | None = None
    violations: list[dict[str, Any]] | None = None


class Moved(Wire):
    """A lifecycle move's answer: `{id, state}`."""

    id: str
    state: str


class Reason(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The optional body of a lifecycle move: `{reason?}`."""

    reason: str | None = None
