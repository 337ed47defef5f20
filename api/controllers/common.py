"""What the controllers share: the connection classes that carry the core, the one way a JSON body is read,
and the fast JSON answer of the hot routes."""

from __future__ import annotations

import math
from typing import Any

import msgspec
from litestar import Request, WebSocket
from litestar.response.base import ASGIResponse
from litestar.types import Receive, Scope, Send

from neira.core import Core
from neira.errors import InvalidRequest, PayloadTooLarge


class _CoreOf:
    """`.core`: the Core this app serves (in the app's state)."""

    @property
    def core(self) -> Core:
        return self.app.state.core  # type: ignore[attr-defined,no-any-return]


class NeiraRequest(_CoreOf, Request[str, Any, Any]):
    """The app's request class (`create_app` sets it): `request.core`, `request.user` (the caller's role).
    Handlers take the request instead of a `core` dependency: resolving a provider per request (with its
    cleanup group) was about 8 µs of a 60 µs status request (bench/asgi_cpu.py)."""


class NeiraSocket(_CoreOf, WebSocket[str, Any, Any]):
    """The app's WebSocket class: `socket.core`."""

MAX_DEPTH = 64  # templates nest a few levels; deeper bodies only serve to exhaust the stack
JSON_HEADER = (b"content-type", b"application/json")
_encode = msgspec.json.Encoder().encode


class Json(ASGIResponse):
    """A JSON answer encoded once by msgspec and sent as it is, for the routes on the hot path (organ status,
    the dry-runs, commands). Litestar's generic answer (a Response, its header object, the encoder lookup, then
    an ASGIResponse) cost about 40 µs of a 120 µs status request (bench/asgi_cpu.py). A route returning it
    declares its answer's Struct with `opt=doc(...)` (api/apidoc.py), since the annotation no longer carries one."""

    __slots__ = ("payload", "code")

    def __init__(self, data: Any, status_code: int = 200) -> None:  # no super(): nothing of it is used
        self.payload = _encode(data)
        self.code = status_code

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [JSON_HEADER, (b"content-length", str(len(self.payload)).encode())]
        await send({"type": "http.response.start", "status": self.code, "headers": headers})
        await send({"type": "http.response.body", "body": self.payload})


async def json_body(request: Request, optional: bool = False) -> Any:
    """The request's JSON body; 400 invalid_request when it is malformed (or missing, unless `optional`)."""
    raw = await read_body(request)
    if not raw.strip():
        if optional:
            return None
        raise InvalidRequest("a JSON body is required")
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise InvalidRequest("malformed JSON body") from None
    except RecursionError:
        raise InvalidRequest(f"JSON body nests deeper than {MAX_DEPTH} levels") from None
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and too_deep(body):  # fewer openers cannot nest deeper
        raise InvalidRequest(f"JSON body nests deeper than {MAX_DEPTH} levels")
    return body


async def read_body(request: Request) -> bytes:
    """The whole body, straight from the ASGI channel, refused with 413 past the route's limit as it arrives
    (the access middleware has refused a declared length over it already). Litestar's `body()` builds a header
    object and an async generator for this: about 15 µs of a 160 µs dry-run."""
    limit = request.route_handler.resolve_request_max_body_size() or math.inf
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequest("the client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge("request body is larger than the limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def too_deep(value: Any, limit: int = 0) -> bool:
    """Whether `value` nests lists/objects deeper than MAX_DEPTH (checked without recursion)."""
    limit = limit or MAX_DEPTH
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False
