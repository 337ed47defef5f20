"""`/factory/cells`: dry-run, create, read, and the lifecycle moves of cell records."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, get, post, route
from litestar.params import FromPath, QueryParameter

from api.apidoc import doc
from api.controllers.common import Json, NeiraRequest, json_body
from api.wire.base import Reason
from api.wire.factory import CellRecord, FactoryRequest, RecordMoved
from api.controllers.pages import DEFAULT_LIMIT, Cursor, Limit, decode_cursor, page
import msgspec

from neira.catalog import check_id
from neira.cell_plan import CellDryRun
from neira.graduation import Approval
from neira.errors import InvalidRequest, NotFound

MOVES = ("approve", "disable", "rollback", "auto_heal", "auto_rollback")
MOVE_DOC = doc(RecordMoved, body=Reason, optional=True, errors=(409,))


async def move_reason(request: Request) -> str | None:
    """The optional body of a move: `{reason?}`; anything else is 400 invalid_request."""
    body = await json_body(request, optional=True)
    if body is None:
        return None
    if not isinstance(body, dict):
        raise InvalidRequest("body must be a JSON object")
    unknown = sorted(set(body) - {"reason"})
    if unknown:
        raise InvalidRequest(f"unknown fields: {', '.join(unknown)}")
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise InvalidRequest("reason must be a string")
    return reason


class FactoryController(Controller):
    """The stem-cell factory."""

    path = "/factory/cells"
    tags = ["factory"]

    @post("/dryrun", status_code=200, opt=doc(CellDryRun, body=FactoryRequest))
    async def dryrun(self, request: NeiraRequest) -> Json:
        """`{ok, report, plan}`; never writes; a closed gate is a violation (ok false), not a 403."""
        return Json(await request.core.factory.dryrun(await json_body(request), request.user))

    @post("/", opt=doc({201: CellRecord, 200: CellRecord}, body=FactoryRequest, errors=(403, 409),
                   idempotent=True))
    async def create(self, request: NeiraRequest) -> Response[CellRecord]:
        """201 a new draft record; 200 the existing record of the same template+version+backend."""
        key = request.headers.get("idempotency-key")
        status, record = await request.core.factory.create(await json_body(request), request.user, key)
        return Response(record, status_code=status)

    @get("/", opt=doc(list[CellRecord]))
    async def list_records(
        self, request: NeiraRequest, state_filter: Annotated[str | None, QueryParameter(name="state")] = None,
        limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
    ) -> Response[list[CellRecord]]:
        """Records, oldest first; `?state=` filters. A page of `limit`; the next one is in the `Link` header."""
        rows = await request.core.factory.list(state_filter or None, decode_cursor(cursor), limit + 1)
        return page(request, rows, limit, lambda r: r.id)

    @get("/{record_id:str}", opt=doc(CellRecord))
    async def get_record(self, request: NeiraRequest, record_id: FromPath[str]) -> CellRecord:
        """A record with its history."""
        return await request.core.factory.get(record_id)

    @post("/{record_id:str}/approve", status_code=200, opt=doc(RecordMoved, body=Approval, optional=True, errors=(403, 409)))
    async def approve(self, request: NeiraRequest, record_id: FromPath[str]) -> RecordMoved:
        """draft → canary → experimental → stable; out of canary/experimental the canary verdict must pass
        (403 `policy_denied` naming the failing metric, 409 `held` while it is not in) unless
        `{"force": true, "reason"}`."""
        body = await json_body(request, optional=True)
        try:
            req = msgspec.convert(body or {}, Approval)
        except msgspec.ValidationError as exc:
            raise InvalidRequest(f"invalid body: {exc}") from None
        return await request.core.factory.approve(record_id, request.user, req.reason, req.force)

    @post("/{record_id:str}/disable", status_code=200, opt=MOVE_DOC)
    async def disable(self, request: NeiraRequest, record_id: FromPath[str]) -> RecordMoved:
        """→ disabled."""
        return await request.core.factory.disable(record_id, request.user, await move_reason(request))

    @post("/{record_id:str}/rollback", status_code=200, opt=MOVE_DOC)
    async def rollback(self, request: NeiraRequest, record_id: FromPath[str]) -> RecordMoved:
        """→ rolled_back; `restored` names the record of the same template that is stable now, if any."""
        return await request.core.factory.rollback(record_id, request.user, await move_reason(request))

    @post("/{record_id:str}/auto_heal", status_code=200, opt=MOVE_DOC)
    async def auto_heal(self, request: NeiraRequest, record_id: FromPath[str]) -> RecordMoved:
        """→ healing; the check finishes in the background (previous state, or failed)."""
        return await request.core.factory.auto_heal(record_id, request.user, await move_reason(request))

    @post("/{record_id:str}/auto_rollback", status_code=200, opt=MOVE_DOC)
    async def auto_rollback(self, request: NeiraRequest, record_id: FromPath[str]) -> RecordMoved:
        """→ rolled_back, with a `factory.auto_rollback` event."""
        return await request.core.factory.auto_rollback(record_id, request.user, await move_reason(request))

    @route("/{record_id:str}/{rest:path}", http_method=["GET", "POST"], include_in_schema=False)
    async def reject_nested(self, record_id: FromPath[str], rest: FromPath[str]) -> None:
        """A `/` inside a record id (also sent as %2F) is a bad request; an unknown move is not found."""
        check_id(record_id, "record id")
        raise NotFound(f"no route {rest.strip('/')} for cell records; moves are {', '.join(MOVES)}")


CONTROLLERS = [FactoryController]
