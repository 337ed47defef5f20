"""One way to page a list route (contract §10): the answer stays a JSON array of at most `limit` items, and the
next page's URL goes in a `Link: <…>; rel="next"` header, absent on the last page.

The cursor is opaque to clients: the sort key of the last item sent, URL-safe base64, so a page never repeats
or skips an item that was there when the first page was read, whatever is added after it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import TypeVar
from urllib.parse import urlencode

from litestar import Request

from neira.errors import InvalidRequest

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
T = TypeVar("T")


def encode_cursor(key: str) -> str:
    """The cursor that continues after sort key `key`."""
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The sort key a cursor continues after; 400 `invalid_request` for anything this module did not make."""
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidRequest("cursor is not one this server handed out") from None


def page(items: Sequence[T], key: Callable[[T], str], limit: int, cursor: str | None) -> tuple[list[T], str | None]:
    """The items after `cursor` (items sorted by `key`), at most `limit`, and the cursor of the next page."""
    after = decode_cursor(cursor) if cursor else None
    rest = [item for item in items if after is None or key(item) > after]
    chunk = rest[:limit]
    return chunk, encode_cursor(key(chunk[-1])) if len(rest) > limit else None


def next_link(request: Request, cursor: str | None, limit: int) -> dict[str, str]:
    """The `Link` header of the next page (the same query with the new cursor), or no header on the last page."""
    if cursor is None:
        return {}
    query = {k: v for k, v in request.query_params.items() if k not in ("cursor", "limit")}
    query.update(limit=str(limit), cursor=cursor)
    return {"Link": f'<{request.url.path}?{urlencode(query)}>; rel="next"'}
