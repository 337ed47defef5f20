"""What a request's path and body type may be: the one rule for ids in paths (what could never name anything is
400 `invalid_request` on every route, matched or not; anything else is looked up, a miss is 404 `not_found`,
contract §10), the files of web/ that are pages, and JSON bodies on JSON routes (415 otherwise)."""

from __future__ import annotations

from litestar.types import Scope

from neira.errors import InvalidRequest, NotFound, UnsupportedMediaType

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


# what the static router serves from web/: pages and their assets, not the notes that live beside them (README.md)
PAGE_SUFFIXES = frozenset({".html", ".js", ".mjs", ".css", ".svg", ".png", ".ico", ".webp", ".jpg", ".woff2", ".woff"})


def check_page(path: str) -> None:
    """404 for a file of web/ that is not part of a page (the directory itself answers index.html)."""
    name = path.rpartition("/")[2]
    if name and "." + name.rpartition(".")[2].lower() not in PAGE_SUFFIXES:
        raise NotFound("no such route or resource")


def is_json(content_type: bytes) -> bool:
    """`application/json` or `application/<something>+json`, whatever its parameters."""
    media = content_type.partition(b";")[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


def check_json_body(scope: Scope) -> None:
    """415 for a request that sends a body labelled as something other than JSON. A body without a
    Content-Type is read as JSON (what most clients mean); a request without a body may say anything."""
    content_type, has_body = None, False
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
        elif name == b"content-length":
            has_body = has_body or value.strip() not in (b"", b"0")
        elif name == b"transfer-encoding":
            has_body = True
    if has_body and content_type is not None and not is_json(content_type):
        raise UnsupportedMediaType("this route reads a JSON body: send it as application/json")
