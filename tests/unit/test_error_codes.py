"""The core raises coded errors; only api/ maps a code to an HTTP status, and it knows every code the core has."""

from __future__ import annotations

import neira.errors
from api.errors import STATUS_BY_CODE
from neira.errors import NeiraError


def _codes(cls: type[NeiraError]) -> set[str]:
    return {cls.code} | {code for sub in cls.__subclasses__() for code in _codes(sub)}


def test_every_core_error_code_has_an_http_status() -> None:
    missing = _codes(NeiraError) - STATUS_BY_CODE.keys()
    assert not missing, f"codes without an HTTP status in api/errors.py: {sorted(missing)}"


def test_the_core_error_module_holds_no_status_map() -> None:
    assert not any(isinstance(value, dict) and "not_found" in value for value in vars(neira.errors).values())
