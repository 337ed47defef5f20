"""`/cells`: the cells catalog (file store + index)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

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


class CellsController(Controller):
    """Register, list and read cell templates."""

    path = "/cells"
    tags = ["cells"]

    @get("/")
    async def list_cells(
        self, core: CoreDep, kind: FromQuery[str | None] = None, q: FromQuery[str | None] = None
    ) -> list[dict[str, Any]]:
        """Latest version of every cell; `kind` (analysis|action|memory) filters, `q` searches id, kind,
        description and aliases."""
        return await core.catalog.list_cells(kind=kind or None, q=q or None)

    @get("/{cell_id:str}")
    async def get_cell(self, core: CoreDep, cell_id: FromPath[str]) -> dict[str, Any]:
        """The latest version (by SemVer) of a cell template."""
        return await core.catalog.get_cell(cell_id)

    @get("/{cell_id:str}/{version:str}")
    async def get_cell_version(self, core: CoreDep, cell_id: FromPath[str], version: FromPath[str]) -> dict[str, Any]:
        """One version of a cell template."""
        return await core.catalog.get_cell(cell_id, version)

    @get("/{cell_id:str}/{version:str}/{rest:path}", include_in_schema=False)
    async def reject_nested(self, cell_id: FromPath[str], version: FromPath[str], rest: FromPath[str]) -> None:
        """A `/` inside an id or version (also sent as %2F): never a path, always 400."""
        raise InvalidRequest("cell ids and versions cannot contain '/'")

    @post("/")
    async def put_cell(self, core: CoreDep, request: Request) -> Response[dict[str, str]]:
        """201 `{id, version}`; the identical template again 200; the same id+version with other content 409."""
        body, created = await core.catalog.put_cell(await json_body(request), request.headers.get("idempotency-key"))
        return Response(body, status_code=201 if created else 200)


CONTROLLERS = [CellsController]
