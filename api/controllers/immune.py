"""The immune system's route (contract §7): `GET /api/neira/immune`, for any role with a token."""

from __future__ import annotations

from litestar import Controller, get

from api.apidoc import doc
from api.controllers.common import NeiraRequest
from api.wire.immune import Immune
from neira.immune import ImmuneStatus


class ImmuneController(Controller):
    """What is quarantined, and the last catalog integrity check."""

    path = "/api/neira"
    tags = ["immune"]

    @get("/immune", opt=doc(Immune))
    async def immune(self, request: NeiraRequest) -> ImmuneStatus:
        """`{quarantined: [{record_id, template_id, version, cause, reason, measurement, since, state}],
        last_integrity_check: {at, checked, failed} | null}`."""
        return await request.core.immune.status()


CONTROLLERS = [ImmuneController]
