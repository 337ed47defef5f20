"""The security headers of contract §10, on every HTTP answer: pages, API answers, errors, redirects, /schema.

One `before_send` hook of the app rather than a middleware: Litestar runs `before_send` around its whole ASGI
handler, so it also sees the answers that never reach a route (unknown paths, refusals of the access check),
which route middleware would miss.
"""

from __future__ import annotations

from litestar.types import Message, Scope

# Own origin only. 'self' also covers this origin's ws:// and wss:// streams (CSP 3). Images may be data: URLs
# (the OpenAPI pages' icons are, and so are the images a run answers with); audio may be a blob: URL, which only
# this page's own script can make (the spoken answer of a run, decoded from its JSON); nothing may be framed,
# embedded as a plugin, or used as a <base>.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
_NAMES = frozenset(name for name, _ in SECURITY_HEADERS)


async def add_security_headers(message: Message, scope: Scope) -> None:
    """Add the security headers to the start of every HTTP answer (a route's own values are replaced)."""
    if message["type"] != "http.response.start":
        return
    headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() not in _NAMES]
    message["headers"] = [*headers, *SECURITY_HEADERS]  # type: ignore[typeddict-unknown-key]
