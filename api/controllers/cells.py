"""`/cells`: the cells catalog (file store + index)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery

from api.apidoc import doc
from api.controllers.common import NeiraRequest, json_body
from api.wire.factory import CellSummary, TemplateRef
from neira.templates import CellTemplate
from api.controllers.pages import DEFAULT_LIMIT, Cursor, Limit, decode_cursor, page
from neira.errors import InvalidRequest

class CellsController(Controller):
    """Register, list and read cell templates."""

    path = "/cells"
    tags = ["cells"]

    @get("/", opt=doc(list[CellSummary]))
    async def list_cells(
        self, request: NeiraRequest, kind: FromQuery[str | None] = None, q: FromQuery[str | None] = None,
        limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
    ) -> Response[list[dict[str, Any]]]:
        """Latest version of every cell, by id; `kind` (analysis|action|memory) filters, `q` searches id, kind,
        description and aliases. A page of `limit`; the next one is in the `Link` header."""
        rows = await request.core.catalog.list_cells(kind=kind or None, q=q or None, after=decode_cursor(cursor), limit=limit + 1)
        return page(request, rows, limit, lambda r: r["id"])

    @get("/{cell_id:str}", opt=doc(CellTemplate))
    async def get_cell(self, request: NeiraRequest, cell_id: FromPath[str]) -> dict[str, Any]:
        """The latest version (by SemVer) of a cell template."""
        return await request.core.catalog.get_cell(cell_id)

    @get("/{cell_id:str}/{version:str}", opt=doc(CellTemplate))
    async def get_cell_version(self, request: NeiraRequest, cell_id: FromPath[str], version: FromPath[str]) -> dict[str, Any]:
        """One version of a cell template."""
        return await request.core.catalog.get_cell(cell_id, version)

    @get("/{cell_id:str}/{version:str}/{rest:path}", include_in_schema=False)
    async def reject_nested(self, cell_id: FromPath[str], version: FromPath[str], rest: FromPath[str]) -> None:
        """A `/` inside an id or version (also sent as %2F): never a path, always 400."""
        raise InvalidRequest("cell ids and versions cannot contain '/'")

    @post("/", opt=doc({201: TemplateRef, 200: TemplateRef}, body=CellTemplate, errors=(409,), idempotent=True))
    async def put_cell(self, request: NeiraRequest) -> Response[dict[str, str]]:
        """201 `{id, version}`; the identical template again 200; the same id+version with other content 409."""
        body, created = await request.core.catalog.put_cell(await json_body(request), request.headers.get("idempotency-key"))
        return Response(body, status_code=201 if created else 200)


CONTROLLERS = [CellsController]
