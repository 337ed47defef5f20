"""Pages of the list routes (contract §10): `?limit=` (default 100, at most 1000) and an opaque `?cursor=`; the
answer stays a JSON array and the next page's URL is in `Link: <…>; rel="next"`, absent on the last page."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, Response
from litestar.params import Parameter

from neira.errors import InvalidRequest

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
Limit = Annotated[int, Parameter(ge=1, le=MAX_LIMIT, description=f"page size, 1 to {MAX_LIMIT}")]
Cursor = Annotated[str | None, Parameter(description="where the page starts: from the Link header of the previous page")]


def encode_cursor(key: str | int) -> str:
    """The opaque cursor after the row with this key (its id or seq)."""
    return base64.urlsafe_b64encode(str(key).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The key a cursor stands for; 400 for a cursor this server did not make."""
    if cursor is None:
        return None
    try:
        key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidRequest("cursor is not one this server gave out") from None
    if not key or len(key) > 128 or not key.isprintable():
        raise InvalidRequest("cursor is not one this server gave out")
    return key


def seq_cursor(cursor: str | None) -> int | None:
    """The seq a cursor of events or audit stands for; 400 for anything else."""
    key = decode_cursor(cursor)
    if key is None:
        return None
    if not key.isdigit() or int(key) >= 2**63:
        raise InvalidRequest("cursor is not one this server gave out")
    return int(key)


def page(request: Request, rows: list[Any], limit: int, key: Callable[[Any], str | int]) -> Response[list[Any]]:
    """`rows` holds up to `limit + 1` items: answer the first `limit`, and link the next page if there is more."""
    items = rows[:limit]
    headers = {}
    if len(rows) > limit:
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        query.append(("cursor", encode_cursor(key(items[-1]))))
        headers["Link"] = f'<{request.url.path}?{urlencode(query)}>; rel="next"'
    return Response(items, headers=headers)
