"""The one rule for ids in request paths: what could never name anything is 400 `invalid_request` on every route,
matched or not; anything else is looked up, and a miss is 404 `not_found` (contract §10)."""

from __future__ import annotations

from litestar.types import Scope

from neira.errors import InvalidRequest

MAX_SEGMENT = 128  # the longest id the contract allows (§3)


def check_path(scope: Scope) -> None:
    """400 for a path with a `/` inside a segment (`%2F`), a `..`, a control character, or a segment longer
    than MAX_SEGMENT characters."""
    raw = scope.get("raw_path") or b""
    if b"%2f" in raw.lower():
        raise InvalidRequest("an id cannot contain '/'")
    for segment in scope["path"].split("/"):
        if len(segment) > MAX_SEGMENT:
            raise InvalidRequest(f"an id has at most {MAX_SEGMENT} characters")
        if ".." in segment:
            raise InvalidRequest("an id cannot contain '..'")
        if not segment.isprintable():
            raise InvalidRequest("an id cannot contain control characters")
