"""The one place that turns errors into the contract's body `{code, reason, ...}` and status."""

from __future__ import annotations

import logging
import secrets

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from sqlalchemy.exc import DataError, DBAPIError
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from api.paths import check_path
from neira.errors import Busy, NeiraError

log = logging.getLogger("neira.api")

STATUS_BY_CODE: dict[str, int] = {  # the core raises coded errors; only api/ knows their HTTP statuses
    "invalid_request": 400,
    "invalid_template": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "capability_disabled": 403,
    "capability_locked": 403,
    "safe_mode": 403,
    "policy_denied": 403,
    "not_found": 404,
    "invalid_transition": 409,
    "conflict": 409,
    "plan_stale": 409,
    "not_runnable": 409,
    "held": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "data_dir_locked": 503,
    "busy": 429,
    "internal": 500,
}

CODE_BY_STATUS = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def _json(body: dict, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(content=body, status_code=status, media_type="application/json", headers=headers)


def neira_error_handler(_: Request, exc: NeiraError) -> Response:
    """Domain errors: status from the code table (`busy` also says when to come back)."""
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Busy) else None
    return _json(exc.body(), STATUS_BY_CODE.get(exc.code, 500), headers)


def http_error_handler(request: Request, exc: HTTPException) -> Response:
    """Litestar's own errors (validation, routing, body size) in the contract's shape, without internals. A
    path that matched no route because of an impossible id (`a%2Fb`, `..`) is the id's fault: 400."""
    status = exc.status_code
    if status >= 500:
        return internal_error_handler(request, exc)
    if status in (404, 405):
        try:
            check_path(request.scope)
        except NeiraError as bad:
            return neira_error_handler(request, bad)
    code = CODE_BY_STATUS.get(status, "invalid_request" if status < 500 else "internal")
    reason = _reason(exc, status)
    headers = {"Allow": exc.headers["Allow"]} if exc.headers and "Allow" in exc.headers else None
    return _json({"code": code, "reason": reason}, status, headers)


def _reason(exc: HTTPException, status: int) -> str:
    if status == 413:
        return "request body is larger than the limit"
    if status == 404:
        return "no such route or resource"
    if status == 405:
        return "method not allowed on this route"
    if isinstance(exc, ValidationException):
        details = exc.extra if isinstance(exc.extra, list) else []
        parts = [f"{d.get('key') or 'body'}: {d.get('message')}" for d in details if isinstance(d, dict)]
        return "invalid request: " + "; ".join(parts) if parts else "invalid request body or parameters"
    return str(exc.detail) if exc.detail else "invalid request"


def internal_error_handler(_: Request, exc: Exception) -> Response:
    """Anything unexpected: an opaque error id for the client, and the traceback under that id in the server's
    log for the operator (a bug: the log is where it is found); nothing about the internals for the client."""
    error_id = secrets.token_hex(6)
    log.error("internal error %s (%s)", error_id, type(exc).__name__, exc_info=exc)
    return _json({"code": "internal", "reason": f"internal error {error_id}"}, HTTP_500_INTERNAL_SERVER_ERROR)


def too_deep_handler(_: Request, exc: RecursionError) -> Response:
    """Decoding a body nested beyond the decoder's depth limit: the client's input, not our failure."""
    return _json({"code": "invalid_request", "reason": "request body is nested too deeply"}, 400)


def bad_encoding_handler(_: Request, exc: UnicodeDecodeError) -> Response:
    """A body that is not valid UTF-8 (msgspec raises this for bad bytes inside a JSON string): the client's input."""
    return _json({"code": "invalid_request", "reason": "request body is not valid UTF-8"}, 400)


def database_error_handler(request: Request, exc: DBAPIError) -> Response:
    """A value the database refuses to store or compare (SQLSTATE class 22, data exception: PostgreSQL's text
    cannot hold a NUL character; a number past its column's range) is the client's input, refused before
    anything was written (the transaction rolled back); any other database error is ours."""
    sqlstate = str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")
    if not (isinstance(exc, DataError) or sqlstate.startswith("22")):
        return internal_error_handler(request, exc)
    return _json({"code": "invalid_request",
                  "reason": "the request holds a value that cannot be stored (a NUL character, or a number out of range)"},
                 400)


EXCEPTION_HANDLERS = {
    DBAPIError: database_error_handler,
    RecursionError: too_deep_handler,
    UnicodeDecodeError: bad_encoding_handler,
    NeiraError: neira_error_handler,
    HTTPException: http_error_handler,
    Exception: internal_error_handler,
}
