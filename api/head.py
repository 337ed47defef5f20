"""`HEAD` wherever `GET` is routed: the GET answer's status and headers, without its body."""

from __future__ import annotations

from litestar.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """Wraps the app's router (`create_app` installs it before routing, where Litestar's middleware cannot
    sit: the router answers 405 to a HEAD on a GET-only route before any middleware runs). A HEAD request is
    routed and handled as a GET; the body is dropped, the headers, `Content-Length` included, are kept."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
            elif not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app({**scope, "method": "GET"}, receive, headers_only)  # type: ignore[arg-type]
