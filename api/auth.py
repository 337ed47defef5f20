"""Bearer-token authentication (constant-time) and the role / safe-mode policy, in one ASGI middleware,
plus the WebSocket token check. The pages sign in with a session cookie instead (api/signin.py)."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.types import ASGIApp, Receive, Scope, Send

from api.signin import SignIn, cookie_value, page_role, same_origin
from api.paths import check_json_body, check_page, check_path
from neira.config import Settings
from neira.errors import InvalidRequest, PayloadTooLarge, Unauthorized
from neira.policy import PolicyEngine, Role

OPEN_SCHEMA = "/schema"  # Litestar's OpenAPI pages; our own open routes say so in their `opt`
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class TokenTable:
    """Maps tokens to roles. Every configured token is compared, in constant time, on every check."""

    def __init__(self, settings: Settings) -> None:
        pairs = [(settings.admin_token, Role.ADMIN), (settings.operator_token, Role.OPERATOR), (settings.viewer_token, Role.VIEWER)]
        self._tokens = [(t.encode(), role) for t, role in pairs if t]

    def role_for(self, token: str | bytes | None) -> Role | None:
        """The role of `token`, or None."""
        given = token.encode() if isinstance(token, str) else (token or b"")
        found: Role | None = None
        for known, role in self._tokens:
            if hmac.compare_digest(known, given) and found is None:
                found = role
        return found


def bearer(header: str | bytes | None) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header."""
    raw = header.encode() if isinstance(header, str) else (header or b"")
    scheme, _, token = raw.partition(b" ")
    token = token.strip()
    return token if scheme.lower() == b"bearer" and token else None


def _is_schema(path: str) -> bool:
    return path == OPEN_SCHEMA or path.startswith(OPEN_SCHEMA + "/")


def _check_length(scope: Scope, limit: int) -> None:
    """A declared body over the limit is refused on every route, also on those that never read their body
    (Litestar itself enforces the limit only while reading one)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            if not value.isdigit():
                raise InvalidRequest("Content-Length must be a number")
            if int(value) > limit:
                raise PayloadTooLarge("request body is larger than the limit")
            return


def _authorization(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return value
    return None


class AccessMiddleware:
    """For every HTTP route: who is calling (401 `unauthorized` without a valid token), and may they
    (reads for every role, writes for admin and operator, admin only in safe mode, `opt={"admin": True}`
    routes for the admin alone). Routes with `opt={"exclude_from_auth": True}` are open; `opt={"any_role":
    True}` routes take any valid token and check writes themselves (the Command Cell: «статус» is a read). A declared body over
    the limit is a 413 before anything else; an impossible id in the path a 400 (api/paths.py); a write whose body is
    not JSON a 415; `opt={"page": True}` (web/) serves pages and their assets only.

    One plain ASGI middleware rather than an authentication middleware plus a guard: Litestar copies the
    route handler for every guard call, which cost more than the whole check."""

    def __init__(self, app: ASGIApp, tokens: TokenTable, policy: PolicyEngine, max_body_bytes: int, sign_in: SignIn) -> None:
        self.app, self.tokens, self.policy, self.max_body_bytes = app, tokens, policy, max_body_bytes
        self.sign_in = sign_in

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            _check_length(scope, self.max_body_bytes)
            check_path(scope)
            opt = scope["route_handler"].opt
            if opt.get("page"):
                check_page(scope["path"])
            if not opt.get("exclude_from_auth") and not _is_schema(scope["path"]):
                header = _authorization(scope)
                role = self.tokens.role_for(bearer(header))
                if role is None and header is None:  # no bearer at all: a signed-in page (cookie + CSRF)?
                    role = await page_role(self.sign_in, scope["headers"], write=scope["method"] not in READ_METHODS)
                if role is None:
                    raise Unauthorized("a valid bearer token is required")
                scope["user"] = role.value
                write = scope["method"] not in READ_METHODS and not opt.get("any_role")
                self.policy.authorize(role.value, write=write, admin_only=bool(opt.get("admin")))
            if scope["method"] not in READ_METHODS:
                check_json_body(scope)
        await self.app(scope, receive, send)


async def websocket_role(connection: ASGIConnection[Any, Any, Any, Any]) -> Role | None:
    """The role for a WebSocket's `?token=`, else for the session cookie of a page of this server; or None."""
    token = connection.query_params.get("token")
    if token is not None:
        tokens: TokenTable = connection.app.state.tokens
        return tokens.role_for(token)
    headers = connection.scope["headers"]
    sign_in: SignIn = connection.app.state.sign_in
    session = await sign_in.session(cookie_value(headers)) if same_origin(headers) else None
    return session.role if session else None
