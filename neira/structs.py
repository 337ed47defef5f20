"""The one msgspec base every domain and wire type derives from."""

from __future__ import annotations

from typing import Any

import msgspec


class Base(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Keyword-only, strict about unknown fields: a typo in a request is an error, not silence."""


class Frozen(Base, frozen=True):
    """An immutable value."""


class Answer(msgspec.Struct, kw_only=True, frozen=True):
    """An answer's value. Other fields are tolerated when decoded (a client keeps working as it grows); a field is
    also read by its JSON name (`status["state"]`), as callers written against the JSON do."""

    def __getitem__(self, key: str) -> Any:
        names = self.__struct_encode_fields__
        if key not in names:
            raise KeyError(key)
        return getattr(self, self.__struct_fields__[names.index(key)])

    def __contains__(self, key: object) -> bool:
        """Whether the JSON has `key` (a field left unset is not written)."""
        names = self.__struct_encode_fields__
        return key in names and getattr(self, self.__struct_fields__[names.index(key)]) is not msgspec.UNSET

    def get(self, key: str, default: Any = None) -> Any:
        """The field named `key` in the JSON, or `default` for a name it does not have."""
        names = self.__struct_encode_fields__
        return getattr(self, self.__struct_fields__[names.index(key)]) if key in names else default


def to_builtins(value: object) -> object:
    """Structs, enums and tuples as plain JSON-ready Python values."""
    return msgspec.to_builtins(value)
