"""`/organs`: build, list, status, manual moves, cancel, rebuild and the live stream of one organ."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Response, delete, get, post, websocket
from litestar.exceptions import WebSocketDisconnect

from api.auth import websocket_role
from api.apidoc import doc
from api.controllers.common import Json, NeiraRequest, NeiraSocket, json_body
import msgspec

from api.controllers.factory import move_reason
from api.wire.base import Moved, Reason
from api.wire.organs import BuildDryRun, BuildStarted, OrganEntry, OrganMoved, OrganStatus, RunFigures
from neira.errors import InvalidRequest
from neira.graduation import Approval
from neira.organs import BuildRequest
from api.controllers.pages import DEFAULT_LIMIT, Cursor, Limit, decode_cursor, page
from api.controllers.ws import pump, send
from neira.errors import NeiraError
from neira.structs import Base

WS_CLOSE = {"unauthorized": 4401, "capability_disabled": 4403, "forbidden": 4403, "not_found": 4404}


class StatusChange(Base):
    """Body of `POST /organs/{id}/status`."""

    state: str
    reason: str | None = None


async def approval(request: NeiraRequest) -> Approval:
    """The optional body of approve: `{reason?, force?}` (strict)."""
    body = await json_body(request, optional=True)
    try:
        return msgspec.convert(body or {}, Approval)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"invalid body: {exc}") from None


class OrgansController(Controller):
    """The organ builder (gate `organs_builder` on every route but the status read, which shows a held build)."""

    path = "/organs"
    tags = ["organs"]

    @post("/build", opt=doc({201: BuildStarted, 200: BuildDryRun}, body=BuildRequest, errors=(409,), idempotent=True))
    async def build(self, request: NeiraRequest) -> Response[BuildStarted | BuildDryRun]:
        """201 `{organ_id, state: draft}`; `dryrun: true` → 200 `{organ_id: null, dryrun, ok, report, plan}`."""
        key = request.headers.get("idempotency-key")
        status, body = await request.core.organs.build(await json_body(request), request.user, key)
        return Response(body, status_code=status)

    @get("/", opt=doc(list[OrganEntry], errors=(403,)))
    async def list_organs(self, request: NeiraRequest, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> Response[list[dict[str, Any]]]:
        """`[{id, state, template_id, updated_at}]`, oldest first. A page of `limit`; the next one is in the
        `Link` header."""
        rows = await request.core.organs.list(decode_cursor(cursor), limit + 1)
        return page(request, rows, limit, lambda r: r["id"])

    @get("/{organ_id:str}/status", opt=doc(OrganStatus))
    async def status(self, request: NeiraRequest, organ_id: str) -> Json:
        """`{id, state, waiting_for, held_by, cells: [{id, record_id, state}], metrics: {attempts, stage_times, ...,
        runs}}`; answers with the gate closed too (`waiting_for: "gate"`, `held_by: "organs_builder"`)."""
        status = await request.core.organs.status(organ_id)
        runs = msgspec.convert(request.core.runs.figures(organ_id), RunFigures)
        return Json(msgspec.structs.replace(status, metrics=msgspec.structs.replace(status.metrics, runs=runs)))

    @post("/{organ_id:str}/status", status_code=200, opt=doc(Moved, body=StatusChange, errors=(409,)))
    async def set_status(self, request: NeiraRequest, organ_id: str, data: StatusChange) -> OrganMoved:
        """Move by hand (draft|canary|experimental|stable|failed); stops the automatic progression."""
        return await request.core.organs.set_status(organ_id, data.state, data.reason, request.user)

    @post("/{organ_id:str}/approve", status_code=200, opt=doc(OrganMoved, body=Approval, optional=True, errors=(403, 409)))
    async def approve_organ(self, request: NeiraRequest, organ_id: str) -> OrganMoved:
        """A human's approve: ends a hold; promotes one stage when the canary verdict passes. Against a failing
        verdict 403 `policy_denied` (naming the metric) unless `{"force": true, "reason"}`; while the verdict
        is not in, 409 `held` with `waiting_for: "analysis"`."""
        body = await approval(request)
        return await request.core.organs.approve(organ_id, request.user, body.reason, body.force)

    @post("/{organ_id:str}/hold", status_code=200, opt=doc(OrganMoved, body=Reason, optional=True, errors=(409,)))
    async def hold_organ(self, request: NeiraRequest, organ_id: str) -> OrganMoved:
        """Stop the organ's progression where it is until `approve` (`{reason?}`); 409 once it is stable or failed."""
        return await request.core.organs.hold(organ_id, request.user, await move_reason(request))

    @delete("/{organ_id:str}/build", status_code=200, opt=doc(Moved, errors=(409,)))
    async def cancel(self, request: NeiraRequest, organ_id: str) -> OrganMoved:
        """Cancel a build in flight → `{id, state: failed}`; 409 when it is not building."""
        return await request.core.organs.cancel(organ_id, request.user)

    @post("/{organ_id:str}/rebuild", status_code=200, opt=doc(BuildStarted, errors=(409,)))
    async def rebuild(self, request: NeiraRequest, organ_id: str) -> BuildStarted:
        """Build again with the same id: `{organ_id, state: draft}`, fresh stages, attempts + 1."""
        return await request.core.organs.rebuild(organ_id, request.user)

    @websocket("/{organ_id:str}/stream", opt={"exclude_from_auth": True})
    async def stream(self, socket: NeiraSocket, organ_id: str) -> None:
        """`?token=`; first frame `{id, state, seq}`, then one per change. Closes 4401 (token), 4403 (gate
        closed, also when it closes while the stream is open), 4404 (unknown organ)."""
        await socket.accept()
        if await websocket_role(socket) is None:
            await socket.close(code=4401, reason="unauthorized")
            return
        try:
            frames = socket.core.organs.stream(organ_id)
            first = await anext(frames)
        except NeiraError as exc:
            await socket.close(code=WS_CLOSE.get(exc.code, 4400), reason=exc.reason[:120])
            return
        try:
            await send(socket, first)
            await pump(socket, frames)
        except WebSocketDisconnect:
            pass
        except NeiraError as exc:  # the gate was closed under the open stream
            await socket.close(code=WS_CLOSE.get(exc.code, 4400), reason=exc.reason[:120])
        finally:
            await frames.aclose()


CONTROLLERS = [OrgansController]
