"""`/api/neira/commands`: the Command Cell over HTTP. Thin: decode, call the CommandService, return."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, post
from litestar.params import FromPath

from api.apidoc import doc
from api.controllers.common import Json, NeiraRequest, json_body
from api.wire.commands import ApplyResult, CommandReply
from neira.errors import InvalidRequest
from neira.structs import Base


SESSION_ID_MAX = 128


class CommandRequest(Base):
    """Body of `POST /api/neira/commands`; `session_id` is the caller's own name for a conversation, at most
    128 characters (it is stored with every plan and echoed in every reply)."""

    text: str
    session_id: Annotated[str, msgspec.Meta(min_length=1, max_length=SESSION_ID_MAX)] | None = None


class CommandsController(Controller):
    """Natural-language commands in Russian and English: understand, plan, apply."""

    path = "/api/neira/commands"
    tags = ["commands"]

    @post("/", status_code=200, opt=doc(CommandReply, body=CommandRequest, any_role=True))
    async def command(self, request: NeiraRequest) -> Json:
        """`{understood, lang, intent, spec, target?, policy, plan, reply, session_id}`; when not understood
        `{understood: false, error: {code, position?, expected?, suggestions?}, reply}`. Always 200."""
        try:
            body = msgspec.convert(await json_body(request), CommandRequest)
        except msgspec.ValidationError as exc:
            raise InvalidRequest(f"invalid command request: {exc}") from None
        return Json(await request.core.commands.handle(body.text, body.session_id, request.user))

    @post("/plans/{plan_id:str}/apply", status_code=200, opt=doc(ApplyResult, errors=(403, 409)))
    async def apply(self, request: NeiraRequest, plan_id: FromPath[str]) -> Json:
        """Carry out a saved plan: `{plan_id, plan, already_applied, applied, summary, reply}`; 409 plan_stale if
        the state it was planned against has changed; 404 for an unknown plan."""
        return Json(await request.core.commands.apply(plan_id, request.user))


CONTROLLERS = [CommandsController]
