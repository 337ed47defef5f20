"""What the controllers share: the core as a dependency, and the one way a JSON body is read."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.di import NamedDependency

from neira.core import Core
from neira.errors import InvalidRequest

CoreDep = NamedDependency[Core]
MAX_DEPTH = 64  # templates nest a few levels; deeper bodies only serve to exhaust the stack


async def json_body(request: Request, optional: bool = False) -> Any:
    """The request's JSON body; 400 invalid_request when it is malformed (or missing, unless `optional`)."""
    raw = await request.body()
    if not raw.strip():
        if optional:
            return None
        raise InvalidRequest("a JSON body is required")
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise InvalidRequest("malformed JSON body") from None
    except RecursionError:
        raise InvalidRequest(f"JSON body nests deeper than {MAX_DEPTH} levels") from None
    if too_deep(body):
        raise InvalidRequest(f"JSON body nests deeper than {MAX_DEPTH} levels")
    return body


def too_deep(value: Any, limit: int = 0) -> bool:
    """Whether `value` nests lists/objects deeper than MAX_DEPTH (checked without recursion)."""
    limit = limit or MAX_DEPTH
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False
