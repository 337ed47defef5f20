"""The one msgspec base every domain and wire type derives from."""

from __future__ import annotations

import msgspec


class Base(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Keyword-only, strict about unknown fields: a typo in a request is an error, not silence."""


class Frozen(Base, frozen=True):
    """An immutable value."""


def to_builtins(value: object) -> object:
    """Structs, enums and tuples as plain JSON-ready Python values."""
    return msgspec.to_builtins(value)
