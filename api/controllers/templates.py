"""`/organs/templates`: the organ templates of the catalog (latest version of each), listed page by page."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, get
from litestar.params import Parameter

from api.apidoc import doc
from api.controllers.common import NeiraRequest
from api.wire.factory import OrganTemplateSummary
from neira.templates import OrganTemplate
from api.paging import DEFAULT_LIMIT, MAX_LIMIT, next_link, page


class OrganTemplatesController(Controller):
    """Read the catalog's organ templates (open to every role; no gate: this is the catalog, not the builder)."""

    path = "/organs/templates"
    tags = ["organs"]

    @get("/", opt=doc(list[OrganTemplateSummary]))
    async def list_templates(
        self, request: NeiraRequest,
        limit: int = Parameter(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
        cursor: str | None = Parameter(default=None, max_length=200),
    ) -> Response[list[dict[str, Any]]]:
        """`[{id, version, versions, description, aliases, cells}]` sorted by id, at most `limit`; the next
        page's URL is in the `Link` header."""
        items, after = page(await request.core.catalog.list_organ_templates(), lambda s: s["id"], limit, cursor)
        return Response(items, headers=next_link(request, after, limit))

    @get("/{template_id:str}", opt=doc(OrganTemplate))
    async def get_template(self, request: NeiraRequest, template_id: str) -> dict[str, Any]:
        """The latest version (by SemVer) of an organ template; 404 when the catalog has no such id."""
        return await request.core.catalog.get_organ_template(template_id)


CONTROLLERS = [OrganTemplatesController]
