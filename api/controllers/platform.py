"""Platform routes: health, metrics, introspection, capabilities, safe mode, events and audit."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from litestar import Controller, Response, get, post, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.params import Parameter
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from api.auth import websocket_role
from api.apidoc import doc
from api.controllers.common import NeiraRequest, NeiraSocket
from api.wire.platform import AuditRecord, Capabilities, CapabilitySet, Event, Health, Introspection, Lifecycle, SafeMode
from api.controllers.pages import DEFAULT_LIMIT, Cursor, Limit, page, seq_cursor
from api.controllers.ws import pump
from neira import introspection
from neira.events import EventBus, Subscription
from neira.lifecycle import Machine, machines
from neira.structs import Base, to_builtins

MAX_SEQ = 2**63 - 1  # SQLite's INTEGER range: a larger `since` must be a 400, not an OverflowError (500)
REPLAY_PAGE = 1000


class CapabilityChange(Base):
    """Body of `POST /api/neira/capabilities/{name}`."""

    state: str
    reason: str | None = None


class SafeModeChange(Base):
    """Body of `POST /api/neira/safe-mode`."""

    enabled: bool
    reason: str | None = None


PING_TIMEOUT_S = 1.0  # a database slower than this to say `SELECT 1` counts as unreachable


def unavailable(reason: str, **extra: str) -> Response:
    """A 503 in the contract's error body, with the health fields beside it."""
    return Response({"code": "unavailable", "reason": reason, "status": "unavailable", **extra}, status_code=503)


class HealthController(Controller):
    """Open routes: liveness and Prometheus metrics."""

    opt = {"exclude_from_auth": True}
    tags = ["platform"]

    @get("/healthz", opt=doc(Health, errors=(503,)))
    async def healthz(self, request: NeiraRequest) -> Response:
        """Liveness and readiness in one open route (the contract opens no other): 200 `{status: ok, database: ok,
        schema}` while the server is started, not stopping, and its database answers; else 503 saying which."""
        core = request.core
        if not core.ready:
            return unavailable("the server is stopping" if core.schema else "the server is starting")
        if not await core.db.ping(PING_TIMEOUT_S):
            return unavailable("the database cannot be reached", database="unreachable")
        return Response({"status": "ok", "database": "ok", "schema": core.schema})

    @get("/metrics", sync_to_thread=False, media_type=CONTENT_TYPE_LATEST)
    def metrics(self, request: NeiraRequest) -> Response:
        """Prometheus text: the core's metrics, the HTTP request metrics and the process collectors."""
        registries = (request.core.metrics.registry, request.app.state.http_metrics, REGISTRY)
        body = b"".join(generate_latest(r) for r in registries)
        return Response(body, media_type=CONTENT_TYPE_LATEST)


class PlatformController(Controller):
    """`/api/neira/...` platform routes."""

    path = "/api/neira"
    tags = ["platform"]

    @get("/introspection/status", opt=doc(Introspection))
    async def introspection_status(self, request: NeiraRequest) -> dict[str, Any]:
        """Safe mode, gates and counts of records, organs and catalog entries."""
        return await introspection.status(request.core.db, request.core.policy)

    @get("/lifecycle", sync_to_thread=False, opt=doc(Lifecycle))
    def lifecycle(self) -> dict[str, Machine]:
        """Both transition tables: `{cells: {states, stages, transitions: [{from, to, via}]}, organs: {...}}`,
        so clients show only the moves that are legal."""
        return machines()

    @get("/capabilities", sync_to_thread=False, opt=doc(Capabilities))
    def capabilities(self, request: NeiraRequest) -> dict[str, str]:
        """Gate name → state."""
        return request.core.policy.capability_list()

    @post("/capabilities/{name:str}", status_code=200, opt=doc(CapabilitySet, body=CapabilityChange, admin=True))
    async def set_capability(self, request: NeiraRequest, name: str, data: CapabilityChange) -> dict[str, Any]:
        """Flip a gate (admin; locked gates never change)."""
        return await request.core.policy.set_capability(request.user, name, data.state, data.reason)

    @get("/safe-mode", sync_to_thread=False, opt=doc(SafeMode))
    def safe_mode(self, request: NeiraRequest) -> dict[str, Any]:
        """`{enabled, reason}`."""
        return request.core.policy.safe_mode_status()

    @post("/safe-mode", status_code=200, opt=doc(SafeMode, body=SafeModeChange, admin=True))
    async def set_safe_mode(self, request: NeiraRequest, data: SafeModeChange) -> dict[str, Any]:
        """Safe mode on or off (admin)."""
        return await request.core.policy.set_safe_mode(request.user, data.enabled, data.reason)

    @get("/events", opt=doc(list[Event]))
    async def events(
        self, request: NeiraRequest, since: int = Parameter(default=0, ge=0, le=MAX_SEQ), limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Response[list[dict[str, Any]]]:
        """Stored events after `since`, oldest first. A page of `limit`; the next one is in the `Link` header."""
        after = max(since, seq_cursor(cursor) or 0)
        rows = [to_builtins(e) for e in await request.core.events.list(after, limit + 1)]
        return page(request, rows, limit, lambda r: r["seq"])

    @get("/audit", opt=doc(list[AuditRecord]))
    async def audit(
        self, request: NeiraRequest, since: int = Parameter(default=0, ge=0, le=MAX_SEQ), limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Response[list[dict[str, Any]]]:
        """The audit trail after `since`, oldest first. A page of `limit`; the next one is in the `Link` header."""
        after = max(since, seq_cursor(cursor) or 0)
        rows = [to_builtins(r) for r in await request.core.audit.list(after, limit + 1)]
        return page(request, rows, limit, lambda r: r["seq"])

    @websocket("/events/stream", opt={"exclude_from_auth": True})
    async def events_stream(self, socket: NeiraSocket) -> None:
        """Every event as it happens, `{seq, at, type, subject, data}`; `?since=<seq>` first replays the
        stored events after it. Closes 4401 (token), 4400 (bad `since`)."""
        await socket.accept()
        if await websocket_role(socket) is None:
            await socket.close(code=4401, reason="unauthorized")
            return
        try:
            since = int(socket.query_params.get("since", "-1"))
            if not -1 <= since <= MAX_SEQ:
                raise ValueError
        except ValueError:
            await socket.close(code=4400, reason="since must be an event seq")
            return
        sub = socket.core.events.subscribe("*")
        try:
            await pump(socket, _event_frames(socket.core.events, sub, since))
        except WebSocketDisconnect:
            pass
        finally:
            socket.core.events.unsubscribe("*", sub)


async def _event_frames(events: EventBus, sub: Subscription, since: int) -> AsyncIterator[dict[str, Any]]:
    """The stored events after `since` (all of them, page by page), then live ones without repeats. A client
    that fell behind gets a `stream.lagged` frame (shaped like every event) where frames were dropped."""
    last = 0
    while since >= 0:
        page = await events.list(since, REPLAY_PAGE)
        for ev in page:
            yield to_builtins(ev)  # type: ignore[misc]
            last = since = ev.seq
        if len(page) < REPLAY_PAGE:
            break
    while True:
        ev = await sub.get()
        if sub.lagged:
            sub.lagged = False
            yield {"seq": ev.seq, "at": time.time(), "type": "stream.lagged", "subject": "stream",
                   "data": {"missed_before": ev.seq}}
        if ev.seq > last:
            yield to_builtins(ev)  # type: ignore[misc]
