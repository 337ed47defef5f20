"""Runs (contract §6): a cell record, an organ by id, an organ by name. The runtime does the work."""

from __future__ import annotations

from litestar import Controller, post
from litestar.params import FromPath

from api.controllers.common import Json, NeiraRequest, json_body, json_doc

RUN_DOC = json_doc(200, 400, 404, 409, 429)


class RunsController(Controller):
    """`{ok, run_id, output, trace, ms, error?}`; a cell that fails is 200 with `ok: false`."""

    tags = ["runs"]

    @post("/factory/cells/{record_id:str}/run", status_code=200, responses=RUN_DOC)
    async def run_cell(self, request: NeiraRequest, record_id: FromPath[str]) -> Json:
        """Run one cell record on `{input}` (a payload, or a bare string for text)."""
        return Json(await request.core.runs.run_cell(record_id, await json_body(request)))

    @post("/organs/run", status_code=200, responses=RUN_DOC)
    async def run_named(self, request: NeiraRequest) -> Json:
        """Run the stable organ a name stands for: `{organ: "voice" | "organ.voice" | "organ.voice.v2", input}`."""
        return Json(await request.core.runs.run_named(await json_body(request)))

    @post("/organs/{organ_id:str}/run", status_code=200, responses=RUN_DOC)
    async def run_organ(self, request: NeiraRequest, organ_id: FromPath[str]) -> Json:
        """Run an organ's pathway on `{input, pathway?}` (the first pathway by default)."""
        return Json(await request.core.runs.run_organ(organ_id, await json_body(request)))


CONTROLLERS = [RunsController]
