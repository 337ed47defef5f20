"""What `/schema/openapi.json` says beyond what Litestar reads off a handler's signature (contract §10): every
request and answer body typed by a msgspec Struct, every route's error answers with the error body, and bearer
auth (open routes say `security: []`).

Most handlers read their body themselves (`json_body`: one limit, our error codes, the idempotency digest of the
raw bytes) and the hot ones answer with `Json`, so neither shape is in the signature. A handler states them with
`opt=doc(...)`; at start-up `document_api` turns every Doc into the document's entries, with one schema
generator for all of them (`msgspec.json.schema_components`), so a name means one schema.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Litestar
from litestar.openapi.spec import Components, OpenAPIMediaType, Operation, Reference, RequestBody, SecurityScheme
from litestar.enums import ParamType
from litestar.openapi.spec import OpenAPIResponse, OpenAPIType, Parameter, Schema
from litestar.routes import HTTPRoute

from api.wire.base import Error
from neira.catalog import IDEMPOTENCY_KEY_MAX

REF = "#/components/schemas/{name}"
BEARER = "bearer"
SECURITY = [{BEARER: []}]
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class Doc(msgspec.Struct, frozen=True, kw_only=True):
    """A route's bodies: `answers` (status → type; a bare type is the route's own status), `body` (the request
    body's type; `optional` when it may be left out), and `errors` beyond those every route of its kind has
    (see `error_statuses`)."""

    answers: Any = None
    body: Any = None
    optional: bool = False
    errors: tuple[int, ...] = ()
    idempotent: bool = False  # takes an `Idempotency-Key` header (the same key and body replay the first answer)


def doc(answers: Any = None, *, body: Any = None, optional: bool = False, errors: tuple[int, ...] = (),
        idempotent: bool = False, **opt: Any) -> dict[str, Any]:
    """A handler's `opt` with its Doc (other `opt` keys pass through)."""
    return {**opt, "doc": Doc(answers=answers, body=body, optional=optional, errors=errors, idempotent=idempotent)}


IDEMPOTENCY_KEY = Parameter(
    name="Idempotency-Key", param_in=ParamType.HEADER, required=False,
    schema=Schema(type=OpenAPIType.STRING, min_length=1, max_length=IDEMPOTENCY_KEY_MAX),
    description="The same key and body replay the first answer; the same key with another body is 409 conflict")


def security_components() -> Components:
    """The `bearer` scheme: `Authorization: Bearer <token>` (admin, operator or viewer)."""
    return Components(security_schemes={BEARER: SecurityScheme(
        type="http", scheme="bearer",
        description="A role token: NEIRA_ADMIN_TOKEN (or <data-dir>/admin_token), NEIRA_OPERATOR_TOKEN, NEIRA_VIEWER_TOKEN")})


def error_statuses(method: str, path: str, op: Operation, d: Doc, is_open: bool) -> set[int]:
    """The error answers a route can give: 400 for bad parameters, ids or bodies; 401 and 403 (role, safe mode)
    unless it is open; 404 for an id in the path; 413 and 415 for a body; and the route's own (`Doc.errors`)."""
    codes = set(d.errors)
    has_body = d.body is not None or (op.request_body is not None)
    if op.parameters or has_body or "{" in path:
        codes.add(400)
    if not is_open:
        codes.add(401)
        if method in BODY_METHODS:
            codes.add(403)
    if "{" in path:
        codes.add(404)
    if has_body:
        codes |= {413, 415}
    return codes


def _answer(schema: dict[str, Any], status: int) -> OpenAPIResponse:
    return OpenAPIResponse(description=HTTPStatus(status).phrase,
                           content={"application/json": OpenAPIMediaType(schema=schema)})  # type: ignore[arg-type]


def document_api(app: Litestar) -> None:
    """Write every Doc, the error answers and the security requirements into the app's OpenAPI document."""
    openapi = app.openapi_schema
    docs: list[tuple[str, str, Any, Doc, bool, int]] = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue
            d = handler.opt.get("doc") or Doc()
            is_open = bool(handler.opt.get("exclude_from_auth"))
            for method in handler.http_methods:
                docs.append((route.path_format or "/", method, handler, d, is_open, handler.status_code))
    types: list[Any] = [Error]
    for *_, d, _open, status in docs:
        types.extend(_types(d, status))
    schemas, components = msgspec.json.schema_components(types, ref_template=REF)
    by_type = {id(t): s for t, s in zip(types, schemas, strict=True)}
    openapi.components.schemas.update(components)  # type: ignore[arg-type]
    openapi.components.security_schemes = security_components().security_schemes
    openapi.security = SECURITY  # type: ignore[assignment]
    error = Reference(ref=REF.format(name="Error"))
    for path, method, _handler, d, is_open, status in docs:
        item = (openapi.paths or {}).get(path)
        op = getattr(item, method.lower(), None) if item is not None else None
        if op is None:
            continue
        if d.body is not None:
            op.request_body = RequestBody(required=not d.optional, content={
                "application/json": OpenAPIMediaType(schema=by_type[id(d.body)])})  # type: ignore[arg-type]
        if d.idempotent:
            op.parameters = [*(op.parameters or []), IDEMPOTENCY_KEY]
        responses = {k: v for k, v in (op.responses or {}).items() if str(k)[:1] not in "45"}
        for code, typ in _answers(d, status).items():
            responses[str(code)] = _answer(by_type[id(typ)], code)
        for code in sorted(error_statuses(method, path, op, d, is_open)):
            responses[str(code)] = OpenAPIResponse(description=HTTPStatus(code).phrase,
                                                   content={"application/json": OpenAPIMediaType(schema=error)})
        for response in responses.values():  # a text answer (/metrics) is a string, not an empty schema
            for media_type, media in ((response.content or {}).items() if isinstance(response, OpenAPIResponse) else ()):
                if media_type.startswith("text/") and media.schema in (None, Schema()):
                    media.schema = Schema(type=OpenAPIType.STRING)
        op.responses = responses
        if is_open:
            op.security = []


def _answers(d: Doc, status: int) -> dict[int, Any]:
    if d.answers is None:
        return {}
    return dict(d.answers) if isinstance(d.answers, dict) else {status: d.answers}


def _types(d: Doc, status: int) -> list[Any]:
    return [*_answers(d, status).values(), *([d.body] if d.body is not None else [])]
