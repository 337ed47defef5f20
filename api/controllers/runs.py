"""Runs (contract §6): a cell record, an organ by id, an organ by name. The runtime does the work."""

from __future__ import annotations

from litestar import Controller, post
from litestar.params import FromPath

from api.apidoc import doc
from api.controllers.common import Json, NeiraRequest, json_body
from neira.runtime.results import RunResult
from neira.runtime.service import CellRun, NamedRun, OrganRun

RUN_ERRORS = (403, 409, 429)  # gate or role; not runnable; the pool is full (with Retry-After)


class RunsController(Controller):
    """`{ok, run_id, output, trace, ms, error?}`; a cell that fails is 200 with `ok: false`."""

    tags = ["runs"]

    @post("/factory/cells/{record_id:str}/run", status_code=200, opt=doc(RunResult, body=CellRun, errors=RUN_ERRORS))
    async def run_cell(self, request: NeiraRequest, record_id: FromPath[str]) -> Json:
        """Run one cell record on `{input}` (a payload, or a bare string for text)."""
        return Json(await request.core.runs.serve_cell(record_id, await json_body(request)))

    @post("/organs/run", status_code=200, opt=doc(RunResult, body=NamedRun, errors=(*RUN_ERRORS, 404)))
    async def run_named(self, request: NeiraRequest) -> Json:
        """Run the stable organ a name stands for: `{organ: "voice" | "organ.voice" | "organ.voice.v2", input}`."""
        return Json(await request.core.runs.run_named(await json_body(request)))

    @post("/organs/{organ_id:str}/run", status_code=200, opt=doc(RunResult, body=OrganRun, errors=RUN_ERRORS))
    async def run_organ(self, request: NeiraRequest, organ_id: FromPath[str]) -> Json:
        """Run an organ's pathway on `{input, pathway?}` (the first pathway by default)."""
        return Json(await request.core.runs.run_organ(organ_id, await json_body(request)))


CONTROLLERS = [RunsController]
