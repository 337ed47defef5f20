"""The Training Orchestrator's routes (contract §7): train a record, list its iterations, review one."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import FromPath

from api.controllers.common import NeiraRequest, json_body
from neira.training import Iteration, Reviewed, Training, iteration_number


class TrainingController(Controller):
    """`/factory/cells/{id}/train`, `/training`, `/training/{iteration}/review`."""

    path = "/factory/cells/{record_id:str}"
    tags = ["training"]

    @post("/train", status_code=200)
    async def train(self, request: NeiraRequest, record_id: FromPath[str]) -> Iteration:
        """One iteration over the record's samples: `{iteration, score, passed, failed, p99_ms, errors, results, at}`."""
        return await request.core.training.train(record_id, request.user)

    @get("/training")
    async def training(self, request: NeiraRequest, record_id: FromPath[str]) -> Training:
        """`{iterations, converged, policy: {min_score, consecutive}}`."""
        return await request.core.training.training(record_id)

    @post("/training/{iteration:str}/review", status_code=200)
    async def review(self, request: NeiraRequest, record_id: FromPath[str], iteration: FromPath[str]) -> Reviewed:
        """`{verdict: accept|reject, comment}` on an iteration (a number); 404 for an unknown one. The path takes
        any word, so that auth and the body's checks answer first, as on every other route."""
        body = await json_body(request)
        return await request.core.training.review(record_id, iteration_number(iteration), body, request.user)


CONTROLLERS = [TrainingController]
