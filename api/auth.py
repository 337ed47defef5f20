"""Bearer-token authentication (constant-time), role guards and the WebSocket token check."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp, Scopes

from neira.config import Settings
from neira.errors import Unauthorized
from neira.policy import PolicyEngine, Role

OPEN_PATHS = ["^/healthz$", "^/metrics$", "^/schema"]
READ_METHODS = {"GET", "HEAD", "OPTIONS"}


class TokenTable:
    """Maps tokens to roles. Every configured token is compared, in constant time, on every check."""

    def __init__(self, settings: Settings) -> None:
        pairs = [(settings.admin_token, Role.ADMIN), (settings.operator_token, Role.OPERATOR), (settings.viewer_token, Role.VIEWER)]
        self._tokens = [(t.encode(), role) for t, role in pairs if t]

    def role_for(self, token: str | None) -> Role | None:
        """The role of `token`, or None."""
        given = (token or "").encode()
        found: Role | None = None
        for known, role in self._tokens:
            if hmac.compare_digest(known, given) and found is None:
                found = role
        return found


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header."""
    scheme, _, token = (header or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class TokenAuthMiddleware(AbstractAuthenticationMiddleware):
    """Sets `request.user` to the caller's role; 401 `unauthorized` otherwise. HTTP only: WebSockets
    check `?token=` themselves so they can close with a code the browser sees."""

    def __init__(self, app: ASGIApp, tokens: TokenTable, exclude: list[str], scopes: Scopes | None = None) -> None:
        super().__init__(app, exclude=exclude, exclude_http_methods=[], scopes=scopes)
        self.tokens = tokens

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        role = self.tokens.role_for(bearer(connection.headers.get("authorization")))
        if role is None:
            raise Unauthorized("a valid bearer token is required")
        return AuthenticationResult(user=role.value, auth=None)


async def access_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Role and safe-mode policy for every HTTP route: reads for all roles, writes for admin and operator
    (admin only in safe mode), and `opt={"admin": True}` routes for the admin alone. Async on purpose: Litestar
    runs a sync guard in a worker thread, which costs more than the check itself."""
    if connection.scope["type"] != "http" or "user" not in connection.scope:
        return  # an open route: the auth middleware was told to skip it
    policy: PolicyEngine = connection.app.state.core.policy
    write = connection.scope["method"] not in READ_METHODS
    policy.authorize(connection.user, write=write, admin_only=bool(handler.opt.get("admin")))


def websocket_role(connection: ASGIConnection[Any, Any, Any, Any]) -> Role | None:
    """The role for a WebSocket's `?token=`, or None."""
    tokens: TokenTable = connection.app.state.tokens
    return tokens.role_for(connection.query_params.get("token"))
